package images_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/uvmbuild/uvmbuild/builder/images"
)

// outside is a directory the fuzzed tars aim their links at; nothing may
// ever appear in it.
const outside = "/tmp/uvmbuild-fuzz-outside"

// FuzzUnpackTar feeds arbitrary tars to the unpacker: whatever it accepts
// or refuses, nothing is written outside the root.
func FuzzUnpackTar(f *testing.F) {
	seed := func(ents []entry) {
		t := &testing.T{}
		f.Add(tarBytes(t, ents))
	}
	seed(sampleRoot)
	seed([]entry{{name: "a", typ: tar.TypeSymlink, link: outside}, {name: "a/x", body: "x"}})
	seed([]entry{{name: "a", typ: tar.TypeSymlink, link: "../../../../" + outside}, {name: "a/x", body: "x"}})
	seed([]entry{{name: "d/", typ: tar.TypeDir}, {name: "d/l", typ: tar.TypeSymlink, link: ".."}, {name: "d/l/l2", typ: tar.TypeSymlink, link: outside}, {name: "d/l/l2/y", body: "y"}})
	seed([]entry{{name: "h", typ: tar.TypeLink, link: outside + "/z"}})
	seed([]entry{{name: "../x", body: "x"}, {name: "/abs", body: "x"}})
	seed([]entry{{name: "l", typ: tar.TypeSymlink, link: outside}, {name: "l/.wh.z", body: ""}, {name: "l/.wh..wh..opq", body: ""}})
	f.Fuzz(func(t *testing.T, b []byte) {
		if os.Geteuid() != 0 {
			t.Skip("needs root")
		}
		if err := os.MkdirAll(outside, 0o755); err != nil {
			t.Fatal(err)
		}
		// Fuzz workers run in parallel: create the sentinel once, never
		// rewrite it.
		sentinel := filepath.Join(outside, "z")
		if f, err := os.OpenFile(sentinel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); err == nil {
			f.WriteString("keep")
			f.Close()
		}
		if declaredSize(b) > 1<<20 {
			// Sparse entries can declare gigabytes of holes: valid, but
			// slow to write; not what this fuzzer is about.
			t.Skip()
		}
		root := t.TempDir()
		_ = images.UnpackTar(context.Background(), bytes.NewReader(b), root)
		ents, _ := os.ReadDir(outside)
		if len(ents) != 1 || ents[0].Name() != "z" {
			t.Fatalf("something was written outside the root: %v", ents)
		}
		if c, _ := os.ReadFile(sentinel); string(c) != "keep" {
			t.Fatalf("outside file modified: %q", c)
		}
		if fi, err := os.Lstat(sentinel); err != nil || fi.Mode().Type() != 0 {
			t.Fatalf("outside file replaced: %v", err)
		}
		// Nothing unpacked is a device node.
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type()&(fs.ModeDevice|fs.ModeCharDevice) != 0 {
				t.Fatalf("device node unpacked: %s", p)
			}
			return nil
		})
	})
}

// declaredSize sums the sizes the tar's headers declare.
func declaredSize(b []byte) int64 {
	tr := tar.NewReader(bytes.NewReader(b))
	var n int64
	for {
		h, err := tr.Next()
		if err != nil {
			return n
		}
		if h.Size > 0 {
			n += h.Size
		}
	}
}
