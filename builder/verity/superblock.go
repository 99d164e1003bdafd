package verity

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// SuperblockSize is the size of the on-disk superblock.
const SuperblockSize = 512

var signature = [8]byte{'v', 'e', 'r', 'i', 't', 'y', 0, 0}

// superblockWire is struct verity_sb from cryptsetup lib/verity/verity.c,
// little endian.
type superblockWire struct {
	Signature     [8]byte  // 0
	Version       uint32   // 8
	HashType      uint32   // 12
	UUID          [16]byte // 16
	Algorithm     [32]byte // 32
	DataBlockSize uint32   // 64
	HashBlockSize uint32   // 68
	DataBlocks    uint64   // 72
	SaltSize      uint16   // 80
	_             [6]byte  // 82
	Salt          [256]byte
	_             [168]byte // 344
}

// Superblock is the decoded dm-verity superblock.
type Superblock struct {
	HashType      uint32
	UUID          UUID
	Algorithm     string
	DataBlockSize uint32
	HashBlockSize uint32
	DataBlocks    uint64
	Salt          []byte
}

// FormatError reports malformed superblock bytes.
type FormatError struct {
	Off   int
	Field string
	Msg   string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("verity superblock: %s at offset %d: %s", e.Field, e.Off, e.Msg)
}

// MarshalBinary encodes s into its 512-byte on-disk form.
func (s *Superblock) MarshalBinary() ([]byte, error) {
	if len(s.Salt) > MaxSaltSize {
		return nil, fmt.Errorf("verity superblock: salt is %d bytes, at most %d allowed", len(s.Salt), MaxSaltSize)
	}
	if len(s.Algorithm) >= 32 {
		return nil, fmt.Errorf("verity superblock: algorithm name %q longer than 31 bytes", s.Algorithm)
	}
	w := superblockWire{
		Signature:     signature,
		Version:       1,
		HashType:      s.HashType,
		UUID:          s.UUID,
		DataBlockSize: s.DataBlockSize,
		HashBlockSize: s.HashBlockSize,
		DataBlocks:    s.DataBlocks,
		SaltSize:      uint16(len(s.Salt)),
	}
	copy(w.Algorithm[:], s.Algorithm)
	copy(w.Salt[:], s.Salt)
	return binary.Append(make([]byte, 0, SuperblockSize), binary.LittleEndian, &w)
}

// DecodeSuperblock parses and checks the first 512 bytes of b.
func DecodeSuperblock(b []byte) (*Superblock, error) {
	if len(b) < SuperblockSize {
		return nil, &FormatError{Off: 0, Field: "length", Msg: fmt.Sprintf("%d bytes, want %d", len(b), SuperblockSize)}
	}
	var w superblockWire
	if _, err := binary.Decode(b[:SuperblockSize], binary.LittleEndian, &w); err != nil {
		return nil, fmt.Errorf("verity superblock: %w", err)
	}
	if w.Signature != signature {
		return nil, &FormatError{Off: 0, Field: "signature", Msg: fmt.Sprintf("%q, want %q", w.Signature[:], signature[:])}
	}
	if w.Version != 1 {
		return nil, &FormatError{Off: 8, Field: "version", Msg: fmt.Sprintf("%d, want 1", w.Version)}
	}
	if w.HashType > 1 {
		return nil, &FormatError{Off: 12, Field: "hash_type", Msg: fmt.Sprintf("%d, want 0 or 1", w.HashType)}
	}
	n := bytes.IndexByte(w.Algorithm[:], 0)
	if n <= 0 {
		return nil, &FormatError{Off: 32, Field: "algorithm", Msg: "empty or not NUL-terminated"}
	}
	if err := checkBlockSize("data block size", w.DataBlockSize); err != nil {
		return nil, &FormatError{Off: 64, Field: "data_block_size", Msg: err.Error()}
	}
	if err := checkBlockSize("hash block size", w.HashBlockSize); err != nil {
		return nil, &FormatError{Off: 68, Field: "hash_block_size", Msg: err.Error()}
	}
	if w.DataBlocks == 0 {
		return nil, &FormatError{Off: 72, Field: "data_blocks", Msg: "zero"}
	}
	if w.SaltSize > MaxSaltSize {
		return nil, &FormatError{Off: 80, Field: "salt_size", Msg: fmt.Sprintf("%d, at most %d", w.SaltSize, MaxSaltSize)}
	}
	return &Superblock{
		HashType:      w.HashType,
		UUID:          w.UUID,
		Algorithm:     string(w.Algorithm[:n]),
		DataBlockSize: w.DataBlockSize,
		HashBlockSize: w.HashBlockSize,
		DataBlocks:    w.DataBlocks,
		Salt:          bytes.Clone(w.Salt[:w.SaltSize]),
	}, nil
}
