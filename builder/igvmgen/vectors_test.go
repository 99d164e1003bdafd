package igvmgen

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/uvmbuild/uvmbuild/builder/acpi"
	"github.com/uvmbuild/uvmbuild/builder/acpi/iasl"
	"github.com/uvmbuild/uvmbuild/builder/igvm"
	"github.com/uvmbuild/uvmbuild/builder/snp"
)

// vectorDir is ../shared/vectors/igvm relative to the repository root.
func vectorDir(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "vectors", "igvm")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared igvm vectors not present (%v): igvmgen byte comparison skipped", err)
	}
	return dir
}

func readVec(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// stream is the vectors README's synthetic byte stream:
// SHA-256(label || u32le(0)) || SHA-256(label || u32le(1)) || ..., cut to n.
func stream(label string, n int) []byte {
	out := make([]byte, 0, n+32)
	for i := uint32(0); len(out) < n; i++ {
		s := sha256.Sum256(binary.LittleEndian.AppendUint32([]byte(label), i))
		out = append(out, s[:]...)
	}
	return out[:n]
}

// synthKernel rebuilds synth_bzImage: test_bzImage zero-padded to 0x3800,
// 64 KiB of stream A, 8 KiB of zeros, 100003 bytes of stream B.
func synthKernel(testBz []byte) []byte {
	b := make([]byte, 0x3800, 0x3800+0x10000+0x2000+100003)
	copy(b, testBz)
	b = append(b, stream("igvm-synth-kernel-A", 0x10000)...)
	b = append(b, make([]byte, 0x2000)...)
	return append(b, stream("igvm-synth-kernel-B", 100003)...)
}

func synthInitrd() []byte { return stream("igvm-synth-initrd", 5000) }

func TestSynthInputsRecipe(t *testing.T) {
	k := synthKernel(readVec(t, "inputs/test_bzImage"))
	if got := sha(k); got != "98841258c686aea150b8f49c3233fbe9489a90fb604688ea11051cd5e1e67c22" {
		t.Errorf("synth_bzImage sha256 %s", got)
	}
	if !bytes.Equal(k, readVec(t, "inputs/synth_bzImage")) {
		t.Error("regenerated synth_bzImage differs from the vector file")
	}
	if got := sha(synthInitrd()); got != "8861d35a36987b339a98dcc966ed6e10f141f88c711e6aadb45dff64e30df2e2" {
		t.Errorf("synth_initrd sha256 %s", got)
	}
}

// acpiCache compiles each DSL directory once per test binary run.
type acpiCache struct {
	mu sync.Mutex
	m  map[string]*acpi.Tables
}

func (c *acpiCache) get(t testing.TB, which string) *acpi.Tables {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if tab := c.m[which]; tab != nil {
		return tab
	}
	var tab *acpi.Tables
	var err error
	if which == "default" {
		tab, err = acpi.ParseFlat("default_acpi_pages.bin", readVec(t, "default_acpi_pages.bin"))
	} else {
		if _, lerr := exec.LookPath("iasl"); lerr != nil {
			t.Skip("iasl not installed (acpica-tools): cases with DSL ACPI tables skipped")
		}
		dir := filepath.Join(vectorDir(t), "acpi-dsl", "acpi-"+which)
		tab, err = acpi.FromDSL(context.Background(), dir, os.DirFS(dir), iasl.Compiler{})
	}
	if err != nil {
		t.Fatal(err)
	}
	if c.m == nil {
		c.m = map[string]*acpi.Tables{}
	}
	c.m[which] = tab
	return tab
}

type vecCase struct {
	name   string
	synth  bool
	mode   BootMode
	vtl    uint8
	svme   bool
	enc    bool
	opt    bool
	acpi   string
	initrd bool
	arch   Arch
	cpuid  CPUIDVariant
	size   int64
	sha    string
	digest string
}

// The vectors README's table (igvmgen HEAD 53656dd, iasl 20200925).
var vecCases = []vecCase{
	{"kata_x64_opt_clh", false, BootX64, 0, true, true, true, "clh", false, ArchIntel, CPUIDDefault, 74488,
		"ac04c048ef3bc8bddd08cc639b90dd23a98a1f56cbe9ecedc9676e7eaa2bcdab", "1fef74228bd46b298934a70611275adcbf4892663486443a98d4751054b8bc303ba6e2c27a7e8d1ca74f4d9aa751438a"},
	{"kata_x64_opt_clh_synth", true, BootX64, 0, true, true, true, "clh", false, ArchIntel, CPUIDDefault, 243800,
		"5d8060ebf7310815718ed18fe68b71e49d941df409b8e2d079c20cda008acb01", "4955b7465d7efcff49b5f428ded9e527adbcae1f2573bf0282d861cd99bd940b3796a3915ac44b6027af262dbcc4db73"},
	{"kata_x64_opt_clh_rd", true, BootX64, 0, true, true, true, "clh", true, ArchIntel, CPUIDDefault, 252056,
		"00272ffed8148b4cdc8610ee9d70bc5f2dc534117898ee7a20925892dc803153", "b74b126528450a838428252b2b3e73f8147c33878f94d04a03254cee9c1f481b12f823d314e808cb4444e0f9fb02f33d"},
	{"kata_patched", true, BootX64, 0, true, true, true, "clh", false, ArchIntel, CPUIDAzureLinux, 243800,
		"1a736e053a3c9a17ff45fc03dcd5c020d4bde40ce8f83dc71d1d4b6f04833a1d", "4955b7465d7efcff49b5f428ded9e527adbcae1f2573bf0282d861cd99bd940b3796a3915ac44b6027af262dbcc4db73"},
	{"x86_opt_clh_synth", true, BootX86, 0, true, true, true, "clh", true, ArchIntel, CPUIDDefault, 243800,
		"bba09ec36cb9394e6fd9f4cf9883331e4859a3d5c2e830d04492e204cc648d42", "037ed33e79d029bfe616338c025285b7b2e8bc983e50b8b2501aff61ebb690d5b9a37675eb79bdcd83e598bd129433d4"},
	{"x64_noopt_clh_synth", true, BootX64, 0, true, true, false, "clh", true, ArchIntel, CPUIDDefault, 471960,
		"11d93ac872ff900e0a5e861f44e46d3ca3d5a0aaaacfee73381e97b9b7d85a63", "35ea5e667c5e08050d6758f564b601930f913321b13162d0248030af198d765e783f01e867d4709fa0c20374a7ecb0e3"},
	{"x86_noopt_default_amd", true, BootX86, 2, false, false, false, "default", false, ArchAMD, CPUIDDefault, 561656,
		"0bdf8ff44f0b04cc4f4b685092e47a07c0cd3dc3a2e5bf331741d8ca3152b9f0", "2326b55f21c6c0690ee890179a0073ac56f0d35298fbef50f1bea08e51265638b56d83f9bb9d754cdb44aaa79a443785"},
	{"x64_opt_test_synth", true, BootX64, 2, true, true, true, "test", true, ArchIntel, CPUIDDefault, 347000,
		"75d66a4a1ae591f07c81b56c61410711bbba8f54e83bc7d2d9af0b4085ffbdb6", "fbded18ede193a0c0399ea1f6dc90b94a61c768b27de799299593a118aa6e3e48ef7a2cbcc9a25a600d92861a3022b94"},
	{"x64_opt_default_synth", true, BootX64, 2, true, false, true, "default", false, ArchIntel, CPUIDDefault, 350008,
		"1217e71b9959b4f43386acc745879c7c09b0e5631dad42d818ef02777db289de", "abf1de5193ca425481171219e8c963e94fc55f68e3645fe6fa5a88cbfcc918f952d13a0ca50c4c2aaa87925f5971066d"},
}

func TestVectorCases(t *testing.T) {
	var cache acpiCache
	testBz := readVec(t, "inputs/test_bzImage")
	// The vector key is d = SHA-384("igvm-spec-test-key") mod n; the PEM
	// file in the vectors must parse to the same key.
	key, err := snp.KeyFromSeed([]byte("igvm-spec-test-key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"keys/test_p384.pem", "keys/test_p384_pkcs8.pem"} {
		k, err := snp.ParseKey(f, readVec(t, f))
		if err != nil || !k.Equal(key) {
			t.Fatalf("%s: %v (equal %v)", f, err, err == nil && k.Equal(key))
		}
	}
	for _, c := range vecCases {
		t.Run(c.name, func(t *testing.T) {
			p := Params{
				KernelName: "test_bzImage", Kernel: testBz, Cmdline: []byte("console=ttyS0 root=/dev/vda1 rw"),
				ACPI: cache.get(t, c.acpi), BootMode: c.mode, VTL: c.vtl, SVME: c.svme, EncryptedPage: c.enc,
				PvalidateOpt: c.opt, Arch: c.arch, CPUID: c.cpuid, IDKey: key,
			}
			if c.synth {
				p.Kernel, p.KernelName = synthKernel(testBz), "synth_bzImage"
			}
			if c.initrd {
				p.Initrd, p.InitrdName = synthInitrd(), "synth_initrd"
			}
			im, err := Generate(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if im.Digest.String() != c.digest {
				t.Errorf("digest %s, want %s", im.Digest, c.digest)
			}
			got := im.Bytes()
			if int64(len(got)) != c.size || im.Size() != c.size || sha(got) != c.sha {
				t.Errorf("IGVM %d bytes sha256 %s, want %d %s", len(got), sha(got), c.size, c.sha)
			}
			ref := readVec(t, filepath.Join("cases", c.name, "ref.igvm"))
			if !bytes.Equal(got, ref) {
				t.Errorf("IGVM differs from igvmgen's ref.igvm (first difference at %#x)", firstDiff(got, ref))
			}
			js := MarshalMeasurement(Measurement{SVN: "3", LaunchMeasurement: im.Digest.String()})
			if want := readVec(t, filepath.Join("cases", c.name, "ref.json")); !bytes.Equal(js, want) {
				t.Errorf("JSON\n%s\nwant\n%s", js, want)
			}
			f, err := igvm.Decode(got)
			if err != nil {
				t.Fatal(err)
			}
			if err := igvm.Validate(f); err != nil {
				t.Fatal(err)
			}
			// measure agrees with igvmgen on igvmgen's own file.
			m, err := Measure(context.Background(), bytes.NewReader(ref), int64(len(ref)))
			if err != nil {
				t.Fatal(err)
			}
			if m.Digest.String() != c.digest || m.IDBlockLD == nil || *m.IDBlockLD != m.Digest {
				t.Errorf("Measure(ref.igvm) = %s, want %s", m.Digest, c.digest)
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// mockSignature zeroes r, s, Qx and Qy in the ID block and fixes the CRC, as
// igvm-tooling's unit tests do with their mocked signer.
func mockSignature(t *testing.T, file []byte) []byte {
	f, err := igvm.Decode(file)
	if err != nil {
		t.Fatal(err)
	}
	out := bytes.Clone(file)
	for _, h := range f.Headers {
		if h.Type == igvm.TypeSNPIDBlock {
			body := out[h.Offset+8:]
			for _, r := range [][2]int{{0x68, 0x98}, {0xB0, 0xE0}, {0x100, 0x130}, {0x148, 0x178}} {
				clear(body[r[0]:r[1]])
			}
		}
	}
	end := len(f.Raw)
	binary.LittleEndian.PutUint32(out[20:], 0)
	binary.LittleEndian.PutUint32(out[20:], crc32.ChecksumIEEE(out[:end]))
	return out
}

func TestUnitTestVectors(t *testing.T) {
	var cache acpiCache
	testBz := readVec(t, "inputs/test_bzImage")
	for _, c := range []struct {
		file   string
		mode   BootMode
		enc    bool
		opt    bool
		acpi   string
		cks    uint32
		digest string
	}{
		{"testBzImage.igvm", BootX86, false, true, "test", 0x04db92e6, "f783d4246e715e38220e86b5504cbff3c2d914bcf09455fc3354489152755c32a72ec9aa5f67163b4200b9e8066097e7"},
		{"testBzImage64.igvm", BootX64, true, true, "default", 0xf74ad757, "a34d854051100c72616d1ebda1ccee6cb03513af722e475de6e5cb6d193acd2e4aa22bf12e5fb03d660c869ec52202e9"},
		{"testBzImageNoOpt.igvm", BootX86, false, false, "test", 0x01e537ad, "e025644323d07a94513cff511f9bee06770f42f58b92995120629360b87a9e44dca287aa623c3e07fd99c3393e6fed5b"},
	} {
		t.Run(c.file, func(t *testing.T) {
			p := Params{
				KernelName: "test_bzImage", Kernel: testBz, Cmdline: []byte("panic=-1 console=ttySEV0"),
				ACPI: cache.get(t, c.acpi), BootMode: c.mode, VTL: 2, SVME: true, EncryptedPage: c.enc,
				PvalidateOpt: c.opt, Arch: ArchIntel, CPUID: CPUIDDefault,
			}
			im, err := Generate(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if im.Digest.String() != c.digest {
				t.Errorf("digest %s, want %s", im.Digest, c.digest)
			}
			got := mockSignature(t, im.Bytes())
			if cks := binary.LittleEndian.Uint32(got[20:]); cks != c.cks {
				t.Errorf("checksum %#08x, want %#08x", cks, c.cks)
			}
			want := readVec(t, filepath.Join("unittest", c.file))
			if !bytes.Equal(got, want) {
				t.Errorf("differs from %s at %#x", c.file, firstDiff(got, want))
			}
			m, err := Measure(context.Background(), bytes.NewReader(want), int64(len(want)))
			if err != nil || m.Digest.String() != c.digest {
				t.Errorf("Measure(%s) = %v, %v", c.file, m, err)
			}
		})
	}
}

// TestRandomKeyVector: the vectors' measurement-only case (igvmgen with a
// fresh random key, kata flags, svn 7). The IGVM bytes depend on the key but
// the launch digest and JSON must not; Measure agrees on our file.
func TestRandomKeyVector(t *testing.T) {
	var cache acpiCache
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := DefaultParams()
	p.Kernel, p.KernelName = readVec(t, "inputs/test_bzImage"), "test_bzImage"
	p.Cmdline, p.ACPI, p.IDKey = []byte("console=ttyS0 root=/dev/vda1"), cache.get(t, "clh"), key
	im, err := Generate(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	const want = "ad92f991483c028704eac3d597c349f61c9988db6d475a883ddb013c73df564169190db6b98ce767b1b23b6bdbd73949"
	if im.Digest.String() != want {
		t.Fatalf("digest %s, want %s", im.Digest, want)
	}
	file := im.Bytes()
	m, err := Measure(context.Background(), bytes.NewReader(file), int64(len(file)))
	if err != nil || m.Digest.String() != want {
		t.Fatalf("Measure: %v %v", m, err)
	}
	js := string(MarshalMeasurement(Measurement{SVN: "7", LaunchMeasurement: want}))
	if js != "{\n  \"x-ms-sevsnpvm-guestsvn\": \"7\",\n  \"x-ms-sevsnpvm-launchmeasurement\": \""+want+"\"\n}" {
		t.Fatalf("JSON %q", js)
	}
}
