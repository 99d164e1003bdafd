package igvm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// FormatError reports malformed IGVM bytes at an offset.
type FormatError struct {
	Offset int64
	Msg    string
}

func (e *FormatError) Error() string { return fmt.Sprintf("IGVM offset %#x: %s", e.Offset, e.Msg) }

// ErrChecksum is wrapped by Validate when the CRC-32 does not match.
var ErrChecksum = errors.New("checksum mismatch")

// Header is one variable header as read; Body aliases the header bytes.
type Header struct {
	Offset int64 // file offset of the {type,length} pair
	Type   HeaderType
	Body   []byte
}

// File is a decoded IGVM file: its headers; data pages stay in the
// underlying reader.
type File struct {
	Fixed FixedHeader
	// Raw is the header section [0, VariableHeaderOffset+VariableHeaderSize).
	Raw     []byte
	Headers []Header
	Size    int64
}

// maxHeaderSection bounds what Read allocates for headers (the format's
// offsets are 32-bit; real files have a few hundred KiB of headers).
const maxHeaderSection = 256 << 20

// Read decodes the fixed and variable headers of an IGVM file of the given
// size. It allocates at most the header section, which must lie in the file.
func Read(r io.ReaderAt, size int64) (*File, error) {
	var fb [FixedHeaderSize]byte
	if size < FixedHeaderSize {
		return nil, &FormatError{0, fmt.Sprintf("file is %d bytes, shorter than the %d-byte fixed header", size, FixedHeaderSize)}
	}
	if _, err := r.ReadAt(fb[:], 0); err != nil {
		return nil, fmt.Errorf("reading IGVM fixed header: %w", err)
	}
	var h FixedHeader
	if _, err := binary.Decode(fb[:], binary.LittleEndian, &h); err != nil {
		return nil, err
	}
	if h.Magic != Magic {
		return nil, &FormatError{0, fmt.Sprintf("magic %#08x, want %#08x (\"IGVM\")", h.Magic, Magic)}
	}
	if h.FormatVersion != FormatVersion {
		return nil, &FormatError{4, fmt.Sprintf("format version %d, want %d", h.FormatVersion, FormatVersion)}
	}
	if h.VariableHeaderOffset < FixedHeaderSize {
		return nil, &FormatError{8, fmt.Sprintf("variable header offset %#x overlaps the fixed header", h.VariableHeaderOffset)}
	}
	end := int64(h.VariableHeaderOffset) + int64(h.VariableHeaderSize)
	if end > size || end > maxHeaderSection {
		return nil, &FormatError{12, fmt.Sprintf("variable headers end at %#x, beyond the file (%d bytes)", end, size)}
	}
	raw := make([]byte, end)
	if _, err := r.ReadAt(raw, 0); err != nil {
		return nil, fmt.Errorf("reading IGVM headers: %w", err)
	}
	f := &File{Fixed: h, Raw: raw, Size: size}
	for off := int64(h.VariableHeaderOffset); off < end; {
		if end-off < 8 {
			return nil, &FormatError{off, fmt.Sprintf("%d trailing bytes, too short for a header", end-off)}
		}
		t := HeaderType(binary.LittleEndian.Uint32(raw[off:]))
		n := int64(binary.LittleEndian.Uint32(raw[off+4:]))
		if n > end-off-8 {
			return nil, &FormatError{off + 4, fmt.Sprintf("%s length %d runs past the header section end %#x", t, n, end)}
		}
		f.Headers = append(f.Headers, Header{Offset: off, Type: t, Body: raw[off+8 : off+8+n]})
		off += 8 + (n+7)&^7
	}
	return f, nil
}

// Decode is Read over an in-memory file.
func Decode(b []byte) (*File, error) { return Read(bytes.NewReader(b), int64(len(b))) }

// Unmarshal decodes h's body into the wire struct v (a pointer), checking
// the body is at least as long as the struct.
func (h Header) Unmarshal(v any) error {
	n := binary.Size(v)
	if n < 0 || len(h.Body) < n {
		return &FormatError{h.Offset, fmt.Sprintf("%s body is %d bytes, want %d", h.Type, len(h.Body), n)}
	}
	_, err := binary.Decode(h.Body, binary.LittleEndian, v)
	return err
}

// PageData decodes a PAGE_DATA body.
func (h Header) PageData() (PageData, error) {
	var p PageData
	if len(h.Body) < pageDataSize {
		return p, &FormatError{h.Offset, fmt.Sprintf("PAGE_DATA body is %d bytes, want %d", len(h.Body), pageDataSize)}
	}
	b := h.Body
	p.GPA = binary.LittleEndian.Uint64(b)
	p.CompatibilityMask = binary.LittleEndian.Uint32(b[8:])
	p.FileOffset = binary.LittleEndian.Uint32(b[12:])
	p.Flags = binary.LittleEndian.Uint32(b[16:])
	p.DataType = binary.LittleEndian.Uint16(b[20:])
	p.Reserved = binary.LittleEndian.Uint16(b[22:])
	return p, nil
}

// headerClass orders header types: platform (0x001–0x0FF), then
// initialization (0x100–0x1FF), then directives (0x300–0x3FF).
func headerClass(t HeaderType) int {
	switch {
	case t < 0x100:
		return 0
	case t < 0x200:
		return 1
	case t >= 0x300 && t < 0x400:
		return 2
	}
	return -1
}

// Validate checks the invariants igvmgen's output (and the microsoft/igvm
// parser) rely on: sizes, the CRC-32, header order, body sizes of known
// headers and that every file-data reference lies inside the file.
func Validate(f *File) error {
	h := f.Fixed
	end := int64(h.VariableHeaderOffset) + int64(h.VariableHeaderSize)
	if int64(h.TotalFileSize) != f.Size {
		return &FormatError{16, fmt.Sprintf("total file size field %d, file is %d bytes", h.TotalFileSize, f.Size)}
	}
	tmp := bytes.Clone(f.Raw)
	binary.LittleEndian.PutUint32(tmp[20:], 0)
	if got := crc32.ChecksumIEEE(tmp); got != h.Checksum {
		return fmt.Errorf("%w: %w", &FormatError{20, fmt.Sprintf("checksum field %#08x, computed %#08x", h.Checksum, got)}, ErrChecksum)
	}
	class := 0
	checkData := func(hd Header, fo uint32) error {
		if fo == 0 {
			return nil
		}
		if int64(fo) < end || int64(fo)+PageSize > f.Size {
			return &FormatError{hd.Offset, fmt.Sprintf("%s file offset %#x outside the data section [%#x, %#x)", hd.Type, fo, end, f.Size)}
		}
		return nil
	}
	for _, hd := range f.Headers {
		c := headerClass(hd.Type)
		if c < 0 {
			return &FormatError{hd.Offset, fmt.Sprintf("unknown header type %#x", uint32(hd.Type))}
		}
		if c < class {
			return &FormatError{hd.Offset, fmt.Sprintf("%s after a later-class header", hd.Type)}
		}
		class = c
		var err error
		switch hd.Type {
		case TypePageData:
			var p PageData
			if p, err = hd.PageData(); err == nil {
				err = checkData(hd, p.FileOffset)
			}
		case TypeVPContext:
			var v VPContext
			if err = hd.Unmarshal(&v); err == nil {
				err = checkData(hd, v.FileOffset)
			}
		case TypeSupportedPlatform:
			err = hd.Unmarshal(&SupportedPlatform{})
		case TypeGuestPolicy:
			err = hd.Unmarshal(&GuestPolicy{})
		case TypeParameterArea:
			err = hd.Unmarshal(&ParameterArea{})
		case TypeParameterInsert:
			err = hd.Unmarshal(&ParameterInsert{})
		case TypeVPCountParameter, TypeMemoryMap:
			err = hd.Unmarshal(&ParameterUsage{})
		case TypeSNPIDBlock:
			err = hd.Unmarshal(&SNPIDBlock{})
		}
		if err != nil {
			return err
		}
	}
	return nil
}
