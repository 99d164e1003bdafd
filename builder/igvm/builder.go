package igvm

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// HeaderBuilder accumulates variable headers. Headers that carry a page of
// file data get their FileOffset assigned by Finish, in the order they were
// added (data page k lives at headers_end + 4096·k).
type HeaderBuilder struct {
	buf     []byte // fixed header placeholder + variable headers
	patches []int  // buf offsets of FileOffset fields to assign, in data order
}

// NewHeaderBuilder returns a builder; sizeHint is the expected number of
// headers (to size the buffer once).
func NewHeaderBuilder(sizeHint int) *HeaderBuilder {
	b := &HeaderBuilder{buf: make([]byte, FixedHeaderSize, FixedHeaderSize+sizeHint*32+1024)}
	return b
}

// Add appends a header whose body is v encoded with encoding/binary.
func (b *HeaderBuilder) Add(t HeaderType, v any) {
	body, err := binary.Append(nil, binary.LittleEndian, v)
	if err != nil {
		panic(fmt.Sprintf("igvm: %T is not a fixed-size wire struct: %v", v, err)) // programming error
	}
	b.AddRaw(t, body)
}

// AddRaw appends a header with the given body and '0' padding to 8 bytes.
func (b *HeaderBuilder) AddRaw(t HeaderType, body []byte) {
	b.buf = binary.LittleEndian.AppendUint32(b.buf, uint32(t))
	b.buf = binary.LittleEndian.AppendUint32(b.buf, uint32(len(body)))
	b.buf = append(b.buf, body...)
	b.pad()
}

func (b *HeaderBuilder) pad() {
	for len(b.buf)%8 != 0 {
		b.buf = append(b.buf, '0') // igvmgen pads with ASCII '0', not NUL
	}
}

// AddPageData appends a PAGE_DATA header. If withData, its FileOffset is
// assigned by Finish and the caller must supply that page's data in order.
func (b *HeaderBuilder) AddPageData(p PageData, withData bool) {
	b.buf = binary.LittleEndian.AppendUint32(b.buf, uint32(TypePageData))
	b.buf = binary.LittleEndian.AppendUint32(b.buf, pageDataSize)
	if withData {
		b.patches = append(b.patches, len(b.buf)+12)
	}
	b.buf = appendPageData(b.buf, p)
}

// AddVPContext appends a VP_CONTEXT header whose VMSA page is file data.
func (b *HeaderBuilder) AddVPContext(v VPContext) {
	start := len(b.buf)
	b.Add(TypeVPContext, v)
	b.patches = append(b.patches, start+8+12)
}

// DataPages is the number of data pages registered so far.
func (b *HeaderBuilder) DataPages() int { return len(b.patches) }

// Len is the current size of fixed + variable headers.
func (b *HeaderBuilder) Len() int { return len(b.buf) }

// Finish assigns FileOffsets, fills the fixed header and the CRC-32 and
// returns the header section (fixed + variable headers). The file is that
// section followed by DataPages() pages of data.
func (b *HeaderBuilder) Finish() ([]byte, error) {
	end := uint64(len(b.buf))
	total := end + uint64(len(b.patches))*PageSize
	if total > math.MaxUint32 {
		return nil, fmt.Errorf("IGVM file would be %d bytes, over the format's 4 GiB limit", total)
	}
	for k, off := range b.patches {
		binary.LittleEndian.PutUint32(b.buf[off:], uint32(end+uint64(k)*PageSize))
	}
	h := FixedHeader{
		Magic: Magic, FormatVersion: FormatVersion, VariableHeaderOffset: FixedHeaderSize,
		VariableHeaderSize: uint32(end - FixedHeaderSize), TotalFileSize: uint32(total),
	}
	putFixed(b.buf, h)
	binary.LittleEndian.PutUint32(b.buf[20:], crc32.ChecksumIEEE(b.buf))
	return b.buf, nil
}

func putFixed(dst []byte, h FixedHeader) {
	binary.LittleEndian.PutUint32(dst[0:], h.Magic)
	binary.LittleEndian.PutUint32(dst[4:], h.FormatVersion)
	binary.LittleEndian.PutUint32(dst[8:], h.VariableHeaderOffset)
	binary.LittleEndian.PutUint32(dst[12:], h.VariableHeaderSize)
	binary.LittleEndian.PutUint32(dst[16:], h.TotalFileSize)
	binary.LittleEndian.PutUint32(dst[20:], h.Checksum)
}
