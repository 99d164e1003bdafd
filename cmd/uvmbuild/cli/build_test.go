package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uvmbuild/uvmbuild/builder/attest"
	"github.com/uvmbuild/uvmbuild/builder/record"
)

// cliEnv is a project directory with its own out/ and cache.
type cliEnv struct {
	t       *testing.T
	dir     string
	out     string
	cache   string
	environ []string
}

func newCLIEnv(t *testing.T) *cliEnv {
	dir := t.TempDir()
	return &cliEnv{t: t, dir: dir, out: filepath.Join(dir, "out"), cache: filepath.Join(dir, "cache"),
		environ: []string{"HOME=" + dir}}
}

// run runs uvmbuild with the sample recipe, the env's out and cache dirs
// and args; it returns stdout, stderr and the exit code.
func (e *cliEnv) run(args ...string) (string, string, int) {
	e.t.Helper()
	o := &Options{Recipes: composeRecipes(), Environ: e.environ}
	full := args
	if len(args) == 0 || !isSubcommand(args[0]) {
		full = append([]string{"--recipe", "sample", "--out", e.out, "--cache-dir", e.cache, "--progress", "plain"}, args...)
	} else if args[0] != "cache" {
		full = append([]string{args[0], "--recipe", "sample", "--out", e.out, "--cache-dir", e.cache}, args[1:]...)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), o, full, strings.NewReader(""), &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

func isSubcommand(s string) bool {
	switch s {
	case "build", "plan", "vars", "targets", "graph", "cache":
		return true
	}
	return false
}

func (e *cliEnv) record() *record.Build {
	e.t.Helper()
	b, err := record.Read(filepath.Join(e.out, record.FileName))
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *cliEnv) read(name string) string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.out, name))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

func TestBuildSample(t *testing.T) {
	e := newCLIEnv(t)
	stdout, stderr, code := e.run()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "sample-report.txt\tsha256:") || !strings.Contains(stdout, "sample.count\t3") {
		t.Errorf("stdout:\n%s", stdout)
	}
	if !strings.Contains(stderr, "build ok: 7 run, 0 cached") {
		t.Errorf("stderr:\n%s", stderr)
	}
	if got := e.read("sample-report.txt"); got != "sample report (release)\nhello 1\nhello 2\nhello 3\n" {
		t.Errorf("report %q", got)
	}
	if got := e.read("sample-parts/part-002.txt"); got != "hello 2\n" {
		t.Errorf("part 2 %q", got)
	}
	b := e.record()
	if b.Recipe != "sample" || len(b.Targets) != 1 || b.Targets[0] != "all" || b.Vars["COUNT"] != "3" || len(b.Actions) != 7 {
		t.Errorf("record %+v", b)
	}
	for _, a := range b.Actions {
		if a.Cached || a.Key == "" || len(a.Outputs.Entries) == 0 || a.Log == "" || strings.HasPrefix(a.Log, "/") {
			t.Errorf("action %+v", a)
		}
	}
	if c := b.Action("sample/combine"); c == nil || len(c.Inputs) != 4 || c.Inputs[1].Source != "step:sample/transform-1/part.txt" {
		t.Errorf("combine inputs %+v", c)
	}
	data, _ := os.ReadFile(filepath.Join(e.out, record.FileName))
	if strings.Contains(string(data), e.dir) {
		t.Errorf("build.json holds the host path %s", e.dir)
	}

	// No-op: everything cached, same artifacts.
	_, stderr, code = e.run()
	if code != 0 || !strings.Contains(stderr, "0 run, 7 cached") {
		t.Fatalf("second build: exit %d\n%s", code, stderr)
	}
	b2 := e.record()
	for i, a := range b2.Actions {
		if !a.Cached || a.Key != b.Actions[i].Key {
			t.Errorf("second build action %s: cached %v key %s", a.ID, a.Cached, a.Key)
		}
	}
}

func TestVariablePrecedence(t *testing.T) {
	e := newCLIEnv(t)
	e.environ = append(e.environ, "STYLE=shout", "COUNT=2")
	if _, stderr, code := e.run("STYLE=plain"); code != 0 {
		t.Fatal(stderr)
	}
	// STYLE from the command line (plain) beats the environment (shout);
	// COUNT from the environment beats the default.
	if got := e.read("sample-report.txt"); got != "sample report (release)\nhello 1\nhello 2\n" {
		t.Errorf("report %q", got)
	}
	if _, stderr, code := e.run(); code != 0 {
		t.Fatal(stderr)
	}
	if got := e.read("sample-report.txt"); !strings.Contains(got, "HELLO 1!") {
		t.Errorf("environment STYLE=shout ignored: %q", got)
	}
	// Derived default: BUILD_TYPE=debug names the report -debug.
	if _, stderr, code := e.run("BUILD_TYPE=debug"); code != 0 {
		t.Fatal(stderr)
	}
	e.read("sample-report-debug.txt")
}

// snapshot maps every file under dir to its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			m[p] = string(b)
		}
		return nil
	})
	return m
}

func equalSnap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestBadInputLeavesOutAndCacheIntact(t *testing.T) {
	e := newCLIEnv(t)
	if _, stderr, code := e.run(); code != 0 {
		t.Fatal(stderr)
	}
	outBefore := snapshot(t, e.out)
	cacheBefore := snapshot(t, filepath.Join(e.cache, "blobs"))
	acBefore := snapshot(t, filepath.Join(e.cache, "ac"))
	file := filepath.Join(e.dir, "a-file")
	os.WriteFile(file, []byte("x"), 0o644)

	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"al"}, 1, `unknown target "al" for recipe sample (did you mean all?)`},
		{[]string{"STYLE=loud"}, 1, `STYLE: invalid value "loud": want one of plain, shout`},
		{[]string{"COUNT=many"}, 1, `COUNT: invalid value "many": want an integer`},
		{[]string{"COUNTS=2"}, 1, `unknown variable COUNTS for recipe sample (did you mean COUNT?)`},
		{[]string{"COUNT=0"}, 1, `COUNT: 0 out of range`},
		{[]string{"--out", filepath.Join(file, "out")}, 1, "output directory"},
		{[]string{"--cache-dir", filepath.Join(file, "cache")}, 1, "cache directory"},
		{[]string{"--recipe", "sampel"}, 1, `unknown recipe "sampel" (did you mean sample?)`},
		{[]string{"--jobs", "0"}, 2, "--jobs 0"},
		{[]string{"--no-such-flag"}, 2, "unknown flag"},
		{[]string{"--progress", "fancy"}, 2, "--progress"},
		{[]string{"FAIL=sample/transform-2", "STYLE=shout"}, 1, "step sample/transform-2 failed: failing as asked"},
	}
	for _, tc := range cases {
		_, stderr, code := e.run(tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d; stderr:\n%s", tc.args, code, tc.code, stderr)
		}
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last, "uvmbuild: ") || !strings.Contains(last, tc.want) {
			t.Errorf("%v: last stderr line %q, want it to contain %q", tc.args, last, tc.want)
		}
		if !equalSnap(outBefore, snapshot(t, e.out)) {
			t.Errorf("%v: out/ changed", tc.args)
		}
		if !equalSnap(cacheBefore, snapshot(t, filepath.Join(e.cache, "blobs"))) && tc.args[0] != "FAIL=sample/transform-2" {
			t.Errorf("%v: cache blobs changed", tc.args)
		}
	}
	for p, v := range acBefore {
		if b, err := os.ReadFile(p); err != nil || string(b) != v {
			t.Errorf("action entry %s damaged", p)
		}
	}
}

func TestFailurePrintsLogTail(t *testing.T) {
	e := newCLIEnv(t)
	_, stderr, code := e.run("FAIL=sample/combine")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stderr, "| sample/combine: log line 50") || strings.Contains(stderr, "| sample/combine: log line 10\n") {
		t.Errorf("stderr does not end with the last 40 log lines:\n%s", stderr)
	}
	if !strings.Contains(stderr, "log: "+e.cache) {
		t.Errorf("no log path:\n%s", stderr)
	}
	if _, err := os.Stat(filepath.Join(e.out, record.FileName)); err == nil {
		t.Error("a failed build wrote build.json")
	}
	// -k keeps going: other transforms are built and cached.
	_, _, code = e.run("-k", "FAIL=sample/transform-1", "STYLE=shout")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	stdout, _, _ := e.run("plan", "STYLE=shout")
	if !strings.Contains(stdout, "cached  sample/transform-2") || !strings.Contains(stdout, "run     sample/transform-1") {
		t.Errorf("after -k, plan:\n%s", stdout)
	}
}

func TestCorruptCacheRebuilds(t *testing.T) {
	e := newCLIEnv(t)
	if _, stderr, code := e.run(); code != 0 {
		t.Fatal(stderr)
	}
	want := e.read("sample-report.txt")
	// Corrupt every blob in the cache (through new files: out/ holds hard
	// links to them).
	filepath.Walk(filepath.Join(e.cache, "blobs"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			os.Remove(p)
			os.WriteFile(p, []byte("garbage"), 0o644)
		}
		return nil
	})
	os.RemoveAll(e.out)
	_, stderr, code := e.run()
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "evicting corrupt blob") {
		t.Errorf("no warning:\n%s", stderr)
	}
	if got := e.read("sample-report.txt"); got != want {
		t.Errorf("report after repair %q, want %q", got, want)
	}
}

func TestCleanTarget(t *testing.T) {
	e := newCLIEnv(t)
	if _, stderr, code := e.run(); code != 0 {
		t.Fatal(stderr)
	}
	stdout, stderr, code := e.run("clean")
	if code != 0 {
		t.Fatal(stderr)
	}
	if !strings.Contains(stdout, "cleaned") {
		t.Errorf("stdout %q", stdout)
	}
	ents, _ := os.ReadDir(e.out)
	if len(ents) != 0 {
		t.Errorf("out holds %v after clean", ents)
	}
	// clean then all in one invocation, as make does.
	if _, stderr, code := e.run("clean", "all"); code != 0 {
		t.Fatal(stderr)
	}
	e.read("sample-report.txt")
	e.record()
}

func TestProgressJSON(t *testing.T) {
	e := newCLIEnv(t)
	_, stderr, code := e.run("--progress", "json", "COUNT=1")
	if code != 0 {
		t.Fatal(stderr)
	}
	kinds := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var ev struct {
			Kind    string `json:"kind"`
			Step    string `json:"step"`
			Summary *struct{ Run int }
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("stderr line is not JSON: %q", line)
		}
		kinds[ev.Kind]++
		if ev.Kind == "build-end" && (ev.Summary == nil || ev.Summary.Run != 3) {
			t.Errorf("build-end %s", line)
		}
	}
	if kinds["build-start"] != 1 || kinds["start"] != 3 || kinds["done"] != 3 || kinds["build-end"] != 1 {
		t.Errorf("event counts %v", kinds)
	}
}

// TestBuildWritesProvenance checks the build's post-steps: the provenance
// statement lands beside build.json and validates, and --expect fails a
// build that has no launch measurement to compare with.
func TestBuildWritesProvenance(t *testing.T) {
	e := newCLIEnv(t)
	if _, stderr, code := e.run(); code != 0 {
		t.Fatal(stderr)
	}
	e.read(attest.ProvenanceFile)
	var stdout, stderr bytes.Buffer
	o := &Options{Recipes: composeRecipes(), Environ: e.environ}
	if code := run(context.Background(), o, []string{"provenance", "--check", filepath.Join(e.out, attest.ProvenanceFile)}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("provenance --check: exit %d\n%s", code, stderr.String())
	}
	missing := filepath.Join(t.TempDir(), "missing.cose")
	if _, _, code := e.run("--expect", missing); code == 0 {
		t.Fatal("--expect with a missing file succeeded")
	}
}
