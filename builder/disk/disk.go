package disk

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Units.
const (
	SectorSize = 512
	MiB        = 1 << 20
)

// PartTypeLinux is the MBR type parted writes for an ext4 partition.
const PartTypeLinux = 0x83

// Partition is one MBR partition, in bytes.
type Partition struct {
	Index    int   `json:"index"` // 1-based
	Start    int64 `json:"start"`
	Size     int64 `json:"size"`
	Type     byte  `json:"type"`
	Bootable bool  `json:"bootable"`
}

// Layout is a disk image's size and partitions.
type Layout struct {
	Size       int64       `json:"size"`
	Measured   bool        `json:"measured"`
	Partitions []Partition `json:"partitions"`
}

// HashStartMiB is where image_builder.sh puts partition 2 of a measured
// image of sizeMiB: awk's "%.6g" of size×0.99, cut at the decimal point.
func HashStartMiB(sizeMiB int64) (int64, error) {
	s := strconv.FormatFloat(float64(sizeMiB)*0.99, 'g', 6, 64)
	if strings.ContainsAny(s, "e") {
		return 0, fmt.Errorf("image size %d MiB: image_builder.sh's hash partition offset (%s) is not usable beyond 10^6 MiB", sizeMiB, s)
	}
	i, _, _ := strings.Cut(s, ".")
	return strconv.ParseInt(i, 10, 64)
}

// NewLayout returns the partitions of a sizeMiB image.
func NewLayout(sizeMiB int64, measured bool) (Layout, error) {
	if sizeMiB < 3 {
		return Layout{}, fmt.Errorf("image size %d MiB: at least 3 MiB needed", sizeMiB)
	}
	l := Layout{Size: sizeMiB * MiB, Measured: measured}
	if !measured {
		l.Partitions = []Partition{{Index: 1, Start: MiB, Size: l.Size - MiB, Type: PartTypeLinux}}
		return l, nil
	}
	h, err := HashStartMiB(sizeMiB)
	if err != nil {
		return l, err
	}
	if h <= 1 || h >= sizeMiB {
		return l, fmt.Errorf("image size %d MiB: no room for the hash partition (it would start at %d MiB)", sizeMiB, h)
	}
	l.Partitions = []Partition{
		{Index: 1, Start: MiB, Size: (h - 1) * MiB, Type: PartTypeLinux, Bootable: true},
		{Index: 2, Start: h * MiB, Size: l.Size - h*MiB, Type: PartTypeLinux},
	}
	return l, nil
}

// ImageSizeMiB returns the image size for a rootfs whose disk usage is
// rootfsBytes (see the package doc). available returns the bytes df would
// show as available on a fresh file system filling a partition of the given
// size; alignMiB is IMAGE_SIZE_ALIGNMENT_MB.
func ImageSizeMiB(rootfsBytes int64, measured bool, alignMiB int64, available func(partBytes int64) (int64, error)) (int64, error) {
	if alignMiB <= 0 {
		return 0, fmt.Errorf("image size alignment %d MiB: must be positive", alignMiB)
	}
	r := (rootfsBytes + MiB - 1) / MiB
	var lastErr error
	for i := int64(1); i <= 1<<20; i++ {
		d := r + 10*i
		l, err := NewLayout(d, measured)
		if err != nil {
			lastErr = err
			continue
		}
		avail, err := available(l.Partitions[0].Size)
		if err != nil {
			lastErr = err // too small for a file system at all: grow
			continue
		}
		if avail > r*MiB {
			img := (d + 2 + alignMiB - 1) / alignMiB * alignMiB
			return img - 2, nil
		}
	}
	return 0, fmt.Errorf("rootfs of %d MiB: no image size found: %v", r, lastErr)
}

// DeriveDiskID returns the MBR disk identifier for content identified by
// seed.
func DeriveDiskID(seed []byte) uint32 {
	h := sha256.New()
	h.Write([]byte("uvmbuild mbr disk id v1"))
	h.Write([]byte{0})
	h.Write(seed)
	s := h.Sum(nil)
	for i := 0; i+4 <= len(s); i += 4 {
		if id := binary.LittleEndian.Uint32(s[i:]); id != 0 {
			return id
		}
	}
	return 1
}

// mbrEntry is one 16-byte partition table entry.
type mbrEntry struct {
	Status   byte
	CHSFirst [3]byte
	Type     byte
	CHSLast  [3]byte
	LBAStart uint32
	Sectors  uint32
}

// mbrWire is the 512-byte master boot record.
type mbrWire struct {
	Boot      [440]byte
	DiskID    uint32
	_         [2]byte
	Entries   [4]mbrEntry
	Signature [2]byte
}

// chs encodes an LBA in the 255-head, 63-sector geometry parted and fdisk
// use, clamped to 1023/254/63 beyond 8 GiB.
func chs(lba uint64) [3]byte {
	const heads, sectors = 255, 63
	c := lba / (heads * sectors)
	if c > 1023 {
		return [3]byte{254, 0xff, 0xff}
	}
	h := (lba / sectors) % heads
	s := lba%sectors + 1
	return [3]byte{byte(h), byte(s) | byte((c>>2)&0xc0), byte(c)}
}

// MBR returns the 512-byte master boot record of l.
func (l Layout) MBR(diskID uint32) ([]byte, error) {
	w := mbrWire{DiskID: diskID, Signature: [2]byte{0x55, 0xaa}}
	if len(l.Partitions) > 4 {
		return nil, fmt.Errorf("%d partitions: an MBR holds 4", len(l.Partitions))
	}
	for i, p := range l.Partitions {
		if p.Start%SectorSize != 0 || p.Size%SectorSize != 0 || p.Size <= 0 || p.Start+p.Size > l.Size {
			return nil, fmt.Errorf("partition %d (start %d, size %d): not sector aligned or outside the %d-byte disk", p.Index, p.Start, p.Size, l.Size)
		}
		first, n := uint64(p.Start/SectorSize), uint64(p.Size/SectorSize)
		if first+n > 1<<32 {
			return nil, fmt.Errorf("partition %d ends beyond 2 TiB: not representable in an MBR", p.Index)
		}
		e := mbrEntry{Type: p.Type, CHSFirst: chs(first), CHSLast: chs(first + n - 1), LBAStart: uint32(first), Sectors: uint32(n)}
		if p.Bootable {
			e.Status = 0x80
		}
		w.Entries[i] = e
	}
	return binary.Append(nil, binary.LittleEndian, &w)
}

// ErrNoMBR is returned by DecodeMBR for bytes without the 0x55AA signature.
var ErrNoMBR = errors.New("no MBR signature")

// DecodeMBR reads the disk identifier and partitions of a 512-byte MBR.
func DecodeMBR(b []byte, diskSize int64) (uint32, Layout, error) {
	var w mbrWire
	if len(b) < SectorSize {
		return 0, Layout{}, fmt.Errorf("MBR: %d bytes, want %d", len(b), SectorSize)
	}
	if _, err := binary.Decode(b[:SectorSize], binary.LittleEndian, &w); err != nil {
		return 0, Layout{}, err
	}
	if w.Signature != [2]byte{0x55, 0xaa} {
		return 0, Layout{}, fmt.Errorf("MBR: %w (bytes 510-511 are % x)", ErrNoMBR, w.Signature)
	}
	l := Layout{Size: diskSize}
	for i, e := range w.Entries {
		if e.Type == 0 {
			continue
		}
		l.Partitions = append(l.Partitions, Partition{Index: i + 1, Start: int64(e.LBAStart) * SectorSize,
			Size: int64(e.Sectors) * SectorSize, Type: e.Type, Bootable: e.Status == 0x80})
	}
	l.Measured = len(l.Partitions) == 2
	return w.DiskID, l, nil
}
