package diff

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// This file goes from differing ext4 blocks to the files they belong to:
// the owner of a data block and the path of an inode.

// maxExt4Inodes bounds the inodes scanned and named.
const maxExt4Inodes = 4 << 20

// ext4Files maps inodes to paths and data blocks to inodes, built lazily
// once per file system and side.
type ext4Files struct {
	l   *ext4Layout
	r   io.ReaderAt
	off int64
	// paths of every inode reached from the root directory.
	paths map[int64]string
}

func newExt4Files(l *ext4Layout, r io.ReaderAt, off int64) *ext4Files {
	return &ext4Files{l: l, r: r, off: off}
}

// path returns inode ino's path ("" if unknown), walking the directory
// tree on first use.
func (x *ext4Files) path(ino int64) string {
	if x.paths == nil {
		x.walk()
	}
	return x.paths[ino]
}

func (x *ext4Files) walk() {
	x.paths = map[int64]string{2: "/"}
	le := binary.LittleEndian
	queue := []int64{2}
	for len(queue) > 0 && len(x.paths) < maxExt4Inodes {
		dir := queue[0]
		queue = queue[1:]
		inode := x.l.inode(x.r, x.off, dir)
		if inode == nil || le.Uint16(inode)&0xF000 != 0x4000 {
			continue
		}
		runs, _ := x.l.extents(x.r, x.off, inode)
		base := x.paths[dir]
		for _, run := range runs {
			for b := run.start; b < run.start+min(run.n, 1<<16); b++ {
				blk := make([]byte, x.l.blockSize)
				if _, err := x.r.ReadAt(blk, x.off+b*x.l.blockSize); err != nil {
					break
				}
				for p := 0; p+8 <= len(blk); {
					ino := int64(le.Uint32(blk[p:]))
					rec := int(le.Uint16(blk[p+4:]))
					nl := int(blk[p+6])
					ft := blk[p+7]
					if rec < 8 || p+rec > len(blk) {
						break
					}
					if ino != 0 && p+8+nl <= len(blk) {
						name := string(blk[p+8 : p+8+nl])
						if name != "." && name != ".." {
							if _, seen := x.paths[ino]; !seen {
								x.paths[ino] = strings.TrimSuffix(base, "/") + "/" + name
								if ft == 2 { // directory
									queue = append(queue, ino)
								}
							}
						}
					}
					p += rec
				}
			}
		}
	}
}

// owners finds the inodes whose data or extent tree uses the given fs
// blocks, scanning every inode table once.
func (x *ext4Files) owners(blocks []int64) map[int64]string {
	want := map[int64]bool{}
	for _, b := range blocks {
		want[b] = true
	}
	out := map[int64]string{}
	le := binary.LittleEndian
	l := x.l
	table := make([]byte, l.inodesPerGroup*l.inodeSize)
	for g, gi := range l.groups {
		if int64(g)*l.inodesPerGroup > maxExt4Inodes {
			break
		}
		if _, err := x.r.ReadAt(table, x.off+gi.inodeTable*l.blockSize); err != nil {
			continue
		}
		for i := int64(0); i < l.inodesPerGroup; i++ {
			inode := table[i*l.inodeSize : (i+1)*l.inodeSize]
			if le.Uint16(inode) == 0 || le.Uint16(inode[0x1A:]) == 0 {
				continue // free
			}
			ino := int64(g)*l.inodesPerGroup + i + 1
			runs, tree := l.extents(x.r, x.off, inode)
			for _, t := range tree {
				if want[t] {
					out[t] = fmt.Sprintf("extent tree of inode %d", ino)
				}
			}
			var logical int64
			for _, run := range runs {
				for b := range want {
					if b >= run.start && b < run.start+run.n {
						out[b] = fmt.Sprintf("inode %d, file block %d", ino, logical+b-run.start)
					}
				}
				logical += run.n
			}
		}
	}
	return out
}

// inodeFields are the ext4 inode fields named when two inodes differ.
var inodeFields = []sbField{
	{"i_mode", 0x0, 2, 'o'}, {"i_uid", 0x2, 2, 'u'}, {"i_size_lo", 0x4, 4, 'u'}, {"i_atime", 0x8, 4, 't'},
	{"i_ctime", 0xC, 4, 't'}, {"i_mtime", 0x10, 4, 't'}, {"i_dtime", 0x14, 4, 't'}, {"i_gid", 0x18, 2, 'u'},
	{"i_links_count", 0x1A, 2, 'u'}, {"i_blocks_lo", 0x1C, 4, 'u'}, {"i_flags", 0x20, 4, 'x'},
	{"i_block (extents)", 0x28, 60, 'x'}, {"i_generation", 0x64, 4, 'u'}, {"i_file_acl_lo", 0x68, 4, 'u'},
	{"i_size_high", 0x6C, 4, 'u'}, {"i_uid_high", 0x78, 2, 'u'}, {"i_gid_high", 0x7A, 2, 'u'},
	{"i_checksum_lo", 0x7C, 2, 'x'}, {"i_extra_isize", 0x80, 2, 'u'}, {"i_checksum_hi", 0x82, 2, 'x'},
	{"i_ctime_extra", 0x84, 4, 'x'}, {"i_mtime_extra", 0x88, 4, 'x'}, {"i_atime_extra", 0x8C, 4, 'x'},
	{"i_crtime", 0x90, 4, 't'}, {"i_crtime_extra", 0x94, 4, 'x'}, {"i_version_hi", 0x98, 4, 'x'},
	{"i_projid", 0x9C, 4, 'u'},
}

// inodeDiff lists the fields in which two inodes differ.
func inodeDiff(a, b []byte) string {
	var parts []string
	for _, f := range inodeFields {
		if f.off+f.size > len(a) || f.off+f.size > len(b) {
			continue
		}
		x, y := inodeValue(a, f), inodeValue(b, f)
		if x != y {
			parts = append(parts, fmt.Sprintf("%s %s -> %s", f.name, x, y))
		}
	}
	if len(a) > 0xA0 && len(b) > 0xA0 && !bytes.Equal(a[0xA0:], b[0xA0:]) {
		parts = append(parts, "in-inode extended attributes")
	}
	return strings.Join(parts, "; ")
}

func inodeValue(p []byte, f sbField) string {
	if f.kind == 'o' {
		return fmt.Sprintf("%06o", binary.LittleEndian.Uint16(p[f.off:]))
	}
	if f.kind == 't' {
		v := binary.LittleEndian.Uint32(p[f.off:])
		if v == 0 {
			return "0"
		}
		return fmt.Sprintf("%d (%s)", v, time.Unix(int64(v), 0).UTC().Format(time.RFC3339))
	}
	return fieldValue(p, f)
}

// maxExplainBlocks bounds the differing blocks examined one by one.
const maxExplainBlocks = 4096

// ext4Explain names the files behind the differing blocks of one ext4
// file system (partition-relative byte ranges): for inode table blocks
// the differing inodes with their paths and fields, for data blocks their
// owners' paths. At most max items.
func ext4Explain(l *ext4Layout, ra, rb io.ReaderAt, off int64, ranges []byteRange, max int) []Item {
	fa := newExt4Files(l, ra, off)
	fb := newExt4Files(readExt4Layoutq(rb, off, l), rb, off)
	var items []Item
	itBlocks := (l.inodesPerGroup*l.inodeSize + l.blockSize - 1) / l.blockSize
	var dataBlocks []int64
	examined := 0
	for _, rg := range ranges {
		for b := rg.Off / l.blockSize; b <= (rg.Off+rg.Len-1)/l.blockSize && len(items) < max && examined < maxExplainBlocks; b++ {
			examined++
			inTable := false
			for g, gi := range l.groups {
				if b < gi.inodeTable || b >= gi.inodeTable+itBlocks {
					continue
				}
				inTable = true
				perBlock := l.blockSize / l.inodeSize
				first := int64(g)*l.inodesPerGroup + (b-gi.inodeTable)*perBlock + 1
				for ino := first; ino < first+perBlock && len(items) < max; ino++ {
					ia, ib := l.inode(ra, off, ino), fb.l.inode(rb, off, ino)
					if ia == nil || ib == nil || bytes.Equal(ia, ib) {
						continue
					}
					p := fa.path(ino)
					if p == "" {
						p = fb.path(ino)
					}
					if p == "" {
						p = "(not reached from /: reserved or unlinked)"
					}
					items = append(items, Item{Where: fmt.Sprintf("ext4 inode %d %s", ino, p), Detail: inodeDiff(ia, ib)})
				}
			}
			if !inTable && strings.HasPrefix(l.name(b), "data") && len(dataBlocks) < max {
				dataBlocks = append(dataBlocks, b)
			}
		}
	}
	if len(dataBlocks) > 0 {
		oa, ob := fa.owners(dataBlocks), fb.owners(dataBlocks)
		sort.Slice(dataBlocks, func(i, j int) bool { return dataBlocks[i] < dataBlocks[j] })
		for _, b := range dataBlocks {
			if len(items) >= max {
				break
			}
			desc := func(f *ext4Files, o map[int64]string) string {
				s, ok := o[b]
				if !ok {
					return "free or unowned"
				}
				var ino int64
				fmt.Sscanf(s[strings.LastIndex(s, "inode ")+6:], "%d", &ino)
				if p := f.path(ino); p != "" {
					s += " " + p
				}
				return s
			}
			items = append(items, Item{Where: fmt.Sprintf("ext4 data block %d", b), A: desc(fa, oa), B: desc(fb, ob)})
		}
	}
	return items
}

// readExt4Layoutq reads side B's layout, falling back to A's when B's
// superblock cannot be read (the block positions are what matters).
func readExt4Layoutq(r io.ReaderAt, off int64, fallback *ext4Layout) *ext4Layout {
	if l := readExt4Layout(r, off); l != nil {
		return l
	}
	return fallback
}
