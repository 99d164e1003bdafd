package actions

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/uvmbuild/uvmbuild/builder/graph"
)

func igvmSpecJSON(t *testing.T, p IGVMParams) string {
	t.Helper()
	s, err := IGVMSpec(p)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// Every parameter that changes output bytes changes the Spec.
func TestIGVMSpecCoversParams(t *testing.T) {
	base := DefaultIGVMParams()
	base.IASLVersion = "20200925"
	ref := igvmSpecJSON(t, base)
	for name, mut := range map[string]func(*IGVMParams){
		"cmdline": func(p *IGVMParams) { p.Cmdline = "x" }, "boot": func(p *IGVMParams) { p.BootMode = "x86" },
		"vtl": func(p *IGVMParams) { p.VTL = 2 }, "svme": func(p *IGVMParams) { p.SVME = false },
		"enc": func(p *IGVMParams) { p.EncryptedPage = false }, "opt": func(p *IGVMParams) { p.PvalidateOpt = false },
		"arch": func(p *IGVMParams) { p.Arch = "amd" }, "cpuid": func(p *IGVMParams) { p.CPUID = "azure-linux" },
		"svn": func(p *IGVMParams) { p.SVN = "1" }, "acpi": func(p *IGVMParams) { p.ACPI = ACPIDir },
		"iasl": func(p *IGVMParams) { p.IASLVersion = "20240322" },
	} {
		p := base
		mut(&p)
		if igvmSpecJSON(t, p) == ref {
			t.Errorf("%s does not change the spec", name)
		}
	}
	if _, err := IGVMSpec(DefaultIGVMParams()); err == nil {
		t.Error("compiled ACPI without IASLVersion accepted")
	}
	p := DefaultIGVMParams()
	p.ACPI = ACPIPages
	if _, err := IGVMSpec(p); err != nil {
		t.Errorf("pages need no iasl: %v", err)
	}
}

func TestIGVMRun(t *testing.T) {
	if _, err := exec.LookPath("iasl"); err != nil {
		t.Skip("iasl not installed (acpica-tools)")
	}
	ctx := context.Background()
	_, file, _, _ := runtime.Caller(0)
	vec := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "vectors", "igvm")
	if _, err := os.Stat(vec); err != nil {
		t.Skipf("shared igvm vectors not present (%v)", err)
	}
	v, err := IASLVersion(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if v != "20200925" {
		t.Skipf("iasl %s, the vectors were made with 20200925", v)
	}
	p := DefaultIGVMParams()
	p.Cmdline, p.SVN, p.ACPI, p.IASLVersion = "console=ttyS0 root=/dev/vda1 rw", "3", ACPIDir, v
	spec, err := IGVMSpec(p)
	if err != nil {
		t.Fatal(err)
	}
	s := &graph.Step{ID: "igvm", Spec: spec, Outputs: []string{"uvm.igvm", "measurement.json"}, Exec: &IGVM{}}
	out, log, err := igvmRun(t, ctx, s, map[string]string{
		IGVMInputKernel: filepath.Join(vec, "inputs", "test_bzImage"),
		IGVMInputACPI:   filepath.Join(vec, "acpi-dsl", "acpi-clh"),
		IGVMInputIDKey:  filepath.Join(vec, "keys", "test_p384.pem"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{"uvm.igvm", "ref.igvm"}, {"measurement.json", "ref.json"}} {
		got, _ := os.ReadFile(filepath.Join(out, c[0]))
		want, _ := os.ReadFile(filepath.Join(vec, "cases", "kata_x64_opt_clh", c[1]))
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from igvmgen's %s", c[0], c[1])
		}
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != 2 {
		t.Errorf("output dir has %d entries", len(ents))
	}
	if !strings.Contains(log, "1fef7422") {
		t.Errorf("log %q", log)
	}

	// Built-in tables; a wrong iasl version in the key is refused.
	p = DefaultIGVMParams()
	p.IASLVersion = "19990101"
	spec, _ = IGVMSpec(p)
	s = &graph.Step{ID: "igvm2", Spec: spec, Outputs: []string{"uvm.igvm"}, Exec: &IGVM{}}
	k := make([]byte, 28*512)
	k[0x1F1] = 27
	copy(k[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(k[0x236:], 1)
	binary.LittleEndian.PutUint64(k[0x258:], 0x1000000)
	binary.LittleEndian.PutUint32(k[0x260:], 0x400000)
	kp := filepath.Join(t.TempDir(), "k")
	os.WriteFile(kp, k, 0o644)
	if _, _, err := igvmRun(t, ctx, s, map[string]string{IGVMInputKernel: kp}); err == nil || !strings.Contains(err.Error(), "19990101") {
		t.Fatalf("iasl version mismatch: %v", err)
	}
	p.IASLVersion = v
	spec, _ = IGVMSpec(p)
	s.Spec = spec
	if _, _, err := igvmRun(t, ctx, s, map[string]string{IGVMInputKernel: kp}); err != nil {
		t.Fatal(err)
	}
}

// igvmRun executes s as the graph does: fresh output and temp directories.
func igvmRun(t *testing.T, ctx context.Context, s *graph.Step, inputs map[string]string) (string, string, error) {
	t.Helper()
	base := t.TempDir()
	out, tmp := filepath.Join(base, "out"), filepath.Join(base, "tmp")
	os.Mkdir(out, 0o755)
	os.Mkdir(tmp, 0o700)
	var log bytes.Buffer
	err := s.Exec.Run(ctx, &graph.Exec{Step: s, Inputs: inputs, OutDir: out, TempDir: tmp, Log: &log})
	return out, log.String(), err
}
