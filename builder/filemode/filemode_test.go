package filemode

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for p := fs.FileMode(0); p <= 0o7777; p++ {
		if got := ToUnix(FromUnix(p)); got != p {
			t.Fatalf("ToUnix(FromUnix(%#o)) = %#o", p, got)
		}
	}
	if got := FromUnix(0o4755); got != fs.ModeSetuid|0o755 {
		t.Errorf("FromUnix(04755) = %v", got)
	}
	if got := ToUnix(fs.ModeDir | fs.ModeSticky | 0o777); got != 0o1777 {
		t.Errorf("ToUnix(sticky dir 0777) = %#o, want 01777", got)
	}
}

// TestChmod checks the conversion against the kernel: a file chmodded with
// FromUnix(p) has exactly the Unix bits p.
func TestChmod(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, want := range []fs.FileMode{0o644, 0o2755, 0o1700, 0o6711} {
		if err := os.Chmod(p, FromUnix(want)); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		if got := fs.FileMode(st.Mode & 0o7777); got != want {
			t.Errorf("chmod %#o: file has %#o", want, got)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := ToUnix(fi.Mode()); got != want {
			t.Errorf("ToUnix(stat after chmod %#o) = %#o", want, got)
		}
	}
}
