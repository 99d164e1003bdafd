package actions

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/verity"
)

func TestVerityIGVMSpec(t *testing.T) {
	p := DefaultIGVMParams()
	p.IASLVersion = "20200925"
	a, err := VerityIGVMSpec(p, "/dev/vda1", "/dev/vda2", " quiet")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Params["cmdline"]; ok || a.Kind != VerityIGVMKind {
		t.Errorf("spec %+v", a)
	}
	for name, mk := range map[string]func() (graph.Spec, error){
		"tail":     func() (graph.Spec, error) { return VerityIGVMSpec(p, "/dev/vda1", "/dev/vda2", " debug") },
		"data dev": func() (graph.Spec, error) { return VerityIGVMSpec(p, "/dev/vdb1", "/dev/vda2", " quiet") },
		"hash dev": func() (graph.Spec, error) { return VerityIGVMSpec(p, "/dev/vda1", "/dev/vdb2", " quiet") },
		"svn": func() (graph.Spec, error) {
			q := p
			q.SVN = "7"
			return VerityIGVMSpec(q, "/dev/vda1", "/dev/vda2", " quiet")
		},
	} {
		b, err := mk()
		if err != nil {
			t.Fatal(err)
		}
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if bytes.Equal(ja, jb) {
			t.Errorf("%s does not change the spec", name)
		}
	}
	q := p
	q.Cmdline = "x"
	if _, err := VerityIGVMSpec(q, "/dev/vda1", "/dev/vda2", ""); err == nil {
		t.Error("a fixed command line was accepted")
	}
}

// TestVerityIGVMRun: the command line is dm-mod.create= of the verity input
// plus the tail, byte for byte, and the IGVM equals a plain IGVM step given
// that command line.
func TestVerityIGVMRun(t *testing.T) {
	if _, err := exec.LookPath("iasl"); err != nil {
		t.Skip("iasl not installed (acpica-tools)")
	}
	ctx := context.Background()
	v, err := IASLVersion(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	k := make([]byte, 28*512) // minimal bzImage header, as in TestIGVMRun
	k[0x1F1] = 27
	copy(k[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(k[0x236:], 1)
	binary.LittleEndian.PutUint64(k[0x258:], 0x1000000)
	binary.LittleEndian.PutUint32(k[0x260:], 0x400000)
	kp := filepath.Join(dir, "bzImage")
	if err := os.WriteFile(kp, k, 0o644); err != nil {
		t.Fatal(err)
	}
	info := verity.Info{HashDevice: "/dev/vda2", HashType: 1, DataBlocks: 61440, DataBlockSize: 4096, HashBlocks: 485,
		HashBlockSize: 4096, HashAlgorithm: "sha256", Salt: strings.Repeat("ab", 32), RootHash: strings.Repeat("cd", 32)}
	vj, _ := json.Marshal(info)
	vp := filepath.Join(dir, "verity.json")
	if err := os.WriteFile(vp, vj, 0o644); err != nil {
		t.Fatal(err)
	}
	tail := " \troot=/dev/dm-0 quiet"
	p := DefaultIGVMParams()
	p.IASLVersion = v
	spec, err := VerityIGVMSpec(p, "/dev/vda1", "/dev/vda2", tail)
	if err != nil {
		t.Fatal(err)
	}
	s := &graph.Step{ID: "igvm", Spec: spec, Outputs: []string{"a.igvm", "a.json", VerityIGVMOutputCmdline}, Exec: &VerityIGVM{}}
	out, _, err := igvmRun(t, ctx, s, map[string]string{IGVMInputKernel: kp, VerityIGVMInputVerity: vp})
	if err != nil {
		t.Fatal(err)
	}
	want := `dm-mod.create="dm-verity,,,ro,0 491520 verity 1 /dev/vda1 /dev/vda2 4096 4096 61440 0 sha256 ` +
		strings.Repeat("cd", 32) + " " + strings.Repeat("ab", 32) + `"` + tail
	got, _ := os.ReadFile(filepath.Join(out, VerityIGVMOutputCmdline))
	if string(got) != want {
		t.Errorf("cmdline\n got %q\nwant %q", got, want)
	}
	p.Cmdline = want
	plain, err := IGVMSpec(p)
	if err != nil {
		t.Fatal(err)
	}
	ps := &graph.Step{ID: "plain", Spec: plain, Outputs: []string{"a.igvm", "a.json"}, Exec: &IGVM{}}
	pout, _, err := igvmRun(t, ctx, ps, map[string]string{IGVMInputKernel: kp})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a.igvm", "a.json"} {
		a, _ := os.ReadFile(filepath.Join(out, f))
		b, _ := os.ReadFile(filepath.Join(pout, f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs from the plain IGVM step's (%d vs %d bytes)", f, len(a), len(b))
		}
	}
	// Incomplete verity parameters are refused.
	info.RootHash = ""
	vj, _ = json.Marshal(info)
	os.WriteFile(vp, vj, 0o644)
	if _, _, err := igvmRun(t, ctx, s, map[string]string{IGVMInputKernel: kp, VerityIGVMInputVerity: vp}); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("incomplete verity: %v", err)
	}
}
