package lockfile_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/lockfile"
)

var (
	d1 = digest.FromString("one")
	d2 = digest.FromString("two")
)

func TestRecordCheckDiff(t *testing.T) {
	path := filepath.Join(t.TempDir(), lockfile.Name)
	f := lockfile.Open(path)
	if _, ok, err := f.Lookup("busybox"); err != nil || ok {
		t.Fatalf("empty lock: ok=%v err=%v", ok, err)
	}
	if err := f.Record("busybox", lockfile.Entry{Ref: "busybox:1.36", Digest: d1}); err != nil {
		t.Fatal(err)
	}
	// Same content again: no error, no change.
	if err := f.Record("busybox", lockfile.Entry{Ref: "other", Digest: d1}); err != nil {
		t.Fatal(err)
	}
	err := f.Record("busybox", lockfile.Entry{Digest: d2})
	var me *lockfile.MismatchError
	if !errors.As(err, &me) || !errors.Is(err, lockfile.ErrMismatch) {
		t.Fatalf("err = %v, want MismatchError", err)
	}
	for _, s := range []string{`"busybox"`, d1.String(), d2.String(), path} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %s", err, s)
		}
	}
	if err := f.Record("pkgs", lockfile.Entry{Checksums: map[string]digest.Digest{"a.deb": d1}}); err != nil {
		t.Fatal(err)
	}
	err = f.Record("pkgs", lockfile.Entry{Checksums: map[string]digest.Digest{"a.deb": d1, "b.deb": d2}})
	if !errors.As(err, &me) || me.Field != "checksums[b.deb]" {
		t.Fatalf("err = %v, want a checksum mismatch on b.deb", err)
	}
	before, _ := lockfile.Read(path)
	if err := f.Set("busybox", lockfile.Entry{Digest: d2}); err != nil {
		t.Fatal(err)
	}
	after, _ := lockfile.Read(path)
	ch := lockfile.Diff(before, after)
	if len(ch) != 1 || ch[0].String() != "~ busybox "+d1.String()+" -> "+d2.String() {
		t.Errorf("diff = %v", ch)
	}
	// Canonical bytes: rewriting what was read gives the same file.
	b, _ := os.ReadFile(path)
	again, _ := after.Marshal()
	if string(b) != string(again) {
		t.Errorf("not canonical:\n%s\n%s", b, again)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}

func TestConcurrentRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), lockfile.Name)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Separate handles: only the flock serialises them.
			if err := lockfile.Open(path).Record(string(rune('a'+i)), lockfile.Entry{Digest: d1}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	l, err := lockfile.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Entries) != 20 {
		t.Errorf("%d entries, want 20 (lost updates)", len(l.Entries))
	}
}

func TestParseErrors(t *testing.T) {
	for name, in := range map[string]string{
		"version": `{"version": 9, "entries": {}}`,
		"digest":  `{"version": 1, "entries": {"x": {"digest": "sha256:zz"}}}`,
		"field":   `{"version": 1, "entries": {}, "extra": 1}`,
		"json":    `{`,
	} {
		if _, err := lockfile.Parse("uvmbuild.lock", []byte(in)); err == nil || !strings.Contains(err.Error(), "uvmbuild.lock") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
