package igvmgen

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uvmbuild/uvmbuild/builder/acpi"
	"github.com/uvmbuild/uvmbuild/builder/igvm"
	"github.com/uvmbuild/uvmbuild/builder/kernel"
)

// fakeKernel builds a bzImage with a boot-protocol 2.15 setup header (as a
// 5.x+ kernel has) and the given payload.
func fakeKernel(pref uint64, initSize uint32, payload []byte) []byte {
	b := make([]byte, 28*512)
	le := binary.LittleEndian
	b[0x1F1] = 27 // setup_sects
	le.PutUint16(b[0x1FE:], 0xAA55)
	copy(b[0x202:], "HdrS")
	le.PutUint16(b[0x206:], 0x020F)
	b[0x211] = 1 // loadflags: LOADED_HIGH
	le.PutUint32(b[0x22C:], 0x7FFFFFFF)
	le.PutUint32(b[0x230:], 0x200000)
	b[0x234] = 1
	le.PutUint16(b[0x236:], 0x7F) // xloadflags incl. XLF_KERNEL_64
	le.PutUint32(b[0x238:], 0x7FF)
	le.PutUint64(b[0x258:], pref)
	le.PutUint32(b[0x260:], initSize)
	return append(b, payload...)
}

// fakeACPI is a flat page set: an RSDP-like page and two table pages.
func fakeACPI() *acpi.Tables {
	var flat []byte
	for i, g := range []uint64{0xE0000, 0x100000, 0x101000} {
		flat = binary.LittleEndian.AppendUint64(flat, g)
		pg := make([]byte, acpi.PageSize)
		copy(pg, stream("acpi-"+string(rune('a'+i)), 200))
		flat = append(flat, pg...)
	}
	t, err := acpi.ParseFlat("fake", flat)
	if err != nil {
		panic(err)
	}
	return t
}

func baseParams() Params {
	p := DefaultParams()
	payload := append(stream("k-a", 0x9000), make([]byte, 0x3000)...)
	payload = append(payload, stream("k-b", 777)...)
	p.Kernel, p.KernelName = fakeKernel(0x1000000, 0x400000, payload), "vmlinuz"
	p.Cmdline = []byte("console=hvc0 root=/dev/vda1 ro")
	p.ACPI = fakeACPI()
	return p
}

func TestSelfContained(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []BootMode{BootX64, BootX86} {
		for _, opt := range []bool{true, false} {
			p := baseParams()
			p.BootMode, p.PvalidateOpt = mode, opt
			p.Initrd, p.InitrdName = stream("rd", 7000), "initrd"
			a, err := Generate(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Generate(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			file := a.Bytes()
			if !bytes.Equal(file, b.Bytes()) {
				t.Fatalf("%s opt=%v: two runs differ", mode, opt)
			}
			f, err := igvm.Decode(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := igvm.Validate(f); err != nil {
				t.Fatalf("%s opt=%v: %v", mode, opt, err)
			}
			m, err := Measure(ctx, bytes.NewReader(file), int64(len(file)))
			if err != nil {
				t.Fatal(err)
			}
			if m.Digest != a.Digest || *m.IDBlockLD != a.Digest {
				t.Fatalf("%s opt=%v: Measure %s, Generate %s", mode, opt, m.Digest, a.Digest)
			}
			rep, err := Inspect(ctx, bytes.NewReader(file), int64(len(file)))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Cmdline == nil || *rep.Cmdline != string(p.Cmdline) || !rep.IDBlock.SignatureValid {
				t.Fatalf("%s opt=%v: inspect cmdline %v sig %v", mode, opt, rep.Cmdline, rep.IDBlock.SignatureValid)
			}
		}
	}
}

// Every byte-changing parameter changes the file; measured ones change the
// digest, CPUID variant and key change only the file.
func TestParamsMatter(t *testing.T) {
	ctx := context.Background()
	base, err := Generate(ctx, baseParams())
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for _, c := range []struct {
		name          string
		mut           func(*Params)
		digestChanges bool
	}{
		{"cmdline", func(p *Params) { p.Cmdline = append(p.Cmdline, 'x') }, true},
		{"initrd", func(p *Params) { p.Initrd = []byte{1} }, true},
		{"boot mode", func(p *Params) { p.BootMode = BootX86 }, true},
		{"svme", func(p *Params) { p.SVME = false }, true},
		{"encrypted", func(p *Params) { p.EncryptedPage = false }, true},
		{"pvalidate", func(p *Params) { p.PvalidateOpt = false }, true},
		{"arch", func(p *Params) { p.Arch = ArchAMD }, true},
		{"vtl", func(p *Params) { p.VTL = 2 }, false},
		{"cpuid", func(p *Params) { p.CPUID = CPUIDAzureLinux }, false},
		{"key", func(p *Params) { p.IDKey = otherKey }, false},
		{"key from IDKeyFunc", func(p *Params) {
			p.IDKeyFunc = func() (*ecdsa.PrivateKey, error) { return otherKey, nil }
		}, false},
	} {
		p := baseParams()
		c.mut(&p)
		im, err := Generate(ctx, p)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if bytes.Equal(im.Bytes(), base.Bytes()) {
			t.Errorf("%s: file unchanged", c.name)
		}
		if (im.Digest != base.Digest) != c.digestChanges {
			t.Errorf("%s: digest changed = %v, want %v", c.name, im.Digest != base.Digest, c.digestChanges)
		}
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, c := range []struct {
		name string
		mut  func(*Params)
		want []string
	}{
		{"not a bzImage", func(p *Params) { p.Kernel = make([]byte, 4096) }, []string{"vmlinuz", "HdrS"}},
		{"no 64-bit entry", func(p *Params) { binary.LittleEndian.PutUint16(p.Kernel[0x236:], 0) }, []string{"vmlinuz", "XLF_KERNEL_64"}},
		{"load below 3 MiB", func(p *Params) { binary.LittleEndian.PutUint64(p.Kernel[0x258:], 0x200000) }, []string{"vmlinuz", "must be above"}},
		{"load below SNP pages", func(p *Params) { binary.LittleEndian.PutUint64(p.Kernel[0x258:], 0x400000) }, []string{"vmlinuz", "below 0x804000"}},
		{"load unaligned", func(p *Params) { binary.LittleEndian.PutUint64(p.Kernel[0x258:], 0x1000100) }, []string{"vmlinuz", "aligned"}},
		{"cmdline not ASCII", func(p *Params) { p.Cmdline = []byte("root=/dev/vda\xc3\xa9") }, []string{"command line", "ASCII"}},
		{"cmdline NUL", func(p *Params) { p.Cmdline = []byte("a\x00b") }, []string{"command line", "NUL"}},
		{"cmdline too long", func(p *Params) { p.Cmdline = bytes.Repeat([]byte("a"), 0x800) }, []string{"command line", "vmlinuz", "at most 2047"}},
		{"initrd does not fit", func(p *Params) {
			binary.LittleEndian.PutUint32(p.Kernel[0x22C:], 0x1000000)
			p.Initrd, p.InitrdName = make([]byte, 0x1000), "big.img"
		}, []string{"big.img", "does not fit"}},
		{"payload too big for init_size", func(p *Params) { binary.LittleEndian.PutUint32(p.Kernel[0x260:], 0x20000) }, []string{"vmlinuz", "init_size"}},
		{"non-P-384 key", func(p *Params) { p.IDKey = p256 }, []string{"P-384"}},
		{"non-P-384 key from IDKeyFunc", func(p *Params) {
			p.IDKeyFunc = func() (*ecdsa.PrivateKey, error) { return p256, nil }
		}, []string{"P-384"}},
		{"IDKeyFunc error", func(p *Params) {
			p.IDKeyFunc = func() (*ecdsa.PrivateKey, error) { return nil, errors.New("key.pem: no PEM block") }
		}, []string{"key.pem", "no PEM block"}},
		{"IDKey and IDKeyFunc", func(p *Params) {
			k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			p.IDKey, p.IDKeyFunc = k, func() (*ecdsa.PrivateKey, error) { return k, nil }
		}, []string{"both"}},
		{"no ACPI", func(p *Params) { p.ACPI = nil }, []string{"ACPI"}},
	} {
		p := baseParams()
		c.mut(&p)
		_, err := Generate(ctx, p)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", c.name, err, w)
			}
		}
	}
	p := baseParams()
	p.Kernel = make([]byte, 10)
	if _, err := Generate(ctx, p); !errors.Is(err, kernel.ErrNotBzImage) {
		t.Errorf("short kernel: %v is not ErrNotBzImage", err)
	}
}

func TestMeasurementJSON(t *testing.T) {
	d := strings.Repeat("ab", 48)
	got := string(MarshalMeasurement(Measurement{SVN: "7\"\\\n\t\x01é😀/<>&\x7f", LaunchMeasurement: d}))
	want := "{\n  \"x-ms-sevsnpvm-guestsvn\": \"7\\\"\\\\\\n\\t\\u0001\\u00e9\\ud83d\\ude00/<>&\\u007f\",\n  \"x-ms-sevsnpvm-launchmeasurement\": \"" + d + "\"\n}"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	m, err := ParseMeasurement("m.json", []byte(got))
	if err != nil || m.SVN != "7\"\\\n\t\x01é😀/<>&\x7f" || m.LaunchMeasurement != d {
		t.Fatalf("parse: %+v %v", m, err)
	}
	if _, err := ParseMeasurement("bad.json", []byte(`{"x-ms-sevsnpvm-guestsvn": 3}`)); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Fatalf("bad json: %v", err)
	}
	for _, bad := range []string{
		`{"x-ms-sevsnpvm-guestsvn": "0", "x-ms-sevsnpvm-launchmeasurement": "` + d + `", "x-ms-sevsnpvm-extra": "1"}`,
		`{"x-ms-sevsnpvm-guestsvn": "0", "x-ms-sevsnpvm-launchmeasurement": "` + strings.ToUpper(d) + `"}`,
		`{"x-ms-sevsnpvm-launchmeasurement": "` + d + `"}`,
		`{"x-ms-sevsnpvm-guestsvn": "0", "x-ms-sevsnpvm-launchmeasurement": "` + d + `"}{}`,
	} {
		if _, err := ParseMeasurement("bad.json", []byte(bad)); err == nil || !strings.Contains(err.Error(), "bad.json") {
			t.Errorf("ParseMeasurement(%s): %v, want an error naming bad.json", bad, err)
		}
	}
}

func FuzzMeasure(f *testing.F) {
	im, err := Generate(context.Background(), baseParams())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(im.Bytes()[:len(im.Header)+8192])
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Measure(context.Background(), bytes.NewReader(b), int64(len(b)))
		_, _ = Inspect(context.Background(), bytes.NewReader(b), int64(len(b)))
	})
}

// GenerateFile writes the same bytes as Generate + WriteTo, and leaves
// nothing behind on error.
func TestGenerateFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, opt := range []bool{true, false} {
		p := baseParams()
		p.PvalidateOpt = opt
		p.Initrd, p.InitrdName = stream("rd", 9000), "rd"
		want, err := Generate(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "f.igvm")
		got, err := GenerateFile(ctx, p, path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		if !bytes.Equal(b, want.Bytes()) || got.Digest != want.Digest || int64(len(b)) != got.Size() {
			t.Fatalf("opt=%v: GenerateFile differs from Generate", opt)
		}
	}
	p := baseParams()
	p.Cmdline = []byte("\xff")
	if _, err := GenerateFile(ctx, p, filepath.Join(dir, "bad.igvm")); err == nil {
		t.Fatal("bad cmdline accepted")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
}

// manyBatchParams has a kernel of a few hundred pages, so that pages span
// many hashing batches: zero pages (no file data) at and across batch
// boundaries, a partial last page, and an initrd.
func manyBatchParams() Params {
	p := baseParams()
	var payload []byte
	for i := 0; i < 300; i++ {
		switch {
		case i%97 == 5, i >= 120 && i < 140, i == 63, i == 64: // zero runs, one across a boundary
			payload = append(payload, make([]byte, pageSize)...)
		default:
			payload = append(payload, stream("page"+string(rune(i)), pageSize)...)
		}
	}
	payload = append(payload, stream("tail", 1234)...)
	p.Kernel = fakeKernel(0x1000000, 0x400000, payload)
	p.Initrd, p.InitrdName = stream("rd", 3*pageSize+5), "rd"
	return p
}

// GenerateFile writes each batch at its offset: the same bytes as
// Generate + WriteTo when pages span many batches, in both layouts.
func TestGenerateFileManyBatches(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, opt := range []bool{true, false} {
		p := manyBatchParams()
		p.PvalidateOpt = opt
		want, err := Generate(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		j, err := prepare(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if len(j.batchData) < 5 {
			t.Fatalf("opt=%v: only %d batches, the test needs several", opt, len(j.batchData))
		}
		// A fresh output, then one replacing a file (written back batch by
		// batch as it is written).
		path := filepath.Join(dir, fmt.Sprintf("f-%v.igvm", opt))
		for _, what := range []string{"fresh", "replacing"} {
			got, err := GenerateFile(ctx, p, path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			if !bytes.Equal(b, want.Bytes()) || got.Digest != want.Digest {
				t.Fatalf("opt=%v, %s: GenerateFile differs from Generate", opt, what)
			}
			m, err := Measure(ctx, bytes.NewReader(b), int64(len(b)))
			if err != nil || m.Digest != want.Digest {
				t.Fatalf("opt=%v, %s: Measure %v (%v), want %s", opt, what, m, err, want.Digest)
			}
		}
	}
}

// A write error in a worker stops the run and is returned.
func TestRunWriteError(t *testing.T) {
	ctx := context.Background()
	j, err := prepare(ctx, manyBatchParams())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ro")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path) // read-only: every write fails
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := j.run(ctx, f); err == nil {
		t.Fatal("run wrote to a read-only file")
	}
}

// A key given through IDKeyFunc signs exactly as the same key in IDKey.
func TestIDKeyFunc(t *testing.T) {
	ctx := context.Background()
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p := baseParams()
	p.IDKey = k
	want, err := Generate(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	p.IDKey, p.IDKeyFunc = nil, func() (*ecdsa.PrivateKey, error) { calls++; return k, nil }
	got, err := GenerateFile(ctx, p, filepath.Join(t.TempDir(), "k.igvm"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Header, want.Header) || calls != 1 {
		t.Fatalf("IDKeyFunc (called %d times) signs differently from IDKey", calls)
	}
	// Its error is returned as is (not as a write error) and no file is left.
	dir := t.TempDir()
	p.IDKeyFunc = func() (*ecdsa.PrivateKey, error) { return nil, errors.New("key.pem: no PEM block") }
	if _, err := GenerateFile(ctx, p, filepath.Join(dir, "k.igvm")); err == nil || err.Error() != "key.pem: no PEM block" {
		t.Fatalf("GenerateFile with a bad key: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
}
