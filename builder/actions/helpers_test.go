package actions_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/images"
)

const testEpoch = 1700000000

// needContainers skips unless runc, root and busybox-static are present.
func needContainers(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc not installed (Debian package runc); container tests skipped")
	}
	if os.Geteuid() != 0 {
		t.Skip("container tests need root")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("busybox-static not installed (scripts/deps.txt); container tests skipped")
	}
}

// busyboxLayout writes a one-layer OCI layout holding /bin/busybox and its
// applets (symlinks), built in Go, and returns its directory and digest.
func busyboxLayout(t testing.TB, extra ...string) (string, digest.Digest) {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Unix(testEpoch, 0)
	add := func(h *tar.Header, body []byte) {
		h.ModTime, h.Format = mt, tar.FormatPAX
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	add(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	add(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755}, bb)
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" {
			add(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil)
		}
	}
	for _, e := range extra {
		add(&tar.Header{Name: e, Typeflag: tar.TypeReg, Mode: 0o644}, []byte(e))
	}
	add(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	tw.Close()
	tarPath := filepath.Join(t.TempDir(), "busybox.tar")
	if err := os.WriteFile(tarPath, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "image")
	d, err := images.WriteLayout(dir, tarPath, images.ImageConfig{Created: mt, RefName: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	return dir, d
}

// run executes step s the way the graph does: fresh output and temp
// directories, inputs by host path.
func run(t *testing.T, ctx context.Context, s *graph.Step, inputs map[string]string) (string, string, error) {
	t.Helper()
	base := t.TempDir()
	out := filepath.Join(base, "out")
	tmp := filepath.Join(base, "tmp")
	os.Mkdir(out, 0o755)
	os.Mkdir(tmp, 0o700)
	var log bytes.Buffer
	err := s.Exec.Run(ctx, &graph.Exec{Step: s, Inputs: inputs, OutDir: out, TempDir: tmp, Log: &log})
	return out, log.String(), err
}

// manifest lists every path under dir with type, mode, owner and content
// digest: what the graph would key the outputs by, plus owners and mtimes.
func manifest(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, _ := d.Info()
		fmt.Fprintf(&b, "%s %v", rel, fi.Mode())
		if fi.Mode().IsRegular() {
			f, _ := os.Open(p)
			h := sha256.New()
			io.Copy(h, f)
			f.Close()
			fmt.Fprintf(&b, " %x mtime=%d", h.Sum(nil), fi.ModTime().Unix())
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", l)
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func busyboxLayoutB(b *testing.B) (string, digest.Digest) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		b.Skip("busybox-static not installed")
	}
	return busyboxLayout(b)
}
