package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// igvmVectors is ../shared/vectors/igvm relative to the repository root.
func igvmVectors(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "shared", "vectors", "igvm")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared igvm vectors not present (%v): comparison with igvmgen skipped", err)
	}
	return dir
}

func igvmNeedIASL(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("iasl"); err != nil {
		t.Skip("iasl not installed (acpica-tools): skipped")
	}
}

func runUvm(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(""), &o, &e)
	return code, o.String(), e.String()
}

// igvmFakeKernel is a minimal bzImage (boot protocol 2.15) with a payload.
func igvmFakeKernel() []byte {
	b := make([]byte, 28*512)
	le := binary.LittleEndian
	b[0x1F1] = 27
	copy(b[0x202:], "HdrS")
	le.PutUint16(b[0x206:], 0x020F)
	le.PutUint32(b[0x22C:], 0x7FFFFFFF)
	le.PutUint16(b[0x236:], 0x7F)
	le.PutUint32(b[0x238:], 0x7FF)
	le.PutUint64(b[0x258:], 0x1000000)
	le.PutUint32(b[0x260:], 0x400000)
	return append(b, bytes.Repeat([]byte("payload!"), 5000)...)
}

func TestIgvmCmdMatchesIgvmgen(t *testing.T) {
	v := igvmVectors(t)
	igvmNeedIASL(t)
	dir := t.TempDir()
	out, js := filepath.Join(dir, "out.igvm"), filepath.Join(dir, "m.json")
	code, stdout, stderr := runUvm(t, "igvm", "--kernel", filepath.Join(v, "inputs", "test_bzImage"),
		"--cmdline", "console=ttyS0 root=/dev/vda1 rw", "--acpi-dir", filepath.Join(v, "acpi-dsl", "acpi-clh"),
		"--id-key", filepath.Join(v, "keys", "test_p384_pkcs8.pem"), "--svn", "3", "-o", out, "--measurement-file", js)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	const digest = "1fef74228bd46b298934a70611275adcbf4892663486443a98d4751054b8bc303ba6e2c27a7e8d1ca74f4d9aa751438a"
	if strings.TrimSpace(stdout) != digest {
		t.Errorf("stdout %q", stdout)
	}
	for _, c := range [][2]string{{out, "ref.igvm"}, {js, "ref.json"}} {
		got, _ := os.ReadFile(c[0])
		want, _ := os.ReadFile(filepath.Join(v, "cases", "kata_x64_opt_clh", c[1]))
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from igvmgen's %s", filepath.Base(c[0]), c[1])
		}
	}
}

func TestMeasureCmd(t *testing.T) {
	v := igvmVectors(t)
	ref := filepath.Join(v, "cases", "x64_noopt_clh_synth", "ref.igvm")
	wantJSON, _ := os.ReadFile(filepath.Join(v, "cases", "x64_noopt_clh_synth", "ref.json"))
	const digest = "35ea5e667c5e08050d6758f564b601930f913321b13162d0248030af198d765e783f01e867d4709fa0c20374a7ecb0e3"
	code, stdout, stderr := runUvm(t, "measure", ref)
	if code != 0 || strings.TrimSpace(stdout) != digest {
		t.Fatalf("exit %d stdout %q stderr %s", code, stdout, stderr)
	}
	code, stdout, _ = runUvm(t, "measure", ref, "--json", "--svn", "3")
	if code != 0 || stdout != string(wantJSON)+"\n" {
		t.Fatalf("--json: exit %d\n%s", code, stdout)
	}
	if code, _, _ = runUvm(t, "measure", ref, "--expect", strings.ToUpper(digest)); code != 0 {
		t.Fatalf("--expect matching: exit %d", code)
	}
	other := strings.Repeat("0", 96)
	code, _, stderr = runUvm(t, "measure", ref, "--expect", other)
	if code != ExitDiffers || !strings.Contains(stderr, digest) || !strings.Contains(stderr, other) {
		t.Fatalf("--expect mismatch: exit %d stderr %s", code, stderr)
	}
	if code, _, _ = runUvm(t, "measure", ref, "--expect", "xyz"); code != ExitUsage {
		t.Fatalf("--expect bad hex: exit %d", code)
	}
	if code, _, _ = runUvm(t, "measure"); code != ExitUsage {
		t.Fatalf("no file: exit %d", code)
	}
	bad := filepath.Join(t.TempDir(), "bad.igvm")
	b, _ := os.ReadFile(ref)
	b[0x30] ^= 0xFF
	os.WriteFile(bad, b, 0o644)
	code, _, stderr = runUvm(t, "measure", bad)
	if code != ExitFailed || !strings.Contains(stderr, "bad.igvm") || !strings.Contains(stderr, "checksum") {
		t.Fatalf("corrupt file: exit %d stderr %s", code, stderr)
	}
}

func TestInspectCmd(t *testing.T) {
	v := igvmVectors(t)
	ref := filepath.Join(v, "cases", "kata_x64_opt_clh_rd", "ref.igvm")
	code, stdout, stderr := runUvm(t, "inspect", ref)
	if code != 0 || !strings.Contains(stdout, `cmdline: "console=ttyS0 root=/dev/vda1 rw"`) || !strings.Contains(stdout, "signature valid true") {
		t.Fatalf("exit %d stderr %s\n%s", code, stderr, stdout)
	}
	code, stdout, _ = runUvm(t, "inspect", "--json", ref)
	var rep map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &rep) != nil || rep["checksum_valid"] != true {
		t.Fatalf("--json: exit %d\n%s", code, stdout)
	}
}

// TestIgvmCmdDefaultACPI builds with uvmbuild's own Cloud Hypervisor tables
// and the default key, twice: same bytes, and measure agrees.
func TestIgvmCmdDefaultACPI(t *testing.T) {
	igvmNeedIASL(t)
	dir := t.TempDir()
	k := filepath.Join(dir, "vmlinuz")
	os.WriteFile(k, igvmFakeKernel(), 0o644)
	var files [2][]byte
	var digest string
	for i := range files {
		out := filepath.Join(dir, "o.igvm")
		code, stdout, stderr := runUvm(t, "igvm", "--kernel", k, "--cmdline", "quiet", "-o", out)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		files[i], _ = os.ReadFile(out)
		digest = strings.TrimSpace(stdout)
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Fatal("two builds differ")
	}
	code, stdout, _ := runUvm(t, "measure", filepath.Join(dir, "o.igvm"), "--expect", digest)
	if code != 0 || strings.TrimSpace(stdout) != digest {
		t.Fatalf("measure: exit %d %q vs %q", code, stdout, digest)
	}
}

func TestIgvmCmdBadInput(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "vmlinuz")
	os.WriteFile(good, igvmFakeKernel(), 0o644)
	notBz := filepath.Join(dir, "notbz")
	os.WriteFile(notBz, make([]byte, 4096), 0o644)
	no64 := igvmFakeKernel()
	binary.LittleEndian.PutUint16(no64[0x236:], 0)
	no64p := filepath.Join(dir, "no64")
	os.WriteFile(no64p, no64, 0o644)
	low := igvmFakeKernel()
	binary.LittleEndian.PutUint64(low[0x258:], 0x100000)
	lowp := filepath.Join(dir, "low")
	os.WriteFile(lowp, low, 0o644)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(p256)
	keyp := filepath.Join(dir, "p256.pem")
	os.WriteFile(keyp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o644)
	acpiDir := filepath.Join(dir, "acpi")
	os.Mkdir(acpiDir, 0o755)
	os.WriteFile(filepath.Join(acpiDir, "facs.dsl"), []byte("[0004] Signature : \"FACS\"\n[0004] Length : 00000040\n"), 0o644)
	brokenDir := filepath.Join(dir, "broken")
	os.Mkdir(brokenDir, 0o755)
	os.WriteFile(filepath.Join(brokenDir, "dsdt.dsl"), []byte("DefinitionBlock (\"\", \"DSDT\", 2, \"X\", \"Y\", 1) { Name ("), 0o644)
	pages := filepath.Join(dir, "pages.bin")
	os.WriteFile(pages, make([]byte, 100), 0o644)
	haveIASL := exec.LookPath
	out := filepath.Join(dir, "out.igvm")
	js := filepath.Join(dir, "out.json")
	for _, c := range []struct {
		name      string
		args      []string
		code      int
		want      []string
		needsIASL bool
	}{
		{"missing kernel flag", []string{"--cmdline", "x"}, ExitUsage, []string{"--kernel"}, false},
		{"both ACPI options", []string{"--kernel", good, "--cmdline", "x", "--acpi-dir", acpiDir, "--acpi-pages", pages}, ExitUsage, []string{"mutually exclusive"}, false},
		{"not a bzImage", []string{"--kernel", notBz, "--cmdline", "x"}, ExitFailed, []string{"notbz", "HdrS"}, true},
		{"no 64-bit entry", []string{"--kernel", no64p, "--cmdline", "x"}, ExitFailed, []string{"no64", "XLF_KERNEL_64"}, true},
		{"load address low", []string{"--kernel", lowp, "--cmdline", "x"}, ExitFailed, []string{"low", "load address"}, true},
		{"cmdline not ASCII", []string{"--kernel", good, "--cmdline", "root=é"}, ExitFailed, []string{"command line", "ASCII"}, true},
		{"cmdline too long", []string{"--kernel", good, "--cmdline", strings.Repeat("a", 3000)}, ExitFailed, []string{"command line", "vmlinuz"}, true},
		{"non-P-384 key", []string{"--kernel", good, "--cmdline", "x", "--id-key", keyp}, ExitFailed, []string{"p256.pem", "P-384"}, false},
		{"ACPI dir missing tables", []string{"--kernel", good, "--cmdline", "x", "--acpi-dir", acpiDir}, ExitFailed, []string{acpiDir, "no "}, true},
		{"iasl failing", []string{"--kernel", good, "--cmdline", "x", "--acpi-dir", brokenDir}, ExitFailed, []string{"dsdt.dsl", "iasl"}, true},
		{"ACPI pages malformed", []string{"--kernel", good, "--cmdline", "x", "--acpi-pages", pages}, ExitFailed, []string{"pages.bin"}, false},
		{"iasl absent", []string{"--kernel", good, "--cmdline", "x", "--iasl", filepath.Join(dir, "no-iasl")}, ExitFailed, []string{"iasl not found"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := haveIASL("iasl"); c.needsIASL && err != nil {
				t.Skip("iasl not installed")
			}
			args := append([]string{"igvm", "-o", out, "--measurement-file", js}, c.args...)
			code, _, stderr := runUvm(t, args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d: %s", code, c.code, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if strings.Contains(e.Name(), "out") {
					t.Errorf("output left behind: %s", e.Name())
				}
			}
		})
	}
}
