package graph_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/uvmbuild/uvmbuild/builder/cache"
	"github.com/uvmbuild/uvmbuild/builder/graph"
)

// syntheticGraph is 10 layers of 20 steps; each step reads two steps of
// the layer before: 200 actions with real data edges.
func syntheticGraph(c *counter) []*graph.Step {
	const layers, width = 10, 20
	var prev, all []*graph.Step
	for l := range layers {
		var cur []*graph.Step
		for i := range width {
			s := step(c, fmt.Sprintf("l%02d/s%02d", l, i), fmt.Sprintf("%d.%d;", l, i))
			if prev != nil {
				s.Inputs = []graph.Input{from("a", prev[i]), from("b", prev[(i+1)%width])}
			}
			cur = append(cur, s)
		}
		all = append(all, cur...)
		prev = cur
	}
	return prev // the last layer reaches every step
}

// BenchmarkNoOpBuild200 measures a build of 200 actions that are all
// cached: key computation, action-cache lookups, history checks and
// record assembly. ns/action is the scheduling overhead per action.
func BenchmarkNoOpBuild200(b *testing.B) {
	dir := b.TempDir()
	s, err := cache.Open(context.Background(), dir)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := newCounter()
	roots := syntheticGraph(c)
	opts := graph.Options{Store: s, WorkDir: dir, Jobs: 2}
	if _, err := graph.Build(context.Background(), roots, opts); err != nil {
		b.Fatal(err)
	}
	if c.total() != 200 {
		b.Fatalf("first build ran %d actions", c.total())
	}
	b.ResetTimer()
	for b.Loop() {
		res, err := graph.Build(context.Background(), roots, opts)
		if err != nil {
			b.Fatal(err)
		}
		if res.Summary.Cached != 200 {
			b.Fatalf("no-op build: %+v", res.Summary)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/200, "ns/action")
	if c.total() != 200 {
		b.Fatalf("no-op builds ran %d actions", c.total()-200)
	}
}

// BenchmarkRunBuild200 measures a build that runs 200 trivial actions:
// the engine's cost per executed action (scratch dirs, log files, output
// ingestion with fsync, action entries).
func BenchmarkRunBuild200(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		s, err := cache.Open(context.Background(), dir)
		if err != nil {
			b.Fatal(err)
		}
		roots := syntheticGraph(newCounter())
		b.StartTimer()
		if _, err := graph.Build(context.Background(), roots, graph.Options{Store: s, WorkDir: dir, Jobs: 2}); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/200, "ns/action")
}
