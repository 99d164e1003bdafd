package cli

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestPlanExplainsChangedVariable(t *testing.T) {
	e := newCLIEnv(t)
	stdout, _, code := e.run("plan")
	if code != 0 || !strings.Contains(stdout, "new step: no earlier build") || !strings.Contains(stdout, "7 actions: 0 cached, 7 to run") {
		t.Fatalf("plan before any build (exit %d):\n%s", code, stdout)
	}
	if _, stderr, code := e.run(); code != 0 {
		t.Fatal(stderr)
	}
	stdout, _, _ = e.run("plan")
	if !strings.Contains(stdout, "7 actions: 7 cached, 0 to run") {
		t.Errorf("plan after build:\n%s", stdout)
	}
	stdout, _, _ = e.run("plan", "STYLE=shout")
	for _, want := range []string{
		"cached  sample/generate-1",
		"run     sample/transform-1: transform part 1 (shout)\n          param style: \"plain\" → \"shout\"",
		"input part-001: produced by step sample/transform-1, which will run",
		"7 actions: 3 cached, 4 to run",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("plan STYLE=shout lacks %q:\n%s", want, stdout)
		}
	}
	// JSON form.
	stdout, _, _ = e.run("plan", "--json", "GREETING=hi")
	var acts []struct {
		ID      string
		Cached  bool
		Reasons []struct{ What, Old, New string }
	}
	if err := json.Unmarshal([]byte(stdout), &acts); err != nil {
		t.Fatal(err)
	}
	if len(acts) != 7 || acts[0].ID != "sample/generate-1" || acts[0].Cached || acts[0].Reasons[0].What != "param greeting" ||
		acts[0].Reasons[0].Old != `"hello"` || acts[0].Reasons[0].New != `"hi"` {
		t.Errorf("plan --json: %+v", acts)
	}
	if _, _, code := e.run("plan", "nope"); code != 1 {
		t.Errorf("plan of an unknown target: exit %d", code)
	}
}

func TestTargetsVarsGraph(t *testing.T) {
	e := newCLIEnv(t)
	stdout, _, code := e.run("targets")
	if code != 0 || !strings.HasPrefix(stdout, "all ") || !strings.Contains(stdout, "clean  remove") {
		t.Errorf("targets:\n%s", stdout)
	}
	e.environ = append(e.environ, "COUNT=5")
	stdout, _, code = e.run("vars", "STYLE=shout")
	if code != 0 {
		t.Fatal(stdout)
	}
	for _, want := range []string{"STYLE       plain|shout    shout    command line", "COUNT       int            5        environment", "SUFFIX      string         \"\"       derived"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("vars lacks %q:\n%s", want, stdout)
		}
	}
	stdout, _, _ = e.run("vars", "--json")
	var vars []varInfo
	if err := json.Unmarshal([]byte(stdout), &vars); err != nil || len(vars) != 8 || vars[0].Name != "COUNT" || vars[0].Value != "5" || vars[0].Source != "environment" {
		t.Errorf("vars --json: %v %+v", err, vars)
	}
	if _, stderr, code := e.run("vars", "NOPE=1"); code != 1 || !strings.Contains(stderr, "unknown variable NOPE") {
		t.Errorf("vars NOPE=1: exit %d %s", code, stderr)
	}
	stdout, _, code = e.run("graph", "--format", "dot", "COUNT=2")
	if code != 0 || !strings.Contains(stdout, `"sample/transform-2" -> "sample/combine" [label="part-002"];`) {
		t.Errorf("graph dot:\n%s", stdout)
	}
	stdout, _, _ = e.run("graph", "--format", "mermaid", "COUNT=1")
	if !strings.HasPrefix(stdout, "flowchart LR\n") {
		t.Errorf("graph mermaid:\n%s", stdout)
	}
	stdout, _, _ = e.run("graph", "--format", "json", "parts", "COUNT=1")
	var g struct{ Steps []struct{ ID string } }
	if err := json.Unmarshal([]byte(stdout), &g); err != nil || len(g.Steps) != 2 {
		t.Errorf("graph json: %v %s", err, stdout)
	}
	if _, _, code := e.run("graph", "--format", "svg"); code != 2 {
		t.Errorf("graph --format svg: exit %d, want 2", code)
	}
}

func TestCachePrune(t *testing.T) {
	e := newCLIEnv(t)
	if _, stderr, code := e.run(); code != 0 {
		t.Fatal(stderr)
	}
	stdout, stderr, code := e.run("cache", "info", "--cache-dir", e.cache)
	if code != 0 || !strings.HasPrefix(stdout, e.cache+"\t") {
		t.Errorf("cache info: %s %s", stdout, stderr)
	}
	stdout, stderr, code = e.run("cache", "prune", "--max-size", "0", "--cache-dir", e.cache)
	if code != 0 || !strings.Contains(stdout, "7 actions") {
		t.Fatalf("prune: exit %d %s %s", code, stdout, stderr)
	}
	_, stderr, _ = e.run()
	if !strings.Contains(stderr, "7 run, 0 cached") {
		t.Errorf("after prune:\n%s", stderr)
	}
	if _, _, code := e.run("cache", "prune", "--cache-dir", e.cache); code != 2 {
		t.Errorf("prune without --max-size: exit %d, want 2", code)
	}
	if _, _, code := e.run("cache", "prune", "--max-size", "lots", "--cache-dir", e.cache); code != 2 {
		t.Errorf("prune --max-size lots: exit %d, want 2", code)
	}
	// The cache location comes from UVMBUILD_CACHE when no flag is given.
	e.environ = append(e.environ, "UVMBUILD_CACHE="+e.cache)
	if stdout, _, _ := e.run("cache", "info"); !strings.HasPrefix(stdout, e.cache+"\t") {
		t.Errorf("UVMBUILD_CACHE ignored: %s", stdout)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "10K": 10 << 10, "500M": 500 << 20, "2G": 2 << 30, "1.5GiB": 3 << 29, "1T": 1 << 40} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "10Q"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestDryRunFlag(t *testing.T) {
	e := newCLIEnv(t)
	stdout, stderr, code := e.run("-n", "COUNT=1")
	if code != 0 || !strings.Contains(stdout, "3 actions: 0 cached, 3 to run") {
		t.Fatalf("-n: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(e.out); err == nil {
		t.Error("-n created the output directory")
	}
	stdout, _, _ = e.run("build", "--dry-run", "COUNT=1")
	if !strings.Contains(stdout, "3 to run") {
		t.Errorf("build --dry-run:\n%s", stdout)
	}
}
