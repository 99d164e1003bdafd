package diff

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strings"
)

// ext4Layout knows where an ext4 file system keeps its metadata, so that a
// differing block can be named: superblock, group descriptors, a group's
// bitmaps or inode table (with the inode numbers), the journal, or data.
type ext4Layout struct {
	blockSize       int64
	firstDataBlock  int64
	blocksPerGroup  int64
	inodesPerGroup  int64
	inodeSize       int64
	descBlocks      int64
	reservedGDT     int64
	sparseSuper     bool
	sparseSuper2    bool
	backupGroups    [2]int64
	groups          []ext4Group
	journal         []blockRun // absolute fs block runs of inode 8
	totalBlocks     int64
	metaCSumOrFlags uint32
}

type ext4Group struct {
	blockBitmap, inodeBitmap, inodeTable int64
}

type blockRun struct{ start, n int64 }

// Limits for reading an untrusted file system's metadata.
const (
	maxExt4Groups = 1 << 16
	maxExt4Desc   = 64 << 20
)

// readExt4Layout reads the superblock and group descriptors of the ext4
// file system at byte offset off of r; nil if there is none or it looks
// inconsistent.
func readExt4Layout(r io.ReaderAt, off int64) *ext4Layout {
	le := binary.LittleEndian
	sb := make([]byte, 1024)
	if _, err := r.ReadAt(sb, off+1024); err != nil || le.Uint16(sb[0x38:]) != 0xEF53 {
		return nil
	}
	l := &ext4Layout{
		blockSize:      1024 << le.Uint32(sb[0x18:]),
		firstDataBlock: int64(le.Uint32(sb[0x14:])),
		blocksPerGroup: int64(le.Uint32(sb[0x20:])),
		inodesPerGroup: int64(le.Uint32(sb[0x28:])),
		inodeSize:      int64(le.Uint16(sb[0x58:])),
		reservedGDT:    int64(le.Uint16(sb[0xCE:])),
	}
	incompat := le.Uint32(sb[0x60:])
	rocompat := le.Uint32(sb[0x64:])
	compat := le.Uint32(sb[0x5C:])
	l.sparseSuper = rocompat&0x1 != 0
	l.sparseSuper2 = compat&0x200 != 0
	l.backupGroups = [2]int64{int64(le.Uint32(sb[0x24C:])), int64(le.Uint32(sb[0x250:]))}
	l.totalBlocks = int64(le.Uint32(sb[0x4:]))
	descSize := int64(32)
	if incompat&0x80 != 0 { // 64bit
		l.totalBlocks |= int64(le.Uint32(sb[0x150:])) << 32
		if d := int64(le.Uint16(sb[0xFE:])); d >= 32 {
			descSize = d
		}
	}
	if l.blockSize > 65536 || l.blocksPerGroup == 0 || l.inodesPerGroup == 0 || l.inodeSize == 0 || l.totalBlocks <= l.firstDataBlock {
		return nil
	}
	ngroups := (l.totalBlocks - l.firstDataBlock + l.blocksPerGroup - 1) / l.blocksPerGroup
	if ngroups > maxExt4Groups || ngroups*descSize > maxExt4Desc {
		return nil
	}
	l.descBlocks = (ngroups*descSize + l.blockSize - 1) / l.blockSize
	desc := make([]byte, ngroups*descSize)
	if _, err := r.ReadAt(desc, off+(l.firstDataBlock+1)*l.blockSize); err != nil {
		return nil
	}
	for g := int64(0); g < ngroups; g++ {
		d := desc[g*descSize:]
		gi := ext4Group{int64(le.Uint32(d[0:])), int64(le.Uint32(d[4:])), int64(le.Uint32(d[8:]))}
		if descSize >= 64 {
			gi.blockBitmap |= int64(le.Uint32(d[0x20:])) << 32
			gi.inodeBitmap |= int64(le.Uint32(d[0x24:])) << 32
			gi.inodeTable |= int64(le.Uint32(d[0x28:])) << 32
		}
		l.groups = append(l.groups, gi)
	}
	l.journal = l.inodeExtents(r, off, le.Uint32(sb[0xE0:]))
	return l
}

// inodeExtents returns the block runs of inode ino, or nil.
func (l *ext4Layout) inodeExtents(r io.ReaderAt, off int64, ino uint32) []blockRun {
	inode := l.inode(r, off, int64(ino))
	if inode == nil {
		return nil
	}
	runs, _ := l.extents(r, off, inode)
	return runs
}

// inode reads inode ino's bytes, or nil.
func (l *ext4Layout) inode(r io.ReaderAt, off, ino int64) []byte {
	if ino <= 0 || ino > int64(len(l.groups))*l.inodesPerGroup || l.inodeSize < 0x80 {
		return nil
	}
	g := (ino - 1) / l.inodesPerGroup
	idx := (ino - 1) % l.inodesPerGroup
	buf := make([]byte, l.inodeSize)
	if _, err := r.ReadAt(buf, off+l.groups[g].inodeTable*l.blockSize+idx*l.inodeSize); err != nil {
		return nil
	}
	return buf
}

// maxExtentDepth bounds the extent tree walk (ext4 allows 5 levels).
const maxExtentDepth = 5

// extents returns the data block runs of an inode using extents and the
// blocks of its extent tree's index and leaf nodes.
func (l *ext4Layout) extents(r io.ReaderAt, off int64, inode []byte) (runs []blockRun, tree []int64) {
	le := binary.LittleEndian
	if le.Uint32(inode[0x20:])&0x80000 == 0 { // EXT4_EXTENTS_FL
		return nil, nil
	}
	var walk func(node []byte, depth int)
	walk = func(node []byte, depth int) {
		if len(node) < 12 || le.Uint16(node) != 0xF30A || depth > maxExtentDepth {
			return
		}
		n := int(le.Uint16(node[2:]))
		d := le.Uint16(node[6:])
		for i := 0; i < n && 12+12*(i+1) <= len(node); i++ {
			e := node[12+12*i:]
			if d == 0 {
				length := int64(le.Uint16(e[4:]))
				if length > 32768 {
					length -= 32768 // uninitialised extent
				}
				runs = append(runs, blockRun{int64(le.Uint16(e[6:]))<<32 | int64(le.Uint32(e[8:])), length})
				continue
			}
			child := int64(le.Uint16(e[8:]))<<32 | int64(le.Uint32(e[4:]))
			tree = append(tree, child)
			buf := make([]byte, l.blockSize)
			if _, err := r.ReadAt(buf, off+child*l.blockSize); err == nil {
				walk(buf, depth+1)
			}
		}
	}
	walk(inode[0x28:0x28+60], 0)
	return runs, tree
}

func (l *ext4Layout) hasBackup(g int64) bool {
	if g == 0 {
		return true
	}
	if l.sparseSuper2 {
		return g == l.backupGroups[0] || g == l.backupGroups[1]
	}
	if !l.sparseSuper || g == 1 {
		return true
	}
	for _, base := range []int64{3, 5, 7} {
		p := base
		for p < g {
			p *= base
		}
		if p == g {
			return true
		}
	}
	return false
}

// name says what fs block b holds.
func (l *ext4Layout) name(b int64) string {
	if b < 0 || b >= l.totalBlocks {
		return "beyond the file system"
	}
	if b < l.firstDataBlock {
		return "boot block"
	}
	g := (b - l.firstDataBlock) / l.blocksPerGroup
	start := l.firstDataBlock + g*l.blocksPerGroup
	if b >= l.firstDataBlock && l.hasBackup(g) {
		switch rel := b - start; {
		case rel == 0 && g == 0:
			return "superblock"
		case rel == 0:
			return fmt.Sprintf("backup superblock (group %d)", g)
		case rel <= l.descBlocks:
			if g == 0 {
				return "group descriptors"
			}
			return fmt.Sprintf("backup group descriptors (group %d)", g)
		case rel <= l.descBlocks+l.reservedGDT:
			return "reserved GDT blocks"
		}
	}
	itBlocks := (l.inodesPerGroup*l.inodeSize + l.blockSize - 1) / l.blockSize
	perBlock := l.blockSize / l.inodeSize
	for i, gi := range l.groups {
		switch {
		case b == gi.blockBitmap:
			return fmt.Sprintf("block bitmap (group %d)", i)
		case b == gi.inodeBitmap:
			return fmt.Sprintf("inode bitmap (group %d)", i)
		case b >= gi.inodeTable && b < gi.inodeTable+itBlocks:
			first := int64(i)*l.inodesPerGroup + (b-gi.inodeTable)*perBlock + 1
			return fmt.Sprintf("inode table (group %d, inodes %d-%d)", i, first, first+perBlock-1)
		}
	}
	for _, r := range l.journal {
		if b >= r.start && b < r.start+r.n {
			return "journal"
		}
	}
	return "data (file content, directory or extent blocks)"
}

// describe names the fs blocks overlapping the partition-relative byte
// range [off, off+n).
func (l *ext4Layout) describe(off, n int64) string {
	seen := map[string]bool{}
	var names []string
	first, last := off/l.blockSize, (off+n-1)/l.blockSize
	for b := first; b <= last && len(names) < 4; b++ {
		nm := l.name(b)
		if strings.HasPrefix(nm, "inode table") && seen["inode table"] {
			continue
		}
		if !seen[nm] {
			seen[nm] = true
			if strings.HasPrefix(nm, "inode table") {
				seen["inode table"] = true
			}
			names = append(names, nm)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
