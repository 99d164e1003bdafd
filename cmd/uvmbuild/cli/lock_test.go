package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/lockfile"
)

func runLock(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newLockCmd(&Options{Environ: []string{"HOME=" + t.TempDir()}})
	var out bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestLockPullShowDiff(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/base:1"
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	proj := t.TempDir()
	cache := t.TempDir()
	out, err := runLock(t, "pull", "base", ref, "-C", proj, "--cache-dir", cache)
	if err != nil {
		t.Fatal(err)
	}
	if out != "base\t"+want.String()+"\n" {
		t.Errorf("pull printed %q", out)
	}
	if _, err := os.Stat(filepath.Join(cache, "images", "oci", want.Hex, "index.json")); err != nil {
		t.Errorf("image not imported into the store: %v", err)
	}
	out, err = runLock(t, "-C", proj)
	if err != nil || !strings.HasPrefix(out, "base\t"+want.String()) {
		t.Errorf("lock: %q, %v", out, err)
	}

	old := filepath.Join(t.TempDir(), "old.lock")
	b, _ := os.ReadFile(filepath.Join(proj, lockfile.Name))
	os.WriteFile(old, b, 0o644)

	// The tag moves; pull keeps the lock, --update replaces it.
	img2, _ := random.Image(1024, 1)
	remote.Write(r, img2)
	if out, err := runLock(t, "pull", "base", ref, "-C", proj, "--cache-dir", cache); err != nil || !strings.Contains(out, want.String()) {
		t.Errorf("pull after retag: %q, %v", out, err)
	}
	want2, _ := img2.Digest()
	if out, err := runLock(t, "pull", "--update", "base", ref, "-C", proj, "--cache-dir", cache); err != nil || !strings.Contains(out, want2.String()) {
		t.Errorf("pull --update: %q, %v", out, err)
	}
	out, err = runLock(t, "diff", old, filepath.Join(proj, lockfile.Name))
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != ExitDiffers || !strings.Contains(out, "~ base") {
		t.Errorf("diff: %q, %v", out, err)
	}
	if _, err := runLock(t, "diff", old, old); err != nil {
		t.Errorf("diff of equal locks: %v", err)
	}

	// gc keeps the pinned image (want2 now) and drops the first one.
	out, err = runLock(t, "gc", "-C", proj, "--cache-dir", cache)
	if err != nil || out != "removed\t"+want.String()+"\n" {
		t.Errorf("gc: %q, %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(cache, "images", "oci", want2.Hex)); err != nil {
		t.Errorf("gc removed the pinned image: %v", err)
	}
}

// TestLockUsageExitCode: a wrong argument count is a usage error (exit 2),
// like every other command's.
func TestLockUsageExitCode(t *testing.T) {
	for _, args := range [][]string{{"lock", "extra"}, {"lock", "diff", "a"}, {"lock", "pull", "name"}, {"lock", "gc", "x"}} {
		var stdout, stderr bytes.Buffer
		o := &Options{Environ: []string{"HOME=" + t.TempDir()}}
		if code := run(context.Background(), o, args, strings.NewReader(""), &stdout, &stderr); code != ExitUsage {
			t.Errorf("uvmbuild %s: exit %d (%s), want %d", strings.Join(args, " "), code, stderr.String(), ExitUsage)
		}
	}
}

func TestLockDrop(t *testing.T) {
	proj := t.TempDir()
	lf := lockfile.Open(filepath.Join(proj, lockfile.Name))
	for _, n := range []string{"builder-image", "uvm/packages@1", "uvm-confpods/packages@2", "uvm/kernel-debs"} {
		if err := lf.Set(n, lockfile.Entry{Ref: "r", Checksums: map[string]digest.Digest{"f": digest.FromString(n)}}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runLock(t, "drop", "-C", proj, "builder-image", "*/packages@*")
	if err != nil {
		t.Fatal(err)
	}
	if want := "dropped builder-image\ndropped uvm-confpods/packages@2\ndropped uvm/packages@1\n"; out != want {
		t.Errorf("drop printed %q, want %q", out, want)
	}
	l, err := lockfile.Read(filepath.Join(proj, lockfile.Name))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Entries) != 1 || l.Entries["uvm/kernel-debs"].Ref != "r" {
		t.Errorf("entries left: %v", l.Entries)
	}
	// A pattern matching nothing is an error and removes nothing.
	if _, err := runLock(t, "drop", "-C", proj, "uvm/kernel-debs", "nothing*"); err == nil {
		t.Error("drop of an unmatched pattern succeeded")
	}
	if l, _ := lockfile.Read(filepath.Join(proj, lockfile.Name)); len(l.Entries) != 1 {
		t.Errorf("failed drop removed entries: %v", l.Entries)
	}
}
