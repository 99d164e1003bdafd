package sandbox_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uvmbuild/uvmbuild/builder/sandbox"
)

func TestNormalize(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("Normalize chowns; needs root")
	}
	dir := t.TempDir()
	epoch := time.Unix(1700000000, 0)
	mk := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	os.Mkdir(filepath.Join(dir, "sub"), 0o700)
	exe := mk("sub/tool", 0o4710)
	data := mk("data", 0o600)
	os.Chown(data, 1234, 5678)
	os.Symlink("data", filepath.Join(dir, "link"))
	old := time.Unix(1000, 0)
	os.Chtimes(data, old, old)
	if err := sandbox.Normalize(dir, epoch); err != nil {
		t.Fatal(err)
	}
	check := func(p string, mode os.FileMode, mtime time.Time) {
		t.Helper()
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s owner %d:%d", p, st.Uid, st.Gid)
		}
		if fi.Mode()&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != mode {
			t.Errorf("%s mode %v, want %v", p, fi.Mode(), mode)
		}
		if !fi.ModTime().Equal(mtime) {
			t.Errorf("%s mtime %v, want %v", p, fi.ModTime(), mtime)
		}
	}
	check(exe, 0o755, epoch)
	check(data, 0o644, old) // older than the epoch: kept
	check(filepath.Join(dir, "sub"), 0o755, epoch)
	check(dir, 0o755, epoch)

	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sandbox.Normalize(dir, epoch); err == nil || !strings.Contains(err.Error(), "fifo") {
		t.Errorf("fifo accepted: %v", err)
	}
}
