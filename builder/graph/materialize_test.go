package graph_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/uvmbuild/uvmbuild/builder/graph"
)

func dirStep(c *counter, id string, files map[string]string) *graph.Step {
	s := step(c, id, "")
	s.Outputs = []string{"tree"}
	s.Spec.Params["files"] = files
	s.Exec = c.wrap(func(ctx context.Context, x *graph.Exec) error {
		for name, content := range files {
			p := filepath.Join(x.OutDir, "tree", name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			mode := os.FileMode(0o644)
			if name == "bin/tool" {
				mode = 0o755
			}
			if err := os.WriteFile(p, []byte(content), mode); err != nil {
				return err
			}
		}
		return os.Symlink("bin/tool", filepath.Join(x.OutDir, "tree", "link"))
	})
	return s
}

func TestMaterializeReplacesAtomically(t *testing.T) {
	e := newEnv(t)
	c := newCounter()
	out := filepath.Join(t.TempDir(), "out")
	v1 := dirStep(c, "tree", map[string]string{"bin/tool": "v1", "etc/conf": "c1", "old-only": "x"})
	f1 := step(c, "file", "F1")
	res := e.build(v1, f1)
	arts := func(tree, file *graph.Step) []graph.Artifact {
		return []graph.Artifact{{Step: tree, Output: "tree", As: "agent-install"}, {Step: file, Output: "out.txt", As: "img/kata.img"}}
	}
	recs, err := res.Materialize(context.Background(), out, arts(v1, f1))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Name != "agent-install" || recs[0].Type != "dir" || len(recs[0].Entries) == 0 || recs[1].Type != "file" {
		t.Errorf("records %+v", recs)
	}
	if fi, err := os.Stat(filepath.Join(out, "agent-install", "bin", "tool")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("tool mode: %v %v", fi, err)
	}
	if l, _ := os.Readlink(filepath.Join(out, "agent-install", "link")); l != "bin/tool" {
		t.Errorf("link = %q", l)
	}
	before, _ := os.Stat(filepath.Join(out, "img", "kata.img"))

	// Same build again: the file artifact is left alone (same inode).
	if _, err := res.Materialize(context.Background(), out, arts(v1, f1)); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(filepath.Join(out, "img", "kata.img"))
	if !os.SameFile(before, after) {
		t.Error("unchanged artifact was replaced")
	}

	// A new tree replaces the old one completely (no stale files).
	v2 := dirStep(c, "tree", map[string]string{"bin/tool": "v2", "etc/conf": "c2"})
	f2 := step(c, "file", "F2")
	res = e.build(v2, f2)
	if _, err := res.Materialize(context.Background(), out, arts(v2, f2)); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, filepath.Join(out, "agent-install", "bin", "tool")); got != "v2" {
		t.Errorf("tool = %q", got)
	}
	if _, err := os.Stat(filepath.Join(out, "agent-install", "old-only")); err == nil {
		t.Error("stale file survived in a replaced tree")
	}
	if got := readAll(t, filepath.Join(out, "img", "kata.img")); got != "F2" {
		t.Errorf("kata.img = %q", got)
	}
	ents, _ := os.ReadDir(out)
	for _, en := range ents {
		if en.Name() != "agent-install" && en.Name() != "img" {
			t.Errorf("leftover %s in out", en.Name())
		}
	}
}

func TestMaterializeFailureLeavesOutUntouched(t *testing.T) {
	e := newEnv(t)
	c := newCounter()
	out := filepath.Join(t.TempDir(), "out")
	f1 := step(c, "f", "F1")
	g1 := step(c, "g", "G1")
	res := e.build(f1, g1)
	if _, err := res.Materialize(context.Background(), out, []graph.Artifact{{Step: f1, Output: "out.txt", As: "f"}, {Step: g1, Output: "out.txt", As: "g"}}); err != nil {
		t.Fatal(err)
	}
	f2 := step(c, "f", "F2")
	res = e.build(f2)
	// The second artifact refers to a step outside this build: staging
	// fails after f was staged, and f must still hold F1.
	_, err := res.Materialize(context.Background(), out, []graph.Artifact{{Step: f2, Output: "out.txt", As: "f"}, {Step: g1, Output: "out.txt", As: "g"}})
	if err == nil {
		t.Fatal("materialising a step outside the build succeeded")
	}
	if got := readAll(t, filepath.Join(out, "f")); got != "F1" {
		t.Errorf("f = %q after a failed materialisation, want F1", got)
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != 2 {
		t.Errorf("out holds %d entries, want 2 (no staging leftovers)", len(ents))
	}
	for _, bad := range []string{"../x", "/abs", "a/../b", ""} {
		if _, err := res.Materialize(context.Background(), out, []graph.Artifact{{Step: f2, Output: "out.txt", As: bad}}); err == nil {
			t.Errorf("artifact name %q accepted", bad)
		}
	}
}

func TestClean(t *testing.T) {
	out := t.TempDir()
	writeFile(t, filepath.Join(out, "a", "x"), "1")
	writeFile(t, filepath.Join(out, "b"), "2")
	if err := graph.Clean(out, []string{"a", "b", "missing"}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("left %v", ents)
	}
	if err := graph.Clean(out, []string{"../etc"}); err == nil {
		t.Error("clean outside the output directory accepted")
	}
}

// TestArtifactModifiedInPlace edits an artifact through its hard link into
// the cache: the next materialisation notices, the corrupt blob is evicted,
// the step rebuilt and the artifact restored.
func TestArtifactModifiedInPlace(t *testing.T) {
	e := newEnv(t)
	c := newCounter()
	out := filepath.Join(t.TempDir(), "out")
	f := step(c, "f", "original")
	arts := []graph.Artifact{{Step: f, Output: "out.txt", As: "f.img"}}
	res := e.build(f)
	if _, err := res.Materialize(context.Background(), out, arts); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(out, "f.img")
	fh, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteAt([]byte("ORIGINAL"), 0) // same size, in place
	fh.Close()
	res = e.build(f)
	if _, err := res.Materialize(context.Background(), out, arts); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, p); got != "original" {
		t.Errorf("f.img = %q after repair, want original", got)
	}
	if c.count("f") != 2 {
		t.Errorf("f ran %d times, want 2 (rebuilt after its blob was modified)", c.count("f"))
	}
}
