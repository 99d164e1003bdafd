package sandbox_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/uvmbuild/uvmbuild/builder/sandbox"
)

// reportMedian runs fn b.N times and reports the median wall time; the
// mean that -bench prints hides the start-up outliers.
func reportMedian(b *testing.B, fn func() error) {
	b.Helper()
	var ds []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(ds[0].Microseconds())/1000, "min-ms")
	b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, "max-ms")
}

func benchRoot(b *testing.B) string {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		b.Skip("runc not installed")
	}
	dir := b.TempDir()
	root := filepath.Join(dir, "root")
	for _, d := range []string{"bin", "in", "out", "tmp", "proc", "sys", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		b.Skip("busybox-static not installed")
	}
	os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755)
	os.Symlink("busybox", filepath.Join(root, "bin/true"))
	os.Symlink("busybox", filepath.Join(root, "bin/sh"))
	return root
}

// BenchmarkPlainExec is the floor: fork+exec of a static binary.
func BenchmarkPlainExec(b *testing.B) {
	reportMedian(b, func() error { return exec.Command("/bin/busybox", "true").Run() })
}

// BenchmarkBareRunc is `runc run` of `runc spec`'s default configuration
// (no limits beyond runc's own, read-only busybox root).
func BenchmarkBareRunc(b *testing.B) {
	root := benchRoot(b)
	bundle := b.TempDir()
	state := b.TempDir()
	if out, err := exec.Command("runc", "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		b.Fatalf("runc spec: %v %s", err, out)
	}
	var cfg map[string]any
	raw, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	json.Unmarshal(raw, &cfg)
	proc := cfg["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"/bin/true"}
	cfg["root"] = map[string]any{"path": root, "readonly": true}
	raw, _ = json.Marshal(cfg)
	os.WriteFile(filepath.Join(bundle, "config.json"), raw, 0o600)
	i := 0
	reportMedian(b, func() error {
		i++
		return exec.Command("runc", "--root", state, "run", "--bundle", bundle, "bench-bare-"+itoa(i)).Run()
	})
}

// BenchmarkSandboxRun is one hermetic step of /bin/true through Run:
// config generation, runc run, teardown.
func BenchmarkSandboxRun(b *testing.B) {
	root := benchRoot(b)
	state := b.TempDir()
	in := b.TempDir()
	reportMedian(b, func() error {
		bundle, err := os.MkdirTemp(state, "bundle")
		if err != nil {
			return err
		}
		defer os.RemoveAll(bundle)
		return sandbox.Run(context.Background(), sandbox.Spec{
			Rootfs: root, Args: []string{"/bin/true"}, Env: testEnv, Bundle: bundle, StateRoot: state,
			Output: b.TempDir(), Inputs: []sandbox.Mount{{Source: in, Dest: "/in/src"}},
		})
	})
}
