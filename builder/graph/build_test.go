package graph_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/progress"
)

// chain builds a → b → c plus an independent d.
func chain(c *counter) (a, b, cc, d *graph.Step) {
	a = step(c, "a", "A")
	b = step(c, "b", "B", from("a", a))
	cc = step(c, "c", "C", from("b", b))
	d = step(c, "d", "D")
	return
}

func TestCacheHitAndMiss(t *testing.T) {
	e := newEnv(t)
	c := newCounter()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.txt")
	writeFile(t, src, "v1")
	a := step(c, "a", "A", graph.Input{Name: "src", Path: src})
	b := step(c, "b", "B", from("a", a))
	d := step(c, "d", "D")
	res := e.build(b, d)
	if c.total() != 3 {
		t.Fatalf("first build ran %d actions, want 3", c.total())
	}
	if res.Summary.Run != 3 || res.Summary.Cached != 0 {
		t.Errorf("summary %+v", res.Summary)
	}
	// Second build: everything cached, nothing runs.
	res = e.build(b, d)
	if c.total() != 3 {
		t.Fatalf("no-op build ran %d actions", c.total()-3)
	}
	for _, a := range res.Actions {
		if !a.Cached {
			t.Errorf("action %s not cached on the second build", a.ID)
		}
	}
	// Changing the source re-runs a and b, not d.
	writeFile(t, src, "v2")
	e.build(b, d)
	if c.count("a") != 2 || c.count("b") != 2 || c.count("d") != 1 {
		t.Errorf("after source change runs = %v, want a:2 b:2 d:1", c.runs)
	}
	m := res.Manifest(b)
	if m == nil || len(m.Entries) != 1 || m.Entries[0].Path != "out.txt" {
		t.Fatalf("manifest of b = %+v", m)
	}
}

func TestEarlyCutoff(t *testing.T) {
	// a's params change but its output does not: b must stay cached.
	e := newEnv(t)
	c := newCounter()
	mk := func(version string) (*graph.Step, *graph.Step) {
		a := step(c, "a", "same output")
		a.Spec.Params["unused"] = version
		b := step(c, "b", "B", from("a", a))
		return a, b
	}
	_, b := mk("1")
	e.build(b)
	_, b = mk("2")
	e.build(b)
	if c.count("a") != 2 || c.count("b") != 1 {
		t.Errorf("runs = %v, want a:2 b:1", c.runs)
	}
}

func TestOrderAndParallelism(t *testing.T) {
	e := newEnv(t)
	c := newCounter()
	// Two independent steps that each wait until both are running: they
	// can only finish if the scheduler overlaps them.
	var started atomic.Int32
	both := make(chan struct{})
	overlap := func(ctx context.Context, x *graph.Exec) error {
		if started.Add(1) == 2 {
			close(both)
		}
		select {
		case <-both:
		case <-time.After(10 * time.Second):
			return errors.New("the other independent step never started")
		}
		return concat(ctx, x)
	}
	p := step(c, "p", "P")
	p.Exec = c.wrap(overlap)
	q := step(c, "q", "Q")
	q.Exec = c.wrap(overlap)
	// A chain whose steps must never overlap.
	x := step(c, "x", "X", from("p", p))
	y := step(c, "y", "Y", from("x", x), from("q", q))
	z := step(c, "z", "Z", from("y", y))
	res := e.build(z)
	iv := c.intervals
	for _, pair := range [][2]string{{"p", "x"}, {"x", "y"}, {"q", "y"}, {"y", "z"}} {
		up, down := iv[pair[0]], iv[pair[1]]
		if down[0].Before(up[1]) {
			t.Errorf("%s started before %s finished", pair[1], pair[0])
		}
	}
	var order []string
	for _, a := range res.Actions {
		order = append(order, a.ID)
	}
	if got := strings.Join(order, ","); got != "p,q,x,y,z" {
		t.Errorf("record order %s, want p,q,x,y,z", got)
	}
	// z's output holds the data of every upstream step: real data edges.
	out := filepath.Join(t.TempDir(), "out")
	if _, err := res.Materialize(context.Background(), out, []graph.Artifact{{Step: z, Output: "out.txt", As: "z.txt"}}); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, filepath.Join(out, "z.txt")); got != "ZYQXP" {
		t.Errorf("z.txt = %q, want ZYQXP", got)
	}
}

func TestJobsLimit(t *testing.T) {
	e := newEnv(t)
	c := newCounter()
	slow := func(ctx context.Context, x *graph.Exec) error {
		time.Sleep(100 * time.Millisecond)
		return concat(ctx, x)
	}
	var roots []*graph.Step
	for i := range 6 {
		s := step(c, fmt.Sprintf("s%d", i), fmt.Sprint(i))
		s.Exec = c.wrap(slow)
		roots = append(roots, s)
	}
	o := e.opts()
	o.Jobs = 2
	if _, err := graph.Build(context.Background(), roots, o); err != nil {
		t.Fatal(err)
	}
	if c.maxRun > 2 {
		t.Errorf("%d actions ran at once with -j 2", c.maxRun)
	}
	if c.maxRun < 2 {
		t.Errorf("independent actions never overlapped with -j 2")
	}
}

func TestDedupeEqualKeys(t *testing.T) {
	e := newEnv(t)
	c := newCounter()
	// Two steps with different IDs but the same work run once.
	s1 := step(c, "one", "same")
	s2 := step(c, "two", "same")
	res := e.build(s1, s2)
	if c.total() != 1 {
		t.Errorf("equal keys ran %d times, want 1", c.total())
	}
	if res.Summary.Run != 1 || res.Summary.Cached != 1 {
		t.Errorf("summary %+v, want 1 run 1 cached", res.Summary)
	}
}

func failing(msg string) graph.ExecFunc {
	return func(ctx context.Context, x *graph.Exec) error {
		for i := range 50 {
			fmt.Fprintf(x.Log, "line %d\n", i)
		}
		return errors.New(msg)
	}
}

func TestFailureStopsBuild(t *testing.T) {
	e := newEnv(t)
	c := newCounter()
	bad := step(c, "bad", "x")
	bad.Exec = c.wrap(failing("boom"))
	after := step(c, "after", "y", from("bad", bad))
	// An independent slow step is cancelled by the failure.
	var cancelled atomic.Bool
	slow := step(c, "slow", "z")
	slow.Exec = c.wrap(func(ctx context.Context, x *graph.Exec) error {
		select {
		case <-ctx.Done():
			cancelled.Store(true)
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return concat(ctx, x)
		}
	})
	ev := &events{}
	o := e.opts()
	o.Sink = ev
	res, err := graph.Build(context.Background(), []*graph.Step{after, slow}, o)
	var se *graph.StepError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a StepError", err)
	}
	if se.Step != "bad" || se.Key == "" || !strings.Contains(se.Err.Error(), "boom") {
		t.Errorf("StepError %+v", se)
	}
	if !strings.Contains(readAll(t, se.Log), "line 49") {
		t.Errorf("log %s does not hold the step's output", se.Log)
	}
	if c.count("after") != 0 {
		t.Errorf("dependent of a failed step ran")
	}
	if c.count("slow") == 1 && !cancelled.Load() {
		t.Errorf("running step was not cancelled")
	}
	if res.Summary.Failed != 1 || res.Summary.Skipped != 2 {
		t.Errorf("summary %+v, want 1 failed 2 skipped", res.Summary)
	}
	if got := ev.kinds(progress.Failed); len(got) != 1 || got[0] != "bad" {
		t.Errorf("failed events %v", got)
	}
	// Nothing of the failed or cancelled steps is cached.
	for _, a := range res.Actions {
		if a.Key == "" {
			continue
		}
		if _, err := e.store.GetAction(context.Background(), a.Key); err == nil {
			t.Errorf("cache holds an entry for step %s", a.ID)
		}
	}
}

func TestKeepGoing(t *testing.T) {
	e := newEnv(t)
	c := newCounter()
	bad := step(c, "bad", "x")
	bad.Exec = c.wrap(failing("boom"))
	after := step(c, "after", "y", from("bad", bad))
	bad2 := step(c, "bad2", "w")
	bad2.Exec = c.wrap(func(ctx context.Context, x *graph.Exec) error {
		time.Sleep(30 * time.Millisecond) // after "bad" failed
		return errors.New("second failure")
	})
	ok1 := step(c, "ok1", "z")
	ok2 := step(c, "ok2", "v", from("ok1", ok1))
	o := e.opts()
	o.KeepGoing = true
	res, err := graph.Build(context.Background(), []*graph.Step{after, bad2, ok2}, o)
	if err == nil {
		t.Fatal("build with failures succeeded")
	}
	var n int
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var se *graph.StepError
		if errors.As(e, &se) {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d step errors, want 2: %v", n, err)
	}
	if c.count("ok2") != 1 || c.count("after") != 0 {
		t.Errorf("runs = %v, want ok1, ok2 built and after skipped", c.runs)
	}
	if res.Summary.Run != 2 || res.Summary.Failed != 2 || res.Summary.Skipped != 1 {
		t.Errorf("summary %+v", res.Summary)
	}
	// The independent work is cached: the next build only retries.
	c2 := newCounter()
	ok1b := step(c2, "ok1", "z")
	e.build(step(c2, "ok2", "v", from("ok1", ok1b)))
	if c2.total() != 0 {
		t.Errorf("successful steps of a -k build were not cached")
	}
}

func TestCancellation(t *testing.T) {
	e := newEnv(t)
	c := newCounter()
	running := make(chan struct{})
	var exited atomic.Bool
	s := step(c, "long", "x")
	s.Exec = c.wrap(func(ctx context.Context, x *graph.Exec) error {
		// Leave a partial output behind, as a killed tool would.
		os.WriteFile(filepath.Join(x.OutDir, "out.txt"), []byte("partial"), 0o644)
		close(running)
		<-ctx.Done()
		exited.Store(true)
		return ctx.Err()
	})
	// An executor that ignores cancellation and returns success must not
	// be cached either.
	liar := step(c, "liar", "y")
	liarRunning := make(chan struct{})
	liar.Exec = c.wrap(func(ctx context.Context, x *graph.Exec) error {
		close(liarRunning)
		<-ctx.Done()
		return concat(context.Background(), x)
	})
	down := step(c, "down", "z", from("long", s))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-running
		<-liarRunning
		cancel()
	}()
	res, err := graph.Build(ctx, []*graph.Step{down, liar}, e.opts())
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want cancellation", err)
	}
	if !exited.Load() {
		t.Error("Build returned while an action was still running")
	}
	if c.count("down") != 0 {
		t.Error("a step ran after cancellation")
	}
	for _, a := range res.Actions {
		if a.Key == "" {
			continue
		}
		if _, err := e.store.GetAction(context.Background(), a.Key); err == nil {
			t.Errorf("cache holds an entry for cancelled step %s", a.ID)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(e.dir, "tmp")); len(ents) != 0 {
		t.Errorf("scratch directories left behind: %v", ents)
	}
	// The next build runs them again and succeeds.
	s.Exec = c.wrap(concat)
	liar.Exec = c.wrap(concat)
	e.build(down, liar)
	if c.count("long") != 2 || c.count("liar") != 2 {
		t.Errorf("runs after cancel %v", c.runs)
	}
}

func TestBadOutputs(t *testing.T) {
	e := newEnv(t)
	c := newCounter()
	missing := step(c, "missing", "x")
	missing.Exec = c.wrap(func(ctx context.Context, x *graph.Exec) error { return nil })
	if _, err := graph.Build(context.Background(), []*graph.Step{missing}, e.opts()); err == nil || !strings.Contains(err.Error(), `declared output "out.txt" was not created`) {
		t.Errorf("missing output: err = %v", err)
	}
	extra := step(c, "extra", "y")
	extra.Exec = c.wrap(func(ctx context.Context, x *graph.Exec) error {
		os.WriteFile(filepath.Join(x.OutDir, "stray"), nil, 0o644)
		return concat(ctx, x)
	})
	if _, err := graph.Build(context.Background(), []*graph.Step{extra}, e.opts()); err == nil || !strings.Contains(err.Error(), `undeclared output "stray"`) {
		t.Errorf("stray output: err = %v", err)
	}
}

func TestInvalidGraphs(t *testing.T) {
	e := newEnv(t)
	c := newCounter()
	a := step(c, "a", "x")
	b := step(c, "a", "y") // same ID, different step
	cases := map[string][]*graph.Step{
		"share the ID": {a, b},
		"exactly one":  {step(c, "n", "x", graph.Input{Name: "i"})},
		"declared twice": {step(c, "n", "x", graph.Input{Name: "i", Blob: []byte("1")},
			graph.Input{Name: "i", Blob: []byte("2")})},
		"wants output": {step(c, "n", "x", graph.Input{Name: "i", From: a, Output: "nope"})},
	}
	cyc1 := step(c, "c1", "x")
	cyc2 := step(c, "c2", "x", from("c1", cyc1))
	cyc1.Inputs = []graph.Input{from("c2", cyc2)}
	cases["cycle"] = []*graph.Step{cyc2}
	for want, roots := range cases {
		_, err := graph.Build(context.Background(), roots, e.opts())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v", want, err)
		}
	}
	if c.total() != 0 {
		t.Errorf("invalid graphs ran %d actions", c.total())
	}
}

func TestPanickingExecutor(t *testing.T) {
	e := newEnv(t)
	c := newCounter()
	p := step(c, "p", "x")
	p.Exec = c.wrap(func(ctx context.Context, x *graph.Exec) error { panic("oops") })
	_, err := graph.Build(context.Background(), []*graph.Step{p}, e.opts())
	if err == nil || !strings.Contains(err.Error(), "panicked: oops") {
		t.Errorf("err = %v", err)
	}
}

func TestDedupedFailureNamesBothSteps(t *testing.T) {
	e := newEnv(t)
	c := newCounter()
	s1 := step(c, "one", "same")
	s1.Exec = c.wrap(failing("boom"))
	s2 := step(c, "two", "same")
	s2.Exec = s1.Exec
	o := e.opts()
	o.KeepGoing = true
	_, err := graph.Build(context.Background(), []*graph.Step{s1, s2}, o)
	if c.total() != 1 {
		t.Errorf("equal keys ran %d times", c.total())
	}
	var steps []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var se *graph.StepError
		if errors.As(e, &se) {
			steps = append(steps, se.Step)
		}
	}
	if strings.Join(steps, ",") != "one,two" {
		t.Errorf("failed steps %v, want one,two (err %v)", steps, err)
	}
}
