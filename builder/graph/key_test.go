package graph_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/graph"
)

// keyOf builds s (with its inputs) against a fresh cache and returns its
// key as recorded.
func keyOf(t *testing.T, s *graph.Step) digest.Digest {
	t.Helper()
	e := newEnv(t)
	res := e.build(s)
	return res.Key(s)
}

func TestKeyCoversEverySpecField(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	writeFile(t, in, "input content")
	other := filepath.Join(dir, "other.txt")
	writeFile(t, other, "other content")
	c := newCounter()
	base := func() *graph.Step {
		return &graph.Step{
			ID:   "s",
			Meta: graph.Meta{Description: "d"},
			Spec: graph.Spec{
				Kind:    "test/concat",
				Version: "1",
				Image:   digest.FromString("image"),
				Params:  map[string]any{"text": "t", "n": 1, "nested": map[string]any{"a": []string{"x"}}},
			},
			Inputs:  []graph.Input{{Name: "in", Path: in}},
			Outputs: []string{"out.txt"},
			Exec:    c.wrap(concat),
		}
	}
	ref := keyOf(t, base())
	changed := []struct {
		name   string
		mutate func(s *graph.Step)
	}{
		{"kind", func(s *graph.Step) { s.Spec.Kind = "test/concat2" }},
		{"version", func(s *graph.Step) { s.Spec.Version = "2" }},
		{"image", func(s *graph.Step) { s.Spec.Image = digest.FromString("image2") }},
		{"no image", func(s *graph.Step) { s.Spec.Image = "" }},
		{"param value", func(s *graph.Step) { s.Spec.Params["text"] = "u" }},
		{"param type", func(s *graph.Step) { s.Spec.Params["n"] = "1" }},
		{"param added", func(s *graph.Step) { s.Spec.Params["extra"] = false }},
		{"param removed", func(s *graph.Step) { delete(s.Spec.Params, "n") }},
		{"nested param", func(s *graph.Step) { s.Spec.Params["nested"] = map[string]any{"a": []string{"y"}} }},
		{"input name", func(s *graph.Step) { s.Inputs[0].Name = "in2" }},
		{"input content", func(s *graph.Step) { s.Inputs[0].Path = other }},
		{"input added", func(s *graph.Step) { s.Inputs = append(s.Inputs, graph.Input{Name: "b", Blob: []byte("x")}) }},
		{"input removed", func(s *graph.Step) { s.Inputs = nil }},
		{"input blob", func(s *graph.Step) { s.Inputs[0] = graph.Input{Name: "in", Blob: []byte("input")} }},
		{"output name", func(s *graph.Step) {
			s.Outputs = []string{"out.txt", "extra"}
			s.Exec = c.wrap(func(ctx context.Context, x *graph.Exec) error {
				os.WriteFile(filepath.Join(x.OutDir, "extra"), nil, 0o644)
				return concat(ctx, x)
			})
		}},
	}
	seen := map[digest.Digest]string{ref: "base"}
	for _, tc := range changed {
		s := base()
		tc.mutate(s)
		k := keyOf(t, s)
		if prev, dup := seen[k]; dup {
			t.Errorf("%s: key %s equals the key of %s", tc.name, k, prev)
		}
		seen[k] = tc.name
	}
	same := []struct {
		name   string
		mutate func(s *graph.Step)
	}{
		{"ID", func(s *graph.Step) { s.ID = "other-id" }},
		{"description", func(s *graph.Step) { s.Meta.Description = "changed" }},
		{"executor", func(s *graph.Step) { s.Exec = newCounter().wrap(concat) }},
		{"int as float", func(s *graph.Step) { s.Spec.Params["n"] = 1.0 }},
		{"input path, same content", func(s *graph.Step) {
			cp := filepath.Join(dir, "copy.txt")
			writeFile(t, cp, "input content")
			s.Inputs[0].Path = cp
		}},
		{"input mtime", func(s *graph.Step) {
			old := time.Unix(1, 0)
			os.Chtimes(in, old, old)
		}},
	}
	for _, tc := range same {
		s := base()
		tc.mutate(s)
		if k := keyOf(t, s); k != ref {
			t.Errorf("%s changed the key: %s, want %s", tc.name, k, ref)
		}
	}
}

func TestKeyUsesExecBitOnlyForHostFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	writeFile(t, p, "x")
	c := newCounter()
	mk := func() *graph.Step { return step(c, "s", "t", graph.Input{Name: "f", Path: p}) }
	k0 := keyOf(t, mk())
	os.Chmod(p, 0o600)
	if k := keyOf(t, mk()); k != k0 {
		t.Errorf("mode 0600 vs 0644 changed the key")
	}
	os.Chmod(p, 0o700)
	if k := keyOf(t, mk()); k == k0 {
		t.Errorf("exec bit did not change the key")
	}
}

func TestDirInputIgnoreAndContent(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeFile(t, filepath.Join(src, "a.c"), "int a;")
	writeFile(t, filepath.Join(src, "sub", "b.c"), "int b;")
	writeFile(t, filepath.Join(src, ".git", "HEAD"), "ref: x")
	c := newCounter()
	mk := func() *graph.Step {
		s := step(c, "s", "t")
		s.Inputs = []graph.Input{{Name: "src", Path: src, Ignore: []string{".git", "*.o"}}}
		s.Exec = c.wrap(func(ctx context.Context, x *graph.Exec) error {
			return os.WriteFile(filepath.Join(x.OutDir, "out.txt"), nil, 0o644)
		})
		return s
	}
	k0 := keyOf(t, mk())
	writeFile(t, filepath.Join(src, ".git", "HEAD"), "ref: y")
	writeFile(t, filepath.Join(src, "sub", "x.o"), "obj")
	if k := keyOf(t, mk()); k != k0 {
		t.Errorf("ignored files changed the key")
	}
	writeFile(t, filepath.Join(src, "sub", "b.c"), "int c;")
	if k := keyOf(t, mk()); k == k0 {
		t.Errorf("content change in a tree did not change the key")
	}
	k1 := keyOf(t, mk())
	os.Rename(filepath.Join(src, "sub", "b.c"), filepath.Join(src, "sub", "c.c"))
	if k := keyOf(t, mk()); k == k1 {
		t.Errorf("rename in a tree did not change the key")
	}
	k2 := keyOf(t, mk())
	os.Symlink("a.c", filepath.Join(src, "link"))
	if k := keyOf(t, mk()); k == k2 {
		t.Errorf("new symlink did not change the key")
	}
}

func TestCanonicalParams(t *testing.T) {
	a, err := graph.CanonicalParams(map[string]any{"b": 1, "a": map[string]any{"y": 2.0, "x": "<&>"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(a), `{"a":{"x":"<&>","y":2},"b":1}`; got != want {
		t.Errorf("canonical params = %s, want %s", got, want)
	}
	if _, err := graph.CanonicalParams(map[string]any{"f": func() {}}); err == nil {
		t.Error("a func param was accepted")
	}
}
