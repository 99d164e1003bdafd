package cli

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the CLI golden files in testdata/")

// golden compares got with testdata/NAME, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -run TestGolden -update rewrites it)\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

// TestGoldenSample pins the output of the listing and planning commands on
// the sample recipe: their format is an interface for scripts.
func TestGoldenSample(t *testing.T) {
	e := newCLIEnv(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"sample-targets.txt", []string{"targets"}},
		{"sample-vars.json", []string{"vars", "--json"}},
		{"sample-graph.mmd", []string{"graph", "--format", "mermaid", "COUNT=2"}},
		{"sample-graph.dot", []string{"graph", "--format", "dot", "COUNT=2"}},
	} {
		stdout, stderr, code := e.run(tc.args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, stderr)
		}
		golden(t, tc.name, stdout)
	}
	if _, stderr, code := e.run("COUNT=2"); code != 0 {
		t.Fatal(stderr)
	}
	stdout, _, _ := e.run("plan", "COUNT=2", "STYLE=shout", "GREETING=hi")
	golden(t, "sample-plan.txt", stdout)
	stdout, _, _ = e.run("COUNT=2")
	golden(t, "sample-build-stdout.txt", strings.ReplaceAll(stdout, e.out, "OUT"))

	// A changed host file is explained by its old and new digests.
	notes := filepath.Join(e.dir, "notes.txt")
	os.WriteFile(notes, []byte("first\n"), 0o644)
	if _, stderr, code := e.run("COUNT=2", "NOTES="+notes); code != 0 {
		t.Fatal(stderr)
	}
	os.WriteFile(notes, []byte("second\n"), 0o644)
	stdout, _, _ = e.run("plan", "COUNT=2", "NOTES="+notes)
	golden(t, "sample-plan-notes.txt", stdout)
}
