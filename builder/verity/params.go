package verity

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"math/bits"
)

// Limits veritysetup 2.6 enforces.
const (
	// MinBlockSize and MaxBlockSize bound data and hash block sizes.
	MinBlockSize = 512
	MaxBlockSize = 512 * 1024
	// MaxSaltSize is the largest salt the superblock can hold.
	MaxSaltSize = 256
	// DefaultBlockSize is veritysetup's default data and hash block size.
	DefaultBlockSize = 4096
	// DefaultHash is veritysetup's default hash algorithm.
	DefaultHash = "sha256"
)

// ErrUnknownHash is returned for a hash algorithm this package cannot compute.
var ErrUnknownHash = errors.New("unknown hash algorithm")

// hashes are the algorithms veritysetup (OpenSSL backend) accepts that the Go
// standard library implements. The names are the ones written into the
// superblock and the kernel table.
func newHashFunc(name string) (func() hash.Hash, error) {
	switch name {
	case "sha1":
		return sha1.New, nil
	case "sha224":
		return sha256.New224, nil
	case "sha256":
		return sha256.New, nil
	case "sha384":
		return sha512.New384, nil
	case "sha512":
		return sha512.New, nil
	case "sha3-224":
		return func() hash.Hash { return sha3.New224() }, nil
	case "sha3-256":
		return func() hash.Hash { return sha3.New256() }, nil
	case "sha3-384":
		return func() hash.Hash { return sha3.New384() }, nil
	case "sha3-512":
		return func() hash.Hash { return sha3.New512() }, nil
	}
	return nil, fmt.Errorf("%w %q (supported: sha1, sha224, sha256, sha384, sha512, sha3-224, sha3-256, sha3-384, sha3-512)", ErrUnknownHash, name)
}

// Params are the format parameters; every field changes the bytes written.
type Params struct {
	// Hash is the algorithm name, e.g. "sha256" (the default when empty).
	Hash string
	// DataBlockSize and HashBlockSize default to 4096 when zero.
	DataBlockSize uint32
	HashBlockSize uint32
	// Salt is prepended to every hashed block; empty means no salt
	// (veritysetup --salt=-).
	Salt []byte
	// UUID is written into the superblock; ignored with NoSuperblock.
	UUID UUID
	// NoSuperblock omits the superblock (veritysetup --no-superblock).
	NoSuperblock bool
}

// withDefaults returns p with zero fields set to veritysetup's defaults.
func (p Params) withDefaults() Params {
	if p.Hash == "" {
		p.Hash = DefaultHash
	}
	if p.DataBlockSize == 0 {
		p.DataBlockSize = DefaultBlockSize
	}
	if p.HashBlockSize == 0 {
		p.HashBlockSize = DefaultBlockSize
	}
	return p
}

func checkBlockSize(field string, v uint32) error {
	if v < MinBlockSize || v > MaxBlockSize || v&(v-1) != 0 {
		return fmt.Errorf("%s %d: must be a power of two from %d to %d", field, v, MinBlockSize, MaxBlockSize)
	}
	return nil
}

// validate checks p (after withDefaults) and returns its hash constructor.
func (p Params) validate() (func() hash.Hash, error) {
	if err := checkBlockSize("data block size", p.DataBlockSize); err != nil {
		return nil, err
	}
	if err := checkBlockSize("hash block size", p.HashBlockSize); err != nil {
		return nil, err
	}
	if len(p.Salt) > MaxSaltSize {
		return nil, fmt.Errorf("salt is %d bytes, at most %d allowed", len(p.Salt), MaxSaltSize)
	}
	nh, err := newHashFunc(p.Hash)
	if err != nil {
		return nil, err
	}
	if nh().Size() > int(p.HashBlockSize) {
		return nil, fmt.Errorf("hash %s digest (%d bytes) does not fit a %d-byte hash block", p.Hash, nh().Size(), p.HashBlockSize)
	}
	return nh, nil
}

// layout is the geometry of the hash device for a data size.
type layout struct {
	dataBlocks uint64
	digestSize int
	slot       int    // digest size rounded up to a power of two
	perBlock   uint64 // digests per hash block
	perBits    uint
	sbBlocks   uint64 // 1 with a superblock, else 0
	levels     int
	levelStart []uint64 // first hash block of level i, counted from the device start
	levelSize  []uint64 // blocks in level i
	hashBlocks uint64   // tree blocks, without the superblock
}

// computeLayout mirrors cryptsetup's hash_levels (lib/verity/verity_hash.c).
func computeLayout(p Params, digestSize int, dataBlocks uint64) (layout, error) {
	l := layout{dataBlocks: dataBlocks, digestSize: digestSize}
	l.perBits = uint(bits.Len32(p.HashBlockSize/uint32(digestSize)) - 1)
	l.perBlock = 1 << l.perBits
	l.slot = 1 << bits.Len(uint(digestSize-1))
	if !p.NoSuperblock {
		l.sbBlocks = 1 // the 512-byte superblock rounded up to one hash block
	}
	for l.perBits*uint(l.levels) < 64 && (dataBlocks-1)>>(l.perBits*uint(l.levels)) != 0 {
		l.levels++
	}
	l.levelStart = make([]uint64, l.levels)
	l.levelSize = make([]uint64, l.levels)
	pos := l.sbBlocks
	for i := l.levels - 1; i >= 0; i-- {
		shift := uint(i+1) * l.perBits
		if shift > 63 {
			return l, fmt.Errorf("%d data blocks: hash tree too deep", dataBlocks)
		}
		s := (dataBlocks + (1 << shift) - 1) >> shift
		l.levelStart[i] = pos
		l.levelSize[i] = s
		pos += s
	}
	l.hashBlocks = pos - l.sbBlocks
	return l, nil
}

// Size describes the hash device that Format writes for dataSize bytes of
// data with p, without reading anything.
func Size(p Params, dataSize int64) (dataBlocks, hashBlocks uint64, hashDeviceSize int64, err error) {
	p = p.withDefaults()
	nh, err := p.validate()
	if err != nil {
		return 0, 0, 0, err
	}
	n, err := dataBlockCount(p, dataSize)
	if err != nil {
		return 0, 0, 0, err
	}
	l, err := computeLayout(p, nh().Size(), n)
	if err != nil {
		return 0, 0, 0, err
	}
	return n, l.hashBlocks, int64(l.sbBlocks+l.hashBlocks) * int64(p.HashBlockSize), nil
}

func dataBlockCount(p Params, dataSize int64) (uint64, error) {
	if dataSize <= 0 {
		return 0, fmt.Errorf("data size %d: must hold at least one %d-byte block", dataSize, p.DataBlockSize)
	}
	if dataSize%int64(p.DataBlockSize) != 0 {
		return 0, fmt.Errorf("data size %d is not a multiple of the data block size %d (veritysetup would silently leave the last %d bytes unprotected)",
			dataSize, p.DataBlockSize, dataSize%int64(p.DataBlockSize))
	}
	return uint64(dataSize / int64(p.DataBlockSize)), nil
}
