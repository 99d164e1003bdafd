package snp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Values from the igvmgen vectors (README of vectors/igvm, case kata_x64_opt_clh).
const (
	vecLD = "1fef74228bd46b298934a70611275adcbf4892663486443a98d4751054b8bc303ba6e2c27a7e8d1ca74f4d9aa751438a"
	vecR  = "f606cc85fe21061ffc128a9d7b65e19d4667ed91c909282ea9718580c37b2b044012455da343d675f21dd25c507fd351"
	vecS  = "842f16e15f57ab53fbcb12aaebeb1668c98bdf797eefc0d21f8560d30e9da1b3ccee4eba6cb92edb8b8260a7e2f4134a"
	vecQx = "03f1b1050c7f3ea258e7f899fd59a74e6dc95aec560203c8b7a09d27cb54b60a9cd1cec53a39dd89b9d7335423d22918"
	vecQy = "14b4a2c58a98e830e6611220decd0b30061ad60b31bcd35b8d2a721aa23d3c08c154fc677a8428d01b8b14f94e4bfff8"
	vecD  = "564f70d96aeb5fac13f2ffa6d0e23db5d24f41a918820e99a01ed59416ad8aaea7d0328ed375c1ed1218023db19541da"
)

func TestSignVector(t *testing.T) {
	// The vector key is d = SHA-384("igvm-spec-test-key") mod n.
	key, err := KeyFromSeed([]byte("igvm-spec-test-key"))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(key.D.FillBytes(make([]byte, 48))); got != vecD {
		t.Fatalf("d = %s, want %s", got, vecD)
	}
	var ld Digest
	copy(ld[:], mustHex(t, vecLD))
	blk := DefaultIDBlock(ld)
	want := vecLD + "01" + strings.Repeat("00", 15) + "02" + strings.Repeat("00", 15) + "01000000" + "02000000" + "1f00030000000000"
	if got := hex.EncodeToString(blk.Bytes()); got != want {
		t.Fatalf("ID block\n got %s\nwant %s", got, want)
	}
	sig, err := Sign(key, blk)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{{"r", sig.R[:], vecR}, {"s", sig.S[:], vecS}, {"Qx", sig.Qx[:], vecQx}, {"Qy", sig.Qy[:], vecQy}} {
		if hex.EncodeToString(c.got) != c.want {
			t.Errorf("%s = %x, want %s", c.name, c.got, c.want)
		}
	}
	if !Verify(blk, sig) {
		t.Error("signature does not verify")
	}
	blk.GuestSVN = 3
	if Verify(blk, sig) {
		t.Error("signature verifies over a different block")
	}
}

func TestChainVector(t *testing.T) {
	// Spec §11: first two steps of kata_x64_opt_clh are zero NORMAL pages.
	var c Chain
	z := ZeroPageDigest()
	if z.String() != "c0e59a3e3ffbd3b5c75428fb36432facabc745944296ff515f737c4fef4efc64586809f7a16f56354a1eaecf2aa8d774" {
		t.Fatalf("zero digest %s", z)
	}
	c.Add(PageNormal, 0xA0000, &z)
	if got := c.Digest().String(); got != "dfd6364bc33b9d20cd93e5147ec153ba3d121dd525ab409bdf3a4e460006bdfd4564c6419a1a4d18fa1f4459a6212cca" {
		t.Fatalf("step 0 %s", got)
	}
	c.Add(PageNormal, 0xA1000, &z)
	if got := c.Digest().String(); got != "c0fd49bb687842d50ee42bac6d541e9b9b5cde8c43631a3427a4bb431c9510aaa3ee9f5cbe037e9969c812525fab59e4" {
		t.Fatalf("step 1 %s", got)
	}
}

func TestParseKey(t *testing.T) {
	key, err := DefaultKey()
	if err != nil {
		t.Fatal(err)
	}
	sec1, _ := x509.MarshalECPrivateKey(key)
	pk8, _ := x509.MarshalPKCS8PrivateKey(key)
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 5, 0x2b, 0x81, 4, 0, 0x22}})
	for name, p := range map[string][]byte{
		"sec1":   pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
		"pkcs8":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk8}),
		"params": append(params, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...),
	} {
		got, err := ParseKey(name, p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !got.Equal(key) {
			t.Fatalf("%s: different key", name)
		}
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(p256)
	_, err = ParseKey("k256.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	if err == nil || !strings.Contains(err.Error(), "k256.pem") || !strings.Contains(err.Error(), "P-384") {
		t.Fatalf("P-256 key: err = %v", err)
	}
	if _, err := ParseKey("empty.pem", []byte("nothing")); err == nil || !strings.Contains(err.Error(), "empty.pem") {
		t.Fatalf("no PEM: err = %v", err)
	}
}

func TestDefaultKeyStable(t *testing.T) {
	a, _ := DefaultKey()
	b, _ := DefaultKey()
	var ld Digest
	sa, _ := Sign(a, DefaultIDBlock(ld))
	sb, _ := Sign(b, DefaultIDBlock(ld))
	if sa != sb {
		t.Fatal("default-key signature is not deterministic")
	}
}

// The default key is a documented constant (docs/igvm.md): pin it.
func TestDefaultKeyPinned(t *testing.T) {
	k, err := DefaultKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := k.PublicKey.Bytes()
	const want = "04253dbe2c01acf8d4d5ae3f022d2dcb7920f2cddab5946153f190b1345c7f64613a132cd1c7908e75067a25cad77ae0c3ab9a4d096f1c20e3c7769b6f36124ec3e450c23f0ad6b9c38bc442e6215ae9b72d1d76deb60a8324fca90c1d1c85f313"
	if hex.EncodeToString(pub) != want {
		t.Fatalf("default public key %x", pub)
	}
}
