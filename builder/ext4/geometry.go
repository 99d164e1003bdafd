package ext4

import "fmt"

// Fixed by the pinned mke2fs.conf and the flags Make passes.
const (
	BlockSize      = 4096
	inodeSize      = 256
	inodeRatio     = 16384
	blocksPerGroup = 8 * BlockSize
	descSize       = 64 // 64bit feature
)

// Geom is the layout mke2fs chooses for a file system size.
type Geom struct {
	Blocks          uint64 // file system blocks (may be less than the size allows)
	Groups          uint64
	InodesPerGroup  uint64
	InodeBlocks     uint64 // inode table blocks per group
	DescBlocks      uint64
	ReservedGDT     uint64
	JournalBlocks   uint64
	OverheadBlocks  uint64 // everything used on the empty file system
	ReservedBlocks  uint64 // for root (-m percent)
	FreeBlocks      uint64
	AvailableBlocks uint64 // FreeBlocks - ReservedBlocks, what df shows as available
}

// Geometry returns mke2fs's layout for a file system of size bytes with
// reservedPercent reserved blocks, following ext2fs_initialize and mke2fs
// 1.47 for the pinned configuration.
func Geometry(size int64, reservedPercent int) (Geom, error) {
	var g Geom
	blocks := uint64(size) / BlockSize
	if blocks < 2048 {
		return g, fmt.Errorf("file system size %d bytes: at least %d bytes needed", size, 2048*BlockSize)
	}
	inodes := blocks * BlockSize / inodeRatio
	requested := blocks
	for {
		g = Geom{Blocks: blocks}
		g.Groups = (blocks + blocksPerGroup - 1) / blocksPerGroup
		ipg := (inodes + g.Groups - 1) / g.Groups
		ipg = min(ipg, 8*BlockSize)
		g.InodeBlocks = (ipg*inodeSize + BlockSize - 1) / BlockSize
		ipg = g.InodeBlocks * BlockSize / inodeSize
		ipg &^= 7
		g.InodesPerGroup = ipg
		g.InodeBlocks = (ipg*inodeSize + BlockSize - 1) / BlockSize
		g.DescBlocks = (g.Groups + BlockSize/descSize - 1) / (BlockSize / descSize)
		g.ReservedGDT = reservedGDT(blocks, g.DescBlocks)
		// A last group too small for its own metadata is cut off.
		rem := blocks % blocksPerGroup
		over := 3 + g.InodeBlocks
		if hasSuper(g.Groups - 1) {
			over += g.DescBlocks + g.ReservedGDT
		}
		if rem != 0 && rem < over+50 && g.Groups > 1 {
			blocks -= rem
			continue
		}
		break
	}
	var meta uint64
	for grp := range g.Groups {
		meta += 2 + g.InodeBlocks
		if hasSuper(grp) {
			meta += 1 + g.DescBlocks + g.ReservedGDT
		}
	}
	g.JournalBlocks = journalBlocks(g.Blocks)
	// Root directory (1), lost+found (4), resize inode's indirect block (1).
	g.OverheadBlocks = meta + g.JournalBlocks + 6
	g.FreeBlocks = g.Blocks - g.OverheadBlocks
	// mke2fs reserves a percentage of the requested blocks; ext2fs_initialize
	// rescales it when it cuts off a last group (both in double precision).
	r0 := uint64(float64(reservedPercent) * float64(requested) / 100.0)
	ratio := 100.0 * float64(r0) / float64(requested)
	g.ReservedBlocks = uint64(ratio * float64(g.Blocks) / 100.0)
	g.AvailableBlocks = g.FreeBlocks - min(g.FreeBlocks, g.ReservedBlocks)
	return g, nil
}

func hasSuper(g uint64) bool {
	if g <= 1 {
		return true
	}
	for _, b := range []uint64{3, 5, 7} {
		n := g
		for n%b == 0 {
			n /= b
		}
		if n == 1 {
			return true
		}
	}
	return false
}

// reservedGDT is calc_reserved_gdt_blocks: room to grow 1024 times.
func reservedGDT(blocks, descBlocks uint64) uint64 {
	maxBlocks := uint64(0xffffffff)
	if blocks < maxBlocks/1024 {
		maxBlocks = blocks * 1024
	}
	rsvGroups := (maxBlocks + blocksPerGroup - 1) / blocksPerGroup
	per := uint64(BlockSize / descSize)
	rsv := (rsvGroups+per-1)/per - descBlocks
	return min(rsv, BlockSize/4)
}

// journalBlocks is ext2fs_default_journal_size.
func journalBlocks(blocks uint64) uint64 {
	switch {
	case blocks < 32768:
		return 1024
	case blocks < 256*1024:
		return 4096
	case blocks < 512*1024:
		return 8192
	case blocks < 4096*1024:
		return 16384
	case blocks < 8192*1024:
		return 32768
	case blocks < 16384*1024:
		return 65536
	case blocks < 32768*1024:
		return 131072
	}
	return 262144
}
