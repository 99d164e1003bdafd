package actions

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/uvmbuild/uvmbuild/builder/graph"
)

func writeTestTar(t *testing.T, path string, mtime time.Time, entries ...*tar.Header) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		h.ModTime = mtime
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Name))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(h.Name))
		}
	}
	tw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRootfsAction: the rules drop and empty what they name, etc/machine-id
// is always present and empty, mtimes are clamped, and two inputs that differ
// only in run-dependent files and times give the same tar.
func TestRootfsAction(t *testing.T) {
	spec := RootfsSpec(RootfsParams{SourceDateEpoch: 1000, Drop: []string{"var/log/*", "etc/passwd-"}, Empty: []string{"etc/machine-id"}, AddEmpty: []string{"etc/machine-id"}})
	run := func(extra []*tar.Header, mtime time.Time) (string, []byte) {
		dir := t.TempDir()
		in := filepath.Join(dir, "in.tar")
		hs := []*tar.Header{
			{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "./etc/os-release", Typeflag: tar.TypeReg, Mode: 0o644},
			{Name: "./var/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "./var/log/", Typeflag: tar.TypeDir, Mode: 0o755},
		}
		writeTestTar(t, in, mtime, append(hs, extra...)...)
		out := filepath.Join(dir, "out")
		os.Mkdir(out, 0o755)
		s := &graph.Step{ID: "n", Spec: spec, Outputs: []string{"rootfs.tar", "summary.json"}, Exec: Rootfs{}}
		if err := (Rootfs{}).Run(context.Background(), &graph.Exec{Step: s, Inputs: map[string]string{"rootfs": in}, OutDir: out, TempDir: dir}); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"rootfs.tar", "summary.json"} {
			if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Mode().Perm() != 0o644 {
				t.Errorf("%s: mode %v, %v", f, fi.Mode(), err)
			}
		}
		b, _ := os.ReadFile(filepath.Join(out, "rootfs.tar"))
		sum, _ := os.ReadFile(filepath.Join(out, "summary.json"))
		return string(sum), b
	}
	sum1, a := run([]*tar.Header{
		{Name: "./var/log/dpkg.log", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "./etc/passwd-", Typeflag: tar.TypeReg, Mode: 0o600},
		{Name: "./etc/machine-id", Typeflag: tar.TypeReg, Mode: 0o444},
	}, time.Unix(5000, 0))
	old := syscall.Umask(0o077) // the outputs' modes must not follow the umask
	_, b := run(nil, time.Unix(9000, 0))
	syscall.Umask(old)
	if !bytes.Equal(a, b) {
		t.Error("run-dependent files or times reached the tar")
	}
	var sum struct{ Dropped, Emptied []string }
	if err := json.Unmarshal([]byte(sum1), &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Dropped) != 2 || len(sum.Emptied) != 1 {
		t.Errorf("summary %s", sum1)
	}
	tr := tar.NewReader(bytes.NewReader(a))
	seen := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[h.Name] = h
		if h.ModTime.Unix() > 1000 {
			t.Errorf("%s mtime %v not clamped", h.Name, h.ModTime)
		}
	}
	if h := seen["./etc/machine-id"]; h == nil || h.Size != 0 {
		t.Errorf("etc/machine-id: %+v", h)
	}
	for _, gone := range []string{"./var/log/dpkg.log", "./etc/passwd-"} {
		if seen[gone] != nil {
			t.Errorf("%s kept", gone)
		}
	}
}
