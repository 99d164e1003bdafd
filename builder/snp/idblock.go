package snp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// DefaultPolicy is the guest policy igvmgen always uses: ABI minor 0x1F,
// SMT allowed, reserved bit 17 set, no debug, no migration agent.
const DefaultPolicy = 0x3001F

// IDBlockSize is the size of the signed SNP ID block.
const IDBlockSize = 96

// IDBlock is the SNP ID block (SEV-SNP ABI, SNP_LAUNCH_FINISH).
type IDBlock struct {
	LD       Digest
	FamilyID [16]byte
	ImageID  [16]byte
	Version  uint32
	GuestSVN uint32
	Policy   uint64
}

// DefaultIDBlock returns igvmgen's hard-coded ID block for digest ld:
// family 01.., image 02.., version 1, guest SVN 2, policy 0x3001F.
func DefaultIDBlock(ld Digest) IDBlock {
	b := IDBlock{LD: ld, Version: 1, GuestSVN: 2, Policy: DefaultPolicy}
	b.FamilyID[0] = 1
	b.ImageID[0] = 2
	return b
}

// Bytes encodes the block as signed (96 bytes, little-endian).
func (b IDBlock) Bytes() []byte {
	out := make([]byte, 0, IDBlockSize)
	out = append(out, b.LD[:]...)
	out = append(out, b.FamilyID[:]...)
	out = append(out, b.ImageID[:]...)
	out = binary.LittleEndian.AppendUint32(out, b.Version)
	out = binary.LittleEndian.AppendUint32(out, b.GuestSVN)
	out = binary.LittleEndian.AppendUint64(out, b.Policy)
	return out
}

// Signature is an ECDSA P-384 signature and the public key that verifies it,
// each coordinate as 48 bytes little-endian (the SNP wire order).
type Signature struct {
	R, S   [48]byte
	Qx, Qy [48]byte
}

// CheckKey reports whether key can sign ID blocks (a P-384 key).
func CheckKey(key *ecdsa.PrivateKey) error {
	if key == nil || key.Curve != elliptic.P384() {
		name := "nil"
		if key != nil {
			name = key.Curve.Params().Name
		}
		return fmt.Errorf("ID key curve is %s, want P-384", name)
	}
	return nil
}

// Sign signs the ID block with key using ECDSA P-384/SHA-384 and RFC 6979
// deterministic nonces (crypto/ecdsa with a nil random source).
func Sign(key *ecdsa.PrivateKey, b IDBlock) (Signature, error) {
	var sig Signature
	if err := CheckKey(key); err != nil {
		return sig, err
	}
	h := sha512.Sum384(b.Bytes())
	der, err := key.Sign(nil, h[:], crypto.SHA384)
	if err != nil {
		return sig, fmt.Errorf("signing ID block: %w", err)
	}
	r, s, err := parseDER(der)
	if err != nil {
		return sig, err
	}
	putLE(sig.R[:], r)
	putLE(sig.S[:], s)
	pub, err := key.PublicKey.Bytes() // 04 || X || Y, big-endian
	if err != nil {
		return sig, fmt.Errorf("ID public key: %w", err)
	}
	putLE(sig.Qx[:], new(big.Int).SetBytes(pub[1:49]))
	putLE(sig.Qy[:], new(big.Int).SetBytes(pub[49:97]))
	return sig, nil
}

// Verify checks sig over b with the public key it carries.
func Verify(b IDBlock, sig Signature) bool {
	x, y := getLE(sig.Qx[:]), getLE(sig.Qy[:])
	raw := make([]byte, 97)
	raw[0] = 4
	x.FillBytes(raw[1:49])
	y.FillBytes(raw[49:97])
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P384(), raw)
	if err != nil {
		return false
	}
	h := sha512.Sum384(b.Bytes())
	return ecdsa.Verify(pub, h[:], getLE(sig.R[:]), getLE(sig.S[:]))
}

func putLE(dst []byte, v *big.Int) {
	v.FillBytes(dst)
	for i, j := 0, len(dst)-1; i < j; i, j = i+1, j-1 {
		dst[i], dst[j] = dst[j], dst[i]
	}
}

func getLE(src []byte) *big.Int {
	be := make([]byte, len(src))
	for i := range src {
		be[len(src)-1-i] = src[i]
	}
	return new(big.Int).SetBytes(be)
}

// parseDER decodes an ASN.1 ECDSA-Sig-Value (SEQUENCE of two INTEGERs).
func parseDER(der []byte) (r, s *big.Int, err error) {
	bad := errors.New("malformed ECDSA signature")
	if len(der) < 2 || der[0] != 0x30 {
		return nil, nil, bad
	}
	rest := der[2:]
	if der[1]&0x80 != 0 {
		n := int(der[1] & 0x7f)
		if n > 2 || len(der) < 2+n {
			return nil, nil, bad
		}
		rest = der[2+n:]
	}
	readInt := func(b []byte) (*big.Int, []byte, error) {
		if len(b) < 2 || b[0] != 0x02 || int(b[1]) > len(b)-2 {
			return nil, nil, bad
		}
		return new(big.Int).SetBytes(b[2 : 2+int(b[1])]), b[2+int(b[1]):], nil
	}
	if r, rest, err = readInt(rest); err != nil {
		return nil, nil, err
	}
	if s, _, err = readInt(rest); err != nil {
		return nil, nil, err
	}
	return r, s, nil
}

// ParseKey reads a P-384 private key from PEM (see [ParseECKey]). name is
// used in errors.
func ParseKey(name string, pemBytes []byte) (*ecdsa.PrivateKey, error) {
	ec, err := ParseECKey(name, pemBytes)
	if err != nil {
		return nil, err
	}
	if ec.Curve != elliptic.P384() {
		return nil, fmt.Errorf("%s: key curve is %s, want P-384", name, ec.Curve.Params().Name)
	}
	return ec, nil
}

// ParseECKey reads the first ECDSA private key of any curve from PEM: SEC1
// "EC PRIVATE KEY" or PKCS#8 "PRIVATE KEY"; other blocks (e.g. the
// "EC PARAMETERS" block `openssl ecparam -genkey` writes first) are
// skipped. name is used in errors.
func ParseECKey(name string, pemBytes []byte) (*ecdsa.PrivateKey, error) {
	rest := pemBytes
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, fmt.Errorf("%s: no \"EC PRIVATE KEY\" or \"PRIVATE KEY\" PEM block", name)
		}
		var key any
		var err error
		switch blk.Type {
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(blk.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: parsing %s: %w", name, blk.Type, err)
		}
		ec, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s: key is %T, want an ECDSA key", name, key)
		}
		return ec, nil
	}
}

// DefaultKeySeed is the public seed of [DefaultKey]. The private scalar is
// SHA-384(DefaultKeySeed) reduced modulo the P-384 group order (a zero
// result, which cannot happen for this seed, would be invalid).
const DefaultKeySeed = "uvmbuild-igvm-id-key-v1: public, proves nothing"

// DefaultKey returns the P-384 key derived from [DefaultKeySeed]. Everybody
// can derive it: signatures made with it carry no authority.
func DefaultKey() (*ecdsa.PrivateKey, error) { return KeyFromSeed([]byte(DefaultKeySeed)) }

// KeyFromSeed derives a P-384 private key: d = SHA-384(seed) mod n.
func KeyFromSeed(seed []byte) (*ecdsa.PrivateKey, error) {
	h := sha512.Sum384(seed)
	n := elliptic.P384().Params().N
	d := new(big.Int).Mod(new(big.Int).SetBytes(h[:]), n)
	if d.Sign() == 0 {
		return nil, errors.New("seed gives a zero private key")
	}
	raw := make([]byte, 48)
	d.FillBytes(raw)
	return ecdsa.ParseRawPrivateKey(elliptic.P384(), raw)
}
