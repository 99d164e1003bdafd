package graph_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/uvmbuild/uvmbuild/builder/cache"
	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/progress"
)

var _ graph.Store = (*cache.Store)(nil)

// counter counts executor runs per step ID and records run intervals.
type counter struct {
	mu        sync.Mutex
	runs      map[string]int
	intervals map[string][2]time.Time
	running   int
	maxRun    int
}

func newCounter() *counter {
	return &counter{runs: map[string]int{}, intervals: map[string][2]time.Time{}}
}

func (c *counter) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs[id]
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.runs {
		n += v
	}
	return n
}

// wrap counts f's runs.
func (c *counter) wrap(f graph.ExecFunc) graph.Executor {
	return graph.ExecFunc(func(ctx context.Context, x *graph.Exec) error {
		c.mu.Lock()
		c.runs[x.Step.ID]++
		c.running++
		c.maxRun = max(c.maxRun, c.running)
		start := time.Now()
		c.mu.Unlock()
		err := f(ctx, x)
		c.mu.Lock()
		c.running--
		c.intervals[x.Step.ID] = [2]time.Time{start, time.Now()}
		c.mu.Unlock()
		return err
	})
}

// concat writes output "out.txt": the step's "text" param followed by the
// content of every input file (sorted by name).
func concat(ctx context.Context, x *graph.Exec) error {
	text, _ := x.Step.Spec.Params["text"].(string)
	data := []byte(text)
	names := make([]string, 0, len(x.Inputs))
	for n := range x.Inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := os.ReadFile(x.Inputs[n])
		if err != nil {
			return err
		}
		data = append(data, b...)
	}
	fmt.Fprintf(x.Log, "concat %d inputs\n", len(names))
	return os.WriteFile(filepath.Join(x.OutDir, "out.txt"), data, 0o644)
}

func step(c *counter, id, text string, inputs ...graph.Input) *graph.Step {
	return &graph.Step{
		ID:      id,
		Meta:    graph.Meta{Description: "test step " + id},
		Spec:    graph.Spec{Kind: "test/concat", Version: "1", Params: map[string]any{"text": text}},
		Inputs:  inputs,
		Outputs: []string{"out.txt"},
		Exec:    c.wrap(concat),
	}
}

func from(name string, s *graph.Step) graph.Input {
	return graph.Input{Name: name, From: s, Output: "out.txt"}
}

// env is a cache directory opened for a test.
type env struct {
	t     *testing.T
	dir   string
	store *cache.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	return openEnv(t, filepath.Join(dir, "cache"))
}

func openEnv(t *testing.T, dir string) *env {
	t.Helper()
	s, err := cache.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &env{t: t, dir: dir, store: s}
}

func (e *env) opts() graph.Options {
	return graph.Options{Store: e.store, WorkDir: e.dir, Jobs: 4}
}

func (e *env) build(roots ...*graph.Step) *graph.Result {
	e.t.Helper()
	res, err := graph.Build(context.Background(), roots, e.opts())
	if err != nil {
		e.t.Fatalf("build: %v", err)
	}
	return res
}

// events collects progress events.
type events struct {
	mu sync.Mutex
	ev []progress.Event
}

func (s *events) Event(e progress.Event) {
	s.mu.Lock()
	s.ev = append(s.ev, e)
	s.mu.Unlock()
}

func (s *events) kinds(k progress.Kind) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, e := range s.ev {
		if e.Kind == k {
			ids = append(ids, e.Step)
		}
	}
	sort.Strings(ids)
	return ids
}

func readAll(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func timeAfter(ms int) <-chan time.Time { return time.After(time.Duration(ms) * time.Millisecond) }
