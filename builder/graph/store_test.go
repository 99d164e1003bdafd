package graph_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/cache"
	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/progress"
)

// blobFile returns the path of the stored file with digest d.
func blobFile(t *testing.T, cacheDir string, d digest.Digest) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(cacheDir, "blobs", "sha256", d.Encoded()[:2], d.Encoded()+".*"))
	if len(m) != 1 {
		t.Fatalf("blob %s: %d files", d, len(m))
	}
	return m[0]
}

func corrupt(t *testing.T, p string) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[0] ^= 0xff
	// Write through a new file: the blob may be hard-linked elsewhere.
	os.Remove(p)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptBlobIsRebuilt(t *testing.T) {
	e := newEnv(t)
	var logs bytes.Buffer
	s, err := cache.Open(context.Background(), e.dir, cache.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e.store = s
	c := newCounter()
	a := step(c, "a", "A")
	mkB := func(text string) *graph.Step { return step(c, "b", text, from("a", a)) }
	res := e.build(mkB("B1"))
	d := res.Manifest(a).Entries[0].Digest
	corrupt(t, blobFile(t, e.dir, d))

	// b changes, so a's output must be read back: it is found corrupt,
	// evicted, a is rebuilt and b gets the right content.
	ev := &events{}
	o := e.opts()
	o.Sink = ev
	b2 := mkB("B2")
	res, err = graph.Build(context.Background(), []*graph.Step{b2}, o)
	if err != nil {
		t.Fatal(err)
	}
	if c.count("a") != 2 {
		t.Errorf("a ran %d times, want 2 (rebuilt after corruption)", c.count("a"))
	}
	if !strings.Contains(logs.String(), "evicting corrupt blob") {
		t.Errorf("no eviction warning; logs: %s", logs.String())
	}
	if len(ev.kinds(progress.Warning)) == 0 {
		t.Error("no warning event")
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := res.Materialize(context.Background(), out, []graph.Artifact{{Step: b2, Output: "out.txt", As: "b.txt"}}); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, filepath.Join(out, "b.txt")); got != "B2A" {
		t.Errorf("b.txt = %q, want B2A", got)
	}

	// Corrupting a final artifact's blob: materialisation rebuilds it.
	d = res.Manifest(b2).Entries[0].Digest
	os.Remove(filepath.Join(out, "b.txt"))
	corrupt(t, blobFile(t, e.dir, d))
	res = e.build(b2)
	if _, err := res.Materialize(context.Background(), out, []graph.Artifact{{Step: b2, Output: "out.txt", As: "b.txt"}}); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, filepath.Join(out, "b.txt")); got != "B2A" {
		t.Errorf("b.txt after repair = %q, want B2A", got)
	}
	// b: once for B1, once for B2, once to repair its corrupt output.
	if c.count("b") != 3 {
		t.Errorf("b ran %d times, want 3", c.count("b"))
	}
}

func TestCorruptActionEntryIsEvicted(t *testing.T) {
	e := newEnv(t)
	c := newCounter()
	a := step(c, "a", "A")
	res := e.build(a)
	key := res.Key(a)
	p := filepath.Join(e.dir, "ac", key.Encoded()[:2], key.Encoded()+".json")
	data, _ := os.ReadFile(p)
	os.WriteFile(p, data[:len(data)-3], 0o644)
	e.build(a)
	if c.count("a") != 2 {
		t.Errorf("a ran %d times after its entry was truncated, want 2", c.count("a"))
	}
	if _, err := e.store.GetAction(context.Background(), key); err != nil {
		t.Errorf("entry not rewritten: %v", err)
	}
}

// TestTwoProcesses runs this test binary twice at once on one cache: both
// builds succeed, give the same outputs, and the slow step runs once.
func TestTwoProcesses(t *testing.T) {
	if os.Getenv("UVMBUILD_GRAPH_HELPER") != "" {
		helperBuild(t)
		return
	}
	dir := t.TempDir()
	cacheDir := filepath.Join(dir, "cache")
	runsFile := filepath.Join(dir, "runs")
	var wg sync.WaitGroup
	outs := make([]string, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestTwoProcesses$", "-test.count=1")
			cmd.Env = append(os.Environ(), "UVMBUILD_GRAPH_HELPER=1", "HELPER_CACHE="+cacheDir, "HELPER_RUNS="+runsFile,
				fmt.Sprintf("HELPER_OUT=%s/out%d", dir, i))
			b, err := cmd.CombinedOutput()
			outs[i], errs[i] = string(b), err
		}()
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("process %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	runs := readAll(t, runsFile)
	for _, id := range []string{"slow", "after"} {
		if n := strings.Count(runs, id+"\n"); n != 1 {
			t.Errorf("step %s ran %d times across two processes, want 1 (runs: %q)", id, n, runs)
		}
	}
	r0 := readAll(t, filepath.Join(dir, "out0", "r.txt"))
	r1 := readAll(t, filepath.Join(dir, "out1", "r.txt"))
	if r0 != r1 || r0 != "AFTERSLOW" {
		t.Errorf("outputs %q and %q, want AFTERSLOW", r0, r1)
	}
}

func helperBuild(t *testing.T) {
	s, err := cache.Open(context.Background(), os.Getenv("HELPER_CACHE"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	record := func(id string) {
		f, err := os.OpenFile(os.Getenv("HELPER_RUNS"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Error(err)
			return
		}
		fmt.Fprintln(f, id)
		f.Close()
	}
	mk := func(id, text string, ins ...graph.Input) *graph.Step {
		return &graph.Step{
			ID: id, Spec: graph.Spec{Kind: "test/concat", Version: "1", Params: map[string]any{"text": text}},
			Inputs: ins, Outputs: []string{"out.txt"},
			Exec: graph.ExecFunc(func(ctx context.Context, x *graph.Exec) error {
				record(id)
				if id == "slow" {
					// Long enough for the other process to wait on the lock.
					select {
					case <-ctx.Done():
					case <-timeAfter(300):
					}
				}
				return concat(ctx, x)
			}),
		}
	}
	slow := mk("slow", "SLOW")
	after := mk("after", "AFTER", from("slow", slow))
	res, err := graph.Build(context.Background(), []*graph.Step{after}, graph.Options{Store: s, WorkDir: s.Dir(), Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.Materialize(context.Background(), os.Getenv("HELPER_OUT"), []graph.Artifact{{Step: after, Output: "out.txt", As: "r.txt"}}); err != nil {
		t.Fatal(err)
	}
}

// TestDeepRepairWithOneJob corrupts every blob of a chain; reading the
// last output back rebuilds the whole chain, one job slot at a time,
// without deadlocking on nested repairs.
func TestDeepRepairWithOneJob(t *testing.T) {
	e := newEnv(t)
	c := newCounter()
	var prev *graph.Step
	var steps []*graph.Step
	for i := range 4 {
		s := step(c, fmt.Sprintf("s%d", i), fmt.Sprint(i))
		if prev != nil {
			s.Inputs = []graph.Input{from("in", prev)}
		}
		steps = append(steps, s)
		prev = s
	}
	o := e.opts()
	o.Jobs = 1
	if _, err := graph.Build(context.Background(), []*graph.Step{prev}, o); err != nil {
		t.Fatal(err)
	}
	blobs, _ := filepath.Glob(filepath.Join(e.dir, "blobs", "sha256", "*", "*"))
	for _, b := range blobs {
		corrupt(t, b)
	}
	last := step(c, "last", "L", from("in", prev))
	res, err := graph.Build(context.Background(), []*graph.Step{last}, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if c.count(s.ID) != 2 {
			t.Errorf("%s ran %d times, want 2", s.ID, c.count(s.ID))
		}
	}
	out := t.TempDir()
	if _, err := res.Materialize(context.Background(), out, []graph.Artifact{{Step: last, Output: "out.txt", As: "l"}}); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, filepath.Join(out, "l")); got != "L3210" {
		t.Errorf("l = %q", got)
	}
}
