package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uvmbuild/uvmbuild/builder/record"
)

// TestTwoBuildsShareOneCache runs two builds at once into one cache (each
// with its own out/): both succeed with identical artifacts, and every
// action runs once in total — the other build waits for it and reuses it.
func TestTwoBuildsShareOneCache(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	var wg sync.WaitGroup
	codes := make([]int, 2)
	errs := make([]string, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := &Options{Recipes: composeRecipes(), Environ: []string{"HOME=" + dir}}
			var so, se bytes.Buffer
			codes[i] = run(context.Background(), o, []string{"--recipe", "sample", "--cache-dir", cache, "--progress", "plain",
				"--out", filepath.Join(dir, "out"+string(rune('0'+i))), "SLEEP_MS=200"}, strings.NewReader(""), &so, &se)
			errs[i] = se.String()
		}()
	}
	wg.Wait()
	ran := 0
	var digests []string
	for i := range 2 {
		if codes[i] != 0 {
			t.Fatalf("build %d: exit %d\n%s", i, codes[i], errs[i])
		}
		b, err := record.Read(filepath.Join(dir, "out"+string(rune('0'+i)), record.FileName))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range b.Actions {
			if !a.Cached {
				ran++
			}
		}
		digests = append(digests, string(b.Artifacts[0].Digest)+string(b.Artifacts[1].Digest))
	}
	if ran != 7 {
		t.Errorf("%d action runs across two builds of 7 actions, want 7", ran)
	}
	if digests[0] != digests[1] {
		t.Error("the two builds produced different artifacts")
	}
}

// TestInterruptedBuild cancels a build mid-way (as Ctrl-C does): exit 1,
// out/ as it was, and the next build completes from a consistent cache.
func TestInterruptedBuild(t *testing.T) {
	e := newCLIEnv(t)
	if _, stderr, code := e.run(); code != 0 {
		t.Fatal(stderr)
	}
	before := snapshot(t, e.out)
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel once every transform is running (all generates are done).
	se := &watchWriter{want: "[run]     sample/transform-", n: 3, seen: make(chan struct{})}
	go func() {
		select {
		case <-se.seen:
		case <-time.After(30 * time.Second):
		}
		cancel()
	}()
	o := &Options{Recipes: composeRecipes(), Environ: e.environ}
	var so bytes.Buffer
	code := run(ctx, o, []string{"--recipe", "sample", "--out", e.out, "--cache-dir", e.cache, "--progress", "plain", "-j", "4",
		"SLEEP_MS=5000", "STYLE=shout"}, strings.NewReader(""), &so, se)
	if code != 1 {
		t.Fatalf("interrupted build: exit %d\n%s", code, se.String())
	}
	last := strings.TrimSpace(se.String())
	last = last[strings.LastIndex(last, "\n")+1:]
	if !strings.HasPrefix(last, "uvmbuild: ") || !strings.Contains(last, "context canceled") {
		t.Errorf("last line %q", last)
	}
	if !equalSnap(before, snapshot(t, e.out)) {
		t.Error("out/ changed by an interrupted build")
	}
	stdout, _, _ := e.run("plan", "STYLE=shout", "SLEEP_MS=1")
	if !strings.Contains(stdout, "3 cached, 4 to run") {
		t.Errorf("plan after interrupt:\n%s", stdout)
	}
	if _, stderr, code := e.run("STYLE=shout", "SLEEP_MS=1"); code != 0 {
		t.Fatal(stderr)
	}
}

// watchWriter collects output and closes seen once want has appeared in n
// writes.
type watchWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	n    int
	seen chan struct{}
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n > 0 && bytes.Contains(p, []byte(w.want)) {
		w.n--
		if w.n == 0 {
			close(w.seen)
		}
	}
	return w.buf.Write(p)
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
