package diff

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"time"
)

// partition is one MBR partition entry.
type partition struct {
	Index      int
	Boot       byte
	Type       byte
	StartLBA   uint32
	NumSectors uint32
}

func (p partition) String() string {
	return fmt.Sprintf("boot=0x%02x type=0x%02x start=%d sectors=%d", p.Boot, p.Type, p.StartLBA, p.NumSectors)
}

// readMBR returns the disk signature and the used partition entries of a
// sector 0, or ok=false if it is not an MBR.
func readMBR(s []byte) (sig uint32, parts []partition, ok bool) {
	if len(s) < 512 || s[510] != 0x55 || s[511] != 0xaa {
		return 0, nil, false
	}
	for i := 0; i < 4; i++ {
		e := s[446+16*i : 446+16*i+16]
		p := partition{Index: i + 1, Boot: e[0], Type: e[4], StartLBA: binary.LittleEndian.Uint32(e[8:]), NumSectors: binary.LittleEndian.Uint32(e[12:])}
		if p.Type == 0 {
			continue
		}
		if p.Boot&0x7f != 0 {
			return 0, nil, false // not a partition table (e.g. a boot sector)
		}
		parts = append(parts, p)
	}
	return binary.LittleEndian.Uint32(s[440:]), parts, len(parts) > 0
}

// isDiskImage reports whether head (the first 2 KiB or more) starts an MBR
// disk, a bare ext4 file system or a dm-verity hash device.
func isDiskImage(head []byte) bool {
	if _, _, ok := readMBR(head); ok {
		return true
	}
	return isExt4(head) || isVeritySB(head)
}

func isExt4(head []byte) bool {
	return len(head) >= 1024+0x3a && binary.LittleEndian.Uint16(head[1024+0x38:]) == 0xEF53
}

func isVeritySB(p []byte) bool { return len(p) >= 8 && string(p[:8]) == "verity\x00\x00" }

// sbField is a superblock field: name, offset, size and rendering.
type sbField struct {
	name string
	off  int
	size int
	kind byte // 'u' unsigned, 'x' hex, 's' string, 't' unix time
}

// ext4 superblock fields worth naming (offsets within the 1024-byte
// superblock, from the kernel's struct ext4_super_block).
var ext4Fields = []sbField{
	{"s_inodes_count", 0x0, 4, 'u'}, {"s_blocks_count_lo", 0x4, 4, 'u'}, {"s_r_blocks_count_lo", 0x8, 4, 'u'},
	{"s_free_blocks_count_lo", 0xC, 4, 'u'}, {"s_free_inodes_count", 0x10, 4, 'u'},
	{"s_first_data_block", 0x14, 4, 'u'}, {"s_log_block_size", 0x18, 4, 'u'}, {"s_blocks_per_group", 0x20, 4, 'u'},
	{"s_inodes_per_group", 0x28, 4, 'u'}, {"s_mtime", 0x2C, 4, 't'}, {"s_wtime", 0x30, 4, 't'},
	{"s_mnt_count", 0x34, 2, 'u'}, {"s_max_mnt_count", 0x36, 2, 'u'}, {"s_state", 0x3A, 2, 'x'},
	{"s_errors", 0x3C, 2, 'u'}, {"s_lastcheck", 0x40, 4, 't'}, {"s_checkinterval", 0x44, 4, 'u'},
	{"s_creator_os", 0x48, 4, 'u'}, {"s_rev_level", 0x4C, 4, 'u'}, {"s_def_resuid", 0x50, 2, 'u'},
	{"s_def_resgid", 0x52, 2, 'u'}, {"s_first_ino", 0x54, 4, 'u'}, {"s_inode_size", 0x58, 2, 'u'},
	{"s_feature_compat", 0x5C, 4, 'x'}, {"s_feature_incompat", 0x60, 4, 'x'}, {"s_feature_ro_compat", 0x64, 4, 'x'},
	{"s_uuid", 0x68, 16, 'x'}, {"s_volume_name", 0x78, 16, 's'}, {"s_last_mounted", 0x88, 64, 's'},
	{"s_reserved_gdt_blocks", 0xCE, 2, 'u'}, {"s_journal_uuid", 0xD0, 16, 'x'}, {"s_journal_inum", 0xE0, 4, 'u'},
	{"s_hash_seed", 0xEC, 16, 'x'}, {"s_def_hash_version", 0xFC, 1, 'u'}, {"s_default_mount_opts", 0x100, 4, 'x'},
	{"s_mkfs_time", 0x108, 4, 't'}, {"s_jnl_blocks", 0x10C, 68, 'x'}, {"s_blocks_count_hi", 0x150, 4, 'u'},
	{"s_min_extra_isize", 0x15C, 2, 'u'}, {"s_want_extra_isize", 0x15E, 2, 'u'}, {"s_flags", 0x160, 4, 'x'},
	{"s_kbytes_written", 0x178, 8, 'u'}, {"s_first_error_time", 0x198, 4, 't'}, {"s_last_error_time", 0x1CC, 4, 't'},
	{"s_checksum_type", 0x175, 1, 'u'}, {"s_encoding", 0x27C, 2, 'u'}, {"s_checksum_seed", 0x270, 4, 'x'},
	{"s_checksum", 0x3FC, 4, 'x'},
}

// veritySBFields are the dm-verity superblock (veritysetup format 1).
var veritySBFields = []sbField{
	{"version", 8, 4, 'u'}, {"hash_type", 12, 4, 'u'}, {"uuid", 16, 16, 'x'}, {"algorithm", 32, 32, 's'},
	{"data_block_size", 64, 4, 'u'}, {"hash_block_size", 68, 4, 'u'}, {"data_blocks", 72, 8, 'u'},
	{"salt_size", 80, 2, 'u'}, {"salt", 88, 256, 'x'},
}

func fieldValue(p []byte, f sbField) string {
	v := p[f.off : f.off+f.size]
	switch f.kind {
	case 'u', 't':
		var n uint64
		switch f.size {
		case 1:
			n = uint64(v[0])
		case 2:
			n = uint64(binary.LittleEndian.Uint16(v))
		case 4:
			n = uint64(binary.LittleEndian.Uint32(v))
		case 8:
			n = binary.LittleEndian.Uint64(v)
		}
		if f.kind == 't' && n != 0 {
			return fmt.Sprintf("%d (%s)", n, time.Unix(int64(n), 0).UTC().Format(time.RFC3339))
		}
		return fmt.Sprint(n)
	case 's':
		return fmt.Sprintf("%q", strings.TrimRight(string(v), "\x00"))
	}
	if f.size == 4 {
		return fmt.Sprintf("0x%08x", binary.LittleEndian.Uint32(v))
	}
	return fmt.Sprintf("%x", bytes.TrimRight(v, "\x00"))
}

func compareFields(r *Report, o *Options, where string, fields []sbField, a, b []byte) {
	for _, f := range fields {
		if x, y := fieldValue(a, f), fieldValue(b, f); x != y {
			r.add(o.MaxItems, Item{Where: where + " " + f.name, A: x, B: y})
		}
	}
}

// compareDisk explains two disk images: partition table, each partition's
// superblock, then the differing ranges named by partition and block,
// streamed with bounded memory.
func compareDisk(ctx context.Context, a, b string, r *Report, o *Options) error {
	fa, fb, err := openPair(a, b)
	if err != nil {
		return err
	}
	defer fa.Close()
	defer fb.Close()
	s0a, s0b := make([]byte, 512), make([]byte, 512)
	if _, err := fa.ReadAt(s0a, 0); err != nil {
		return fmt.Errorf("%s: reading sector 0: %w", a, err)
	}
	if _, err := fb.ReadAt(s0b, 0); err != nil {
		return fmt.Errorf("%s: reading sector 0: %w", b, err)
	}
	sigA, partsA, okA := readMBR(s0a)
	sigB, partsB, okB := readMBR(s0b)
	if okA && okB {
		if sigA != sigB {
			r.add(o.MaxItems, Item{Where: "MBR disk signature", A: fmt.Sprintf("0x%08x", sigA), B: fmt.Sprintf("0x%08x", sigB)})
		}
		for i := 0; i < max(len(partsA), len(partsB)); i++ {
			var x, y string
			if i < len(partsA) {
				x = partsA[i].String()
			}
			if i < len(partsB) {
				y = partsB[i].String()
			}
			if x != y {
				r.add(o.MaxItems, Item{Where: fmt.Sprintf("MBR partition %d", i+1), A: x, B: y})
			}
		}
	} else if okA != okB {
		r.add(o.MaxItems, Item{Where: "MBR partition table", A: fmt.Sprint(okA), B: fmt.Sprint(okB)})
	}
	// Superblocks: per partition of A (the partitions B has at the same
	// place), or the whole file when there is no partition table.
	type area struct {
		name       string
		start, end int64
		ext4       *ext4Layout
	}
	var areas []area
	if okA {
		for _, p := range partsA {
			areas = append(areas, area{fmt.Sprintf("partition %d", p.Index), int64(p.StartLBA) * 512, int64(p.StartLBA+p.NumSectors) * 512, nil})
		}
	} else {
		areas = append(areas, area{"file system", 0, 1 << 62, nil})
	}
	for i := range areas {
		ar := &areas[i]
		ha, hb := make([]byte, 2048), make([]byte, 2048)
		na, _ := fa.ReadAt(ha, ar.start)
		nb, _ := fb.ReadAt(hb, ar.start)
		ha, hb = ha[:na], hb[:nb]
		switch {
		case isExt4(ha) && isExt4(hb):
			compareFields(r, o, ar.name+" ext4 superblock", ext4Fields, ha[1024:2048], hb[1024:2048])
			ar.ext4 = readExt4Layout(fa, ar.start)
		case isVeritySB(ha) && isVeritySB(hb):
			compareFields(r, o, ar.name+" dm-verity superblock", veritySBFields, ha[:512], hb[:512])
		case isExt4(ha) != isExt4(hb) || isVeritySB(ha) != isVeritySB(hb):
			r.add(o.MaxItems, Item{Where: ar.name + " content type", A: sbKind(ha), B: sbKind(hb)})
		}
	}
	if _, err := fa.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := fb.Seek(0, io.SeekStart); err != nil {
		return err
	}
	st, err := compareStreams(ctx, fa, fb)
	if err != nil {
		return fmt.Errorf("comparing %s and %s: %w", a, b, err)
	}
	name := func(br byteRange) string {
		for _, ar := range areas {
			if br.Off < ar.end && ar.start < br.Off+br.Len {
				lo, hi := max(br.Off, ar.start)-ar.start, min(br.Off+br.Len, ar.end)-ar.start
				s := fmt.Sprintf("(%s, blocks %d-%d of the partition", ar.name, lo/blockSize, (hi-1)/blockSize)
				if ar.ext4 != nil {
					s += ": ext4 " + ar.ext4.describe(lo, hi-lo)
				}
				return s + ")"
			}
		}
		if br.Off < 512 {
			return "(MBR)"
		}
		return "(outside any partition)"
	}
	for _, it := range binaryItems(st, fa, fb, name) {
		r.add(o.MaxItems, it)
	}
	// Down to the file: the inodes and files behind differing ext4 blocks.
	for _, ar := range areas {
		if ar.ext4 == nil {
			continue
		}
		var rel []byteRange
		for _, br := range st.Ranges {
			lo, hi := max(br.Off, ar.start), min(br.Off+br.Len, ar.end)
			if lo < hi {
				rel = append(rel, byteRange{lo - ar.start, hi - lo})
			}
		}
		if len(rel) == 0 {
			continue
		}
		for _, it := range ext4Explain(ar.ext4, fa, fb, ar.start, rel, 20) {
			it.Where = ar.name + " " + it.Where
			r.add(o.MaxItems, it)
		}
	}
	return nil
}

func sbKind(p []byte) string {
	switch {
	case isExt4(p):
		return "ext4"
	case isVeritySB(p):
		return "dm-verity hash device with superblock"
	}
	return "unknown (no superblock)"
}
