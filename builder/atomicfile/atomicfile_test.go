package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// entries lists the names in dir, so a test can see a leftover temp file.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range des {
		names = append(names, d.Name())
	}
	return names
}

func TestWriteFileCreatesAndReplaces(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	p := filepath.Join(dir, "out.bin")
	for _, tc := range []struct {
		data string
		perm fs.FileMode
		opts []Option
	}{
		{"first", 0o644, nil},
		{"second, longer than the first", 0o640, nil},
		{"3", 0o755, []Option{NoSync()}},
	} {
		if err := WriteFile(p, []byte(tc.data), tc.perm, tc.opts...); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != tc.data {
			t.Fatalf("content %q, %v; want %q", got, err, tc.data)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		// The mode is perm whatever the umask (077 here).
		if fi.Mode().Perm() != tc.perm {
			t.Errorf("mode %v, want %v", fi.Mode().Perm(), tc.perm)
		}
		if names := entries(t, dir); len(names) != 1 {
			t.Errorf("directory holds %v, want only out.bin", names)
		}
	}
}

func TestFailingWriteKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.bin")
	if err := os.WriteFile(p, []byte("old content"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(p, 0o644, func(f *os.File) error {
		if _, err := f.Write([]byte("partial new content")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want it to wrap the write error", err)
	}
	if !strings.Contains(err.Error(), p) {
		t.Errorf("error %q does not name %s", err, p)
	}
	if got, _ := os.ReadFile(p); string(got) != "old content" {
		t.Errorf("destination now holds %q, want the old content", got)
	}
	if names := entries(t, dir); len(names) != 1 || names[0] != "out.bin" {
		t.Errorf("directory holds %v, want only out.bin (no temp file)", names)
	}
}

func TestFailingRenameLeavesNoTempFile(t *testing.T) {
	dir := t.TempDir()
	// A non-empty directory at the destination cannot be renamed over.
	p := filepath.Join(dir, "out")
	if err := os.MkdirAll(filepath.Join(p, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("data"), 0o644); err == nil {
		t.Fatal("replacing a non-empty directory succeeded")
	}
	if names := entries(t, dir); len(names) != 1 || names[0] != "out" {
		t.Errorf("directory holds %v, want only out (no temp file)", names)
	}
	if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
		t.Errorf("destination directory changed: %v, %v", fi, err)
	}
}

func TestMissingDirectoryIsAnError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "no", "such", "dir", "f")
	err := WriteFile(p, nil, 0o644)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), p) {
		t.Errorf("err = %v, want ErrNotExist naming %s", err, p)
	}
}
