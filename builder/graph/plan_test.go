package graph_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uvmbuild/uvmbuild/builder/graph"
)

func explain(t *testing.T, e *env, roots ...*graph.Step) map[string]graph.PlannedAction {
	t.Helper()
	acts, err := graph.Explain(context.Background(), roots, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]graph.PlannedAction{}
	for _, a := range acts {
		m[a.ID] = a
	}
	return m
}

func TestPlanExplainsMiss(t *testing.T) {
	e := newEnv(t)
	c := newCounter()
	dir := t.TempDir()
	src := filepath.Join(dir, "policy.rego")
	writeFile(t, src, "package a")
	mk := func(text string) (*graph.Step, *graph.Step, *graph.Step) {
		a := step(c, "a", "A", graph.Input{Name: "policy", Path: src})
		b := step(c, "b", text, from("a", a))
		d := step(c, "d", "D")
		return a, b, d
	}
	_, b, d := mk("B")
	res := e.build(b, d)
	var oldDigest string
	for _, act := range res.Actions {
		if act.ID == "a" {
			oldDigest = string(act.Inputs[0].Digest)
		}
	}

	// Nothing changed: all cached.
	for id, a := range explain(t, e, b, d) {
		if !a.Cached {
			t.Errorf("%s not cached: %v", id, a.Reasons)
		}
	}

	// A changed input file: a misses because of input "policy", with old
	// and new digests; b waits for a; d stays cached.
	writeFile(t, src, "package b")
	_, b, d = mk("B2")
	p := explain(t, e, b, d)
	a := p["a"]
	if a.Cached || len(a.Reasons) != 1 {
		t.Fatalf("a: %+v", a)
	}
	r := a.Reasons[0]
	if r.What != "input policy" || r.Old != oldDigest || r.New == "" || r.New == r.Old {
		t.Errorf("a's reason = %+v, want input policy %s → new", r, oldDigest)
	}
	if !strings.Contains(r.String(), "input policy: sha256:") {
		t.Errorf("reason text %q", r)
	}
	bp := p["b"]
	if bp.Cached || bp.Key != "" {
		t.Errorf("b: %+v", bp)
	}
	var sawUpstream, sawParam bool
	for _, r := range bp.Reasons {
		sawUpstream = sawUpstream || (r.What == "input a" && strings.Contains(r.Note, "step a"))
		sawParam = sawParam || (r.What == "param text" && r.Old == `"B"` && r.New == `"B2"`)
	}
	if !sawUpstream || !sawParam {
		t.Errorf("b's reasons %v", bp.Reasons)
	}
	if !p["d"].Cached {
		t.Errorf("d not cached")
	}
	if c.total() != 3 {
		t.Errorf("plan ran actions")
	}

	// A new step, and an evicted entry with an unchanged key.
	os.RemoveAll(filepath.Join(e.dir, "ac"))
	os.MkdirAll(filepath.Join(e.dir, "ac"), 0o755)
	p = explain(t, e, d, step(c, "new", "N"))
	if got := p["new"].Reasons; len(got) != 1 || got[0].What != "new step" {
		t.Errorf("new step reasons %v", got)
	}
	if got := p["d"].Reasons; len(got) != 1 || got[0].What != "cache entry" {
		t.Errorf("evicted step reasons %v", got)
	}
}

func TestWriteGraph(t *testing.T) {
	c := newCounter()
	a := step(c, "a", "A")
	b := step(c, "b", "B", from("in", a), graph.Input{Name: "cfg", Blob: []byte("x")})
	for format, want := range map[string]string{
		"dot":     `"a" -> "b" [label="in"];`,
		"mermaid": "s0 -->|in| s1",
		"json":    `"source": "step:a/out.txt"`,
	} {
		var sb strings.Builder
		if err := graph.WriteGraph(&sb, []*graph.Step{b}, format); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(sb.String(), want) {
			t.Errorf("%s output lacks %q:\n%s", format, want, sb.String())
		}
	}
	if err := graph.WriteGraph(&strings.Builder{}, []*graph.Step{b}, "svg"); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestReasonStringLongValues(t *testing.T) {
	lines := strings.Repeat("echo a\n", 30)
	changed := strings.Repeat("echo a\n", 10) + "echo b\n" + strings.Repeat("echo a\n", 19)
	old, _ := json.Marshal(lines)
	cur, _ := json.Marshal(changed)
	got := graph.Reason{What: "param script", Old: string(old), New: string(cur)}.String()
	want := `param script: 242 → 242 bytes, line 11: "echo a" → "echo b"`
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// TestPlanParamsWithHTMLCharacters: a param holding "&" or "<" is not
// reported as changed when it did not change.
func TestPlanParamsWithHTMLCharacters(t *testing.T) {
	e := newEnv(t)
	c := newCounter()
	a := step(c, "a", "x && y < z")
	e.build(a)
	b := step(c, "a", "x && y < z")
	b.Spec.Params["extra"] = 1
	p := explain(t, e, b)
	if rs := p["a"].Reasons; len(rs) != 1 || rs[0].What != "param extra" {
		t.Errorf("reasons %v, want only param extra", rs)
	}
}
