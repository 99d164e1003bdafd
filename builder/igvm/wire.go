package igvm

import "encoding/binary"

// Fixed-header constants.
const (
	Magic           = 0x4D564749 // "IGVM" little-endian
	FormatVersion   = 1
	FixedHeaderSize = 24
	PageSize        = 4096
)

// HeaderType is a variable-header type.
type HeaderType uint32

// Variable header types (igvm_defs).
const (
	TypeSupportedPlatform HeaderType = 0x001
	TypeGuestPolicy       HeaderType = 0x101 // SNP policy
	TypeParameterArea     HeaderType = 0x301
	TypePageData          HeaderType = 0x302
	TypeParameterInsert   HeaderType = 0x303
	TypeVPContext         HeaderType = 0x304
	TypeVPCountParameter  HeaderType = 0x307
	TypeSNPIDBlock        HeaderType = 0x30B
	TypeMemoryMap         HeaderType = 0x30C
)

// String returns the igvm_defs name without the IGVM_VHT_ prefix.
func (t HeaderType) String() string {
	switch t {
	case TypeSupportedPlatform:
		return "SUPPORTED_PLATFORM"
	case TypeGuestPolicy:
		return "SNP_POLICY"
	case TypeParameterArea:
		return "PARAMETER_AREA"
	case TypePageData:
		return "PAGE_DATA"
	case TypeParameterInsert:
		return "PARAMETER_INSERT"
	case TypeVPContext:
		return "VP_CONTEXT"
	case TypeVPCountParameter:
		return "VP_COUNT_PARAMETER"
	case TypeSNPIDBlock:
		return "SNP_ID_BLOCK"
	case TypeMemoryMap:
		return "MEMORY_MAP"
	}
	return "UNKNOWN_0x" + hex32(uint32(t))
}

func hex32(v uint32) string {
	const digits = "0123456789abcdef"
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v >>= 4 {
		b = append([]byte{digits[v&0xf]}, b...)
	}
	return string(b)
}

// Page data types (PAGE_DATA DataType).
const (
	DataNormal  = 0
	DataSecrets = 1
	DataCPUID   = 2
)

// PAGE_DATA flags.
const (
	FlagIs2MBPage    = 1
	FlagUnmeasured   = 2
	FlagGuestInvalid = 4
)

// PlatformSEVSNP is SUPPORTED_PLATFORM.PlatformType for SEV-SNP.
const PlatformSEVSNP = 2

// FixedHeader is the 24-byte file header.
type FixedHeader struct {
	Magic                uint32
	FormatVersion        uint32
	VariableHeaderOffset uint32
	VariableHeaderSize   uint32
	TotalFileSize        uint32
	Checksum             uint32
}

// SupportedPlatform is IGVM_VHS_SUPPORTED_PLATFORM.
type SupportedPlatform struct {
	CompatibilityMask uint32
	HighestVTL        uint8
	PlatformType      uint8
	PlatformVersion   uint16
	SharedGPABoundary uint64
}

// GuestPolicy is IGVM_VHS_GUEST_POLICY (SNP policy).
type GuestPolicy struct {
	Policy            uint64
	CompatibilityMask uint32
	Reserved          uint32
}

// PageData is IGVM_VHS_PAGE_DATA.
type PageData struct {
	GPA               uint64
	CompatibilityMask uint32
	FileOffset        uint32
	Flags             uint32
	DataType          uint16
	Reserved          uint16
}

// pageDataSize is binary.Size(PageData{}).
const pageDataSize = 24

// appendPageData is binary.Append for PageData without reflection: the
// generator writes one per guest page (thousands for a real kernel).
func appendPageData(b []byte, p PageData) []byte {
	b = binary.LittleEndian.AppendUint64(b, p.GPA)
	b = binary.LittleEndian.AppendUint32(b, p.CompatibilityMask)
	b = binary.LittleEndian.AppendUint32(b, p.FileOffset)
	b = binary.LittleEndian.AppendUint32(b, p.Flags)
	b = binary.LittleEndian.AppendUint16(b, p.DataType)
	return binary.LittleEndian.AppendUint16(b, p.Reserved)
}

// ParameterArea is IGVM_VHS_PARAMETER_AREA.
type ParameterArea struct {
	NumberOfBytes      uint64
	ParameterAreaIndex uint32
	FileOffset         uint32
}

// ParameterUsage is IGVM_VHS_PARAMETER (VP_COUNT_PARAMETER, MEMORY_MAP).
type ParameterUsage struct {
	ParameterAreaIndex uint32
	ByteOffset         uint32
}

// ParameterInsert is IGVM_VHS_PARAMETER_INSERT.
type ParameterInsert struct {
	GPA                uint64
	CompatibilityMask  uint32
	ParameterAreaIndex uint32
}

// VPContext is IGVM_VHS_VP_CONTEXT.
type VPContext struct {
	GPA               uint64
	CompatibilityMask uint32
	FileOffset        uint32
	VPIndex           uint16
	Reserved          uint16
}

// SNPSignature is IGVM_VHS_SNP_ID_BLOCK_SIGNATURE: r and s, 48 bytes
// little-endian each, zero-extended to 72.
type SNPSignature struct {
	R [72]byte
	S [72]byte
}

// SNPPublicKey is IGVM_VHS_SNP_ID_BLOCK_PUBLIC_KEY.
type SNPPublicKey struct {
	Curve    uint32
	Reserved uint32
	Qx       [72]byte
	Qy       [72]byte
}

// SNPIDBlock is IGVM_VHS_SNP_ID_BLOCK (696 bytes).
type SNPIDBlock struct {
	CompatibilityMask  uint32
	AuthorKeyEnabled   uint8
	Reserved           [3]uint8
	LD                 [48]byte
	FamilyID           [16]byte
	ImageID            [16]byte
	Version            uint32
	GuestSVN           uint32
	IDKeyAlgorithm     uint32
	AuthorKeyAlgorithm uint32
	IDKeySignature     SNPSignature
	IDPublicKey        SNPPublicKey
	AuthorKeySignature SNPSignature
	AuthorPublicKey    SNPPublicKey
}
