package snp

import (
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
)

// PageSize is the SNP page size.
const PageSize = 4096

// DigestSize is the size of a SHA-384 digest.
const DigestSize = sha512.Size384

// Digest is a SHA-384 launch digest.
type Digest [DigestSize]byte

// String returns the lowercase hex form used in measurement files.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// PageType is the PAGE_INFO PAGE_TYPE field.
type PageType uint8

// Page types (SEV-SNP ABI, SNP_LAUNCH_UPDATE).
const (
	PageNormal     PageType = 1
	PageVMSA       PageType = 2
	PageZero       PageType = 3
	PageUnmeasured PageType = 4
	PageSecrets    PageType = 5
	PageCPUID      PageType = 6
)

// pageInfoSize is the PAGE_INFO structure size (0x70).
const pageInfoSize = 0x70

// ZeroPageDigest returns SHA-384 of an all-zero page (callers in loops
// should compute it once).
func ZeroPageDigest() Digest {
	var z [PageSize]byte
	return sha512.Sum384(z[:])
}

// Chain is the running launch digest. The zero value is the initial state
// (48 zero bytes).
type Chain struct {
	cur Digest
	buf [pageInfoSize]byte
}

// Add extends the digest with one page: contents is SHA-384 of the page for
// NORMAL and VMSA pages and must be the zero digest for the others.
func (c *Chain) Add(t PageType, gpa uint64, contents *Digest) {
	b := c.buf[:]
	copy(b[0:48], c.cur[:])
	if contents != nil {
		copy(b[48:96], contents[:])
	} else {
		clear(b[48:96])
	}
	binary.LittleEndian.PutUint16(b[0x60:], pageInfoSize)
	b[0x62] = byte(t)
	b[0x63] = 0 // IMI_PAGE
	clear(b[0x64:0x68])
	binary.LittleEndian.PutUint64(b[0x68:], gpa)
	c.cur = sha512.Sum384(b)
}

// Digest returns the current launch digest.
func (c *Chain) Digest() Digest { return c.cur }
