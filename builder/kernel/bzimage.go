package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Offsets of the Linux boot protocol setup header (Documentation/arch/x86/boot.rst).
const (
	// SetupHeaderOffset is where struct setup_header starts in the file and in boot_params.
	SetupHeaderOffset = 0x1F1
	// SetupHeaderSize is the number of setup-header bytes copied into
	// boot_params: 0x1F1 up to and including kernel_info_offset (0x268..0x26B).
	SetupHeaderSize = 0x7B

	offSetupSects  = 0x1F1
	offHeaderMagic = 0x202
	offXLoadFlags  = 0x236
	offPrefAddress = 0x258
	offInitSize    = 0x260
	offVersion     = 0x206
	offInitrdMax   = 0x22C
	offCmdlineSize = 0x238

	xlfKernel64 = 1 << 0

	pageSize = 0x1000
	// MinLoadAddress is the exclusive lower bound for pref_address: the
	// layout places ACPI tables and the SNP pages below it.
	MinLoadAddress = 0x300000
	// Entry64Offset is the offset of startup_64 from the load address.
	Entry64Offset = 0x200
)

// ErrNotBzImage is returned (wrapped) when the input lacks the "HdrS" magic
// or is too short to hold a setup header.
var ErrNotBzImage = errors.New("not a bzImage")

// FormatError reports a bad field of a boot image.
type FormatError struct {
	Name   string // input name, e.g. the file path
	Field  string // setup-header field
	Offset int64  // byte offset of the field in the file
	Msg    string // what is wrong, with expected and actual values
	Err    error  // optional sentinel
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%s: bzImage %s at offset %#x: %s", e.Name, e.Field, e.Offset, e.Msg)
}

func (e *FormatError) Unwrap() error { return e.Err }

// BzImage is a parsed bzImage. Payload aliases the input slice (no copy).
type BzImage struct {
	// SetupHeader is the 123-byte setup header copied verbatim into boot_params.
	SetupHeader [SetupHeaderSize]byte
	SetupSects  uint8
	XLoadFlags  uint16
	// PrefAddress is the physical load address (pref_address).
	PrefAddress uint64
	// InitSize is the memory the decompressor needs from PrefAddress (init_size).
	InitSize uint32
	// Version is the boot protocol version (0x206 = 2.06).
	Version uint16
	// InitrdAddrMax is the highest address the initrd may occupy.
	InitrdAddrMax uint32
	// CmdlineSize is the longest command line the kernel accepts, without
	// the NUL (255 before boot protocol 2.06).
	CmdlineSize uint32
	// PayloadOffset is the file offset of the protected-mode payload,
	// (setup_sects+1)*512.
	PayloadOffset int64
	// Payload is the file from PayloadOffset to its end (may be empty).
	Payload []byte
}

// Parse validates the setup header of a bzImage held in data and returns its
// fields; name is used in errors. The checks are those igvmgen makes: "HdrS"
// magic, XLF_KERNEL_64, pref_address > 3 MiB and 4 KiB aligned, init_size
// 4 KiB aligned.
func Parse(name string, data []byte) (*BzImage, error) {
	if len(data) < SetupHeaderOffset+SetupHeaderSize {
		return nil, &FormatError{Name: name, Field: "setup header", Offset: SetupHeaderOffset,
			Msg: fmt.Sprintf("file is %d bytes, need at least %d", len(data), SetupHeaderOffset+SetupHeaderSize), Err: ErrNotBzImage}
	}
	if m := string(data[offHeaderMagic : offHeaderMagic+4]); m != "HdrS" {
		return nil, &FormatError{Name: name, Field: "header", Offset: offHeaderMagic,
			Msg: fmt.Sprintf("magic is %q, want \"HdrS\"", m), Err: ErrNotBzImage}
	}
	k := &BzImage{
		SetupSects:  data[offSetupSects],
		XLoadFlags:  binary.LittleEndian.Uint16(data[offXLoadFlags:]),
		PrefAddress: binary.LittleEndian.Uint64(data[offPrefAddress:]),
		InitSize:    binary.LittleEndian.Uint32(data[offInitSize:]),
	}
	copy(k.SetupHeader[:], data[SetupHeaderOffset:])
	k.Version = binary.LittleEndian.Uint16(data[offVersion:])
	k.InitrdAddrMax = binary.LittleEndian.Uint32(data[offInitrdMax:])
	if k.Version < 0x203 {
		k.InitrdAddrMax = 0x37FFFFFF
	}
	k.CmdlineSize = 255
	if k.Version >= 0x206 {
		k.CmdlineSize = binary.LittleEndian.Uint32(data[offCmdlineSize:])
	}
	if k.XLoadFlags&xlfKernel64 == 0 {
		return nil, &FormatError{Name: name, Field: "xloadflags", Offset: offXLoadFlags,
			Msg: fmt.Sprintf("%#04x lacks XLF_KERNEL_64 (no 64-bit entry point)", k.XLoadFlags)}
	}
	if k.PrefAddress <= MinLoadAddress {
		return nil, &FormatError{Name: name, Field: "pref_address", Offset: offPrefAddress,
			Msg: fmt.Sprintf("load address %#x must be above %#x", k.PrefAddress, MinLoadAddress)}
	}
	if k.PrefAddress%pageSize != 0 {
		return nil, &FormatError{Name: name, Field: "pref_address", Offset: offPrefAddress,
			Msg: fmt.Sprintf("load address %#x is not 4 KiB aligned", k.PrefAddress)}
	}
	if k.InitSize%pageSize != 0 {
		return nil, &FormatError{Name: name, Field: "init_size", Offset: offInitSize,
			Msg: fmt.Sprintf("%#x is not 4 KiB aligned", k.InitSize)}
	}
	k.PayloadOffset = (int64(k.SetupSects) + 1) * 512
	if k.PayloadOffset < int64(len(data)) {
		k.Payload = data[k.PayloadOffset:]
	}
	return k, nil
}

// Entry returns the entry point: startup_64 (PrefAddress+0x200) when x64,
// else the 32-bit entry at PrefAddress.
func (k *BzImage) Entry(x64 bool) uint64 {
	if x64 {
		return k.PrefAddress + Entry64Offset
	}
	return k.PrefAddress
}

// VmlinuxSize is the payload size rounded up to a page.
func (k *BzImage) VmlinuxSize() uint64 {
	return (uint64(len(k.Payload)) + pageSize - 1) &^ (pageSize - 1)
}
