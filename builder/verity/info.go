package verity

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Info is what `veritysetup format` reports, the content of the
// node-builder's root_hash.txt.
type Info struct {
	// HashDevice is the name printed in the header line.
	HashDevice     string `json:"hash_device"`
	UUID           string `json:"uuid"` // empty without a superblock
	HashType       int    `json:"hash_type"`
	DataBlocks     uint64 `json:"data_blocks"`
	DataBlockSize  uint32 `json:"data_block_size"`
	HashBlocks     uint64 `json:"hash_blocks"`
	HashBlockSize  uint32 `json:"hash_block_size"`
	HashAlgorithm  string `json:"hash_algorithm"`
	Salt           string `json:"salt"` // hex, "-" for none
	RootHash       string `json:"root_hash"`
	HashDeviceSize int64  `json:"hash_device_size"`
	Superblock     bool   `json:"superblock"`
	HashStartBlock uint64 `json:"hash_start_block"`
	// DMModCreate is the kernel argument for the devices the image is
	// attached as, when known (set by the image builder; not in the text).
	DMModCreate string `json:"dm_mod_create,omitempty"`
}

// Info returns the report for r, naming the hash device hashDevice.
func (r *Result) Info(hashDevice string) Info {
	i := Info{
		HashDevice: hashDevice, HashType: 1, DataBlocks: r.DataBlocks,
		DataBlockSize: r.Params.DataBlockSize, HashBlocks: r.HashBlocks,
		HashBlockSize: r.Params.HashBlockSize, HashAlgorithm: r.Params.Hash,
		Salt: "-", RootHash: hex.EncodeToString(r.RootHash), HashDeviceSize: r.HashDeviceSize,
		Superblock: !r.Params.NoSuperblock, HashStartBlock: r.HashStartBlock(),
	}
	if len(r.Params.Salt) > 0 {
		i.Salt = hex.EncodeToString(r.Params.Salt)
	}
	if i.Superblock {
		i.UUID = r.Params.UUID.String()
	}
	return i
}

// Text renders i exactly as cryptsetup 2.6.1 prints it (labels padded as
// veritysetup does, each value after a TAB).
func (i Info) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "VERITY header information for %s\n", i.HashDevice)
	fmt.Fprintf(&b, "UUID:            \t%s\n", i.UUID)
	fmt.Fprintf(&b, "Hash type:       \t%d\n", i.HashType)
	fmt.Fprintf(&b, "Data blocks:     \t%d\n", i.DataBlocks)
	fmt.Fprintf(&b, "Data block size: \t%d\n", i.DataBlockSize)
	fmt.Fprintf(&b, "Hash blocks:     \t%d\n", i.HashBlocks)
	fmt.Fprintf(&b, "Hash block size: \t%d\n", i.HashBlockSize)
	fmt.Fprintf(&b, "Hash algorithm:  \t%s\n", i.HashAlgorithm)
	fmt.Fprintf(&b, "Salt:            \t%s\n", i.Salt)
	fmt.Fprintf(&b, "Root hash:      \t%s\n", i.RootHash)
	fmt.Fprintf(&b, "Hash device size: \t%d [bytes]\n", i.HashDeviceSize)
	return b.String()
}

// JSON renders i as indented JSON with a trailing newline.
func (i Info) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(i, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// DataSectors is the dm table length in 512-byte sectors.
func (i Info) DataSectors() uint64 { return i.DataBlocks * uint64(i.DataBlockSize/512) }

// Table returns the dm-verity target line "0 <sectors> verity 1 …" for the
// given data and hash devices.
func (i Info) Table(dataDev, hashDev string) string {
	return fmt.Sprintf("0 %d verity %d %s %s %d %d %d %d %s %s %s",
		i.DataSectors(), i.HashType, dataDev, hashDev, i.DataBlockSize, i.HashBlockSize,
		i.DataBlocks, i.HashStartBlock, i.HashAlgorithm, i.RootHash, i.Salt)
}

// KernelArg returns the dm-mod.create= argument the node-builder's IGVM step
// puts on the kernel command line (nodebuilder.md §5.7), e.g.
// dm-mod.create="dm-verity,,,ro,0 <S> verity 1 /dev/vda1 /dev/vda2 4096 4096 <N> 0 sha256 <ROOT> <SALT>".
func (i Info) KernelArg(dataDev, hashDev string) string {
	return `dm-mod.create="dm-verity,,,ro,` + i.Table(dataDev, hashDev) + `"`
}

// ParseText reads a root_hash.txt in the veritysetup layout. It accepts the
// newer " [bytes]" suffix on any numeric line.
func ParseText(r io.Reader) (Info, error) {
	var i Info
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		t := sc.Text()
		if h, ok := strings.CutPrefix(t, "VERITY header information for "); ok {
			i.HashDevice = h
			continue
		}
		k, v, ok := strings.Cut(t, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "[bytes]"))
		num := func() uint64 {
			n, e := strconv.ParseUint(v, 10, 64)
			if e != nil && ok {
				ok = false
			}
			return n
		}
		switch k {
		case "UUID":
			i.UUID = v
		case "Hash type":
			i.HashType = int(num())
		case "Data blocks":
			i.DataBlocks = num()
		case "Data block size":
			i.DataBlockSize = uint32(num())
		case "Hash blocks":
			i.HashBlocks = num()
		case "Hash block size":
			i.HashBlockSize = uint32(num())
		case "Hash algorithm":
			i.HashAlgorithm = v
		case "Salt":
			i.Salt = v
		case "Root hash":
			i.RootHash = v
		case "Hash device size":
			i.HashDeviceSize = int64(num())
		default:
			continue
		}
		if !ok {
			return i, fmt.Errorf("root hash text line %d: %q: value %q is not a number", line, k, v)
		}
		seen[k] = true
	}
	if err := sc.Err(); err != nil {
		return i, err
	}
	for _, k := range []string{"Data blocks", "Data block size", "Hash block size", "Hash algorithm", "Salt", "Root hash"} {
		if !seen[k] {
			return i, fmt.Errorf("root hash text: missing %q line", k)
		}
	}
	i.Superblock = i.UUID != ""
	if i.Superblock {
		i.HashStartBlock = 1
	}
	return i, nil
}
