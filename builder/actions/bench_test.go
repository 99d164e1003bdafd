package actions_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/uvmbuild/uvmbuild/builder/actions"
	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/images"
)

// BenchmarkContainerStep is the per-step overhead of a trivial container
// step, image already unpacked: executor, bundle, runc, normalisation.
func BenchmarkContainerStep(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	dir, d := busyboxLayoutB(b)
	cache := b.TempDir()
	store := &images.Store{Dir: cache}
	c := &actions.Container{Images: store, Sources: []images.Source{{Layout: dir}}, StateRoot: filepath.Join(cache, "runc")}
	s := &graph.Step{ID: "bench", Exec: c, Spec: actions.ContainerSpec(d, actions.ContainerParams{Argv: []string{"/bin/true"}, SourceDateEpoch: testEpoch})}
	in := b.TempDir()
	// Warm: import and unpack once.
	if err := runB(b, s, in); err != nil {
		b.Fatal(err)
	}
	var ds []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := runB(b, s, in); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "median-ms")
}

func runB(b *testing.B, s *graph.Step, in string) error {
	base := b.TempDir()
	out := filepath.Join(base, "out")
	tmp := filepath.Join(base, "tmp")
	os.Mkdir(out, 0o755)
	os.Mkdir(tmp, 0o700)
	return s.Exec.Run(context.Background(), &graph.Exec{Step: s, Inputs: map[string]string{"src": in}, OutDir: out, TempDir: tmp})
}
