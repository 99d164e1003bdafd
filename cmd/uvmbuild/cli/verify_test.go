package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uvmbuild/uvmbuild/builder/cache"
	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/record"
)

// The verify tests re-execute the test binary as "uvmbuild": with
// testBuildEnv set, TestMain runs testBuildMain, a build of the tiny
// test-only recipe below through the real graph and cache, writing
// out/build.json like the real build command.
const testBuildEnv = "UVMBUILD_TEST_VERIFY_BUILD"

// testMainEnv makes the test binary run as the real uvmbuild (cli.Main),
// so verify can re-execute it on the sample recipe.
const testMainEnv = "UVMBUILD_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(testMainEnv) == "1" {
		// cmd/uvmbuild/main.go fixes the umask the same way before
		// calling Main, so native Go steps write the same modes whatever
		// the caller's umask.
		syscall.Umask(0o022)
		os.Exit(Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	if os.Getenv(testBuildEnv) == "1" {
		if err := testBuildMain(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "test build:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// put writes a file with exactly mode, and its directory with 0755, as a
// careful executor does: without the chmod the umask would leak in.
func put(p string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		return err
	}
	return os.Chmod(p, mode)
}

func writeStep(id string, outputs []string, fn func(x *graph.Exec) error, from ...*graph.Step) *graph.Step {
	s := &graph.Step{ID: id, Spec: graph.Spec{Kind: "go/test-verify", Version: "1", Params: map[string]any{"id": id}}, Outputs: outputs,
		Exec: graph.ExecFunc(func(ctx context.Context, x *graph.Exec) error { return fn(x) })}
	for _, f := range from {
		s.Inputs = append(s.Inputs, graph.Input{Name: f.ID, From: f})
	}
	return s
}

// testRecipe returns the roots for a target: "good" is deterministic;
// "date", "rand" and "umask" each inject one kind of nondeterminism into a
// step with a deterministic downstream step.
func testRecipe(target string) ([]graph.Artifact, error) {
	src := writeStep("src", []string{"src.txt"}, func(x *graph.Exec) error {
		return put(filepath.Join(x.OutDir, "src.txt"), []byte("hello\n"), 0o644)
	})
	upper := func(id string, in *graph.Step, name string) *graph.Step {
		return writeStep(id, []string{"out.txt"}, func(x *graph.Exec) error {
			var all []string
			err := filepath.WalkDir(x.Inputs[in.ID], func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					all = append(all, filepath.Base(p))
				}
				return err
			})
			if err != nil {
				return err
			}
			return put(filepath.Join(x.OutDir, "out.txt"), []byte(strings.ToUpper(strings.Join(all, ","))+"\n"), 0o644)
		}, in)
	}
	var bad *graph.Step
	switch target {
	case "good":
		g := upper("good", src, "src.txt")
		return []graph.Artifact{{Step: g, Output: "out.txt", As: "good.txt"}}, nil
	case "date":
		bad = writeStep("stamp", []string{"stamp"}, func(x *graph.Exec) error {
			return put(filepath.Join(x.OutDir, "stamp", "date.txt"), []byte("built "+time.Now().Format(time.RFC3339Nano)+"\n"), 0o644)
		}, src)
	case "rand":
		bad = writeStep("tmpname", []string{"files"}, func(x *graph.Exec) error {
			var b [4]byte
			rand.Read(b[:])
			return put(filepath.Join(x.OutDir, "files", "tmp-"+hex.EncodeToString(b[:])), []byte("x"), 0o644)
		}, src)
	case "umask":
		bad = writeStep("perms", []string{"perms"}, func(x *graph.Exec) error {
			if err := put(filepath.Join(x.OutDir, "perms", "README"), []byte("r\n"), 0o644); err != nil {
				return err
			}
			// Created without an explicit chmod: the mode follows the umask.
			f, err := os.OpenFile(filepath.Join(x.OutDir, "perms", "config"), os.O_CREATE|os.O_WRONLY, 0o666)
			if err != nil {
				return err
			}
			f.WriteString("key=value\n")
			return f.Close()
		}, src)
	default:
		return nil, fmt.Errorf("unknown target %q", target)
	}
	down := upper("downstream", bad, "")
	return []graph.Artifact{{Step: down, Output: "out.txt", As: "downstream.txt"}}, nil
}

// testBuildMain parses the build command line verify uses:
// --cache-dir D --out O -j N --progress P TARGET...
func testBuildMain(args []string) error {
	var cacheDir, outDir string
	jobs := 1
	var targets []string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--cache-dir":
			i++
			cacheDir = args[i]
		case "--out":
			i++
			outDir = args[i]
		case "-j":
			i++
			jobs, _ = strconv.Atoi(args[i])
		case "--progress", "-C", "--recipe", "--kata-src":
			i++
		default:
			targets = append(targets, args[i])
		}
	}
	if filepath.Base(outDir) == "out-perturbed" {
		// Prove the perturbations reach the second build.
		if h := os.Getenv("UVMBUILD_TEST_EXPECT_HOST"); h != "" {
			if got, _ := os.Hostname(); got != h {
				return fmt.Errorf("hostname %q, want %q", got, h)
			}
		}
		if m := syscall.Umask(0o077); m != 0o077 {
			return fmt.Errorf("umask %03o, want 077", m)
		}
		if tz := os.Getenv("TZ"); tz != "Pacific/Kiritimati" {
			return fmt.Errorf("TZ %q", tz)
		}
		if jobs != 1 {
			return fmt.Errorf("-j %d, want 1", jobs)
		}
	}
	ctx := context.Background()
	var arts []graph.Artifact
	for _, t := range targets {
		a, err := testRecipe(t)
		if err != nil {
			return err
		}
		arts = append(arts, a...)
	}
	var roots []*graph.Step
	for _, a := range arts {
		roots = append(roots, a.Step)
	}
	st, err := cache.Open(ctx, cacheDir)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := graph.Build(ctx, roots, graph.Options{Store: st, WorkDir: cacheDir, Jobs: jobs})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	recs, err := res.Materialize(ctx, outDir, arts)
	if err != nil {
		return err
	}
	return record.Write(filepath.Join(outDir, record.FileName), &record.Build{
		SchemaVersion: record.SchemaVersion, Recipe: "verify-test", Targets: targets, Vars: map[string]string{},
		Actions: res.Actions, Artifacts: recs})
}

func runVerifyTest(t *testing.T, target string, extra ...string) (string, string, int) {
	t.Helper()
	var out, errOut strings.Builder
	o := verifyOptions{exe: os.Args[0], cacheDir: t.TempDir(), maxItems: 50, env: []string{testBuildEnv + "=1"}, projectDir: t.TempDir(), copyProject: true, tmpDir: t.TempDir()}
	if os.Geteuid() == 0 {
		o.env = append(o.env, "UVMBUILD_TEST_EXPECT_HOST=uvmbuild-verify-2")
	}
	err := runVerify(t.Context(), &out, &errOut, []string{target}, extra, o)
	return out.String(), errOut.String(), exitCode(badInput(err))
}

func TestVerifyDeterministic(t *testing.T) {
	out, errOut, code := runVerifyTest(t, "good")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"reproducible", "umask      applied", "TZ         applied"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestVerifyFindsNondeterminism(t *testing.T) {
	for _, tc := range []struct{ target, step, entry, detail string }{
		{"date", "stamp", "stamp/date.txt", "-built "},
		{"rand", "tmpname", "files/tmp-", "+ (none)"},
		{"umask", "perms", "perms/config", "0600"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			out, errOut, code := runVerifyTest(t, tc.target)
			if code != ExitDiffers {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitDiffers, out, errOut)
			}
			if !strings.Contains(out, "FIRST DIVERGING ACTION "+tc.step+" ") {
				t.Errorf("first diverging action is not %s:\n%s", tc.step, out)
			}
			if !strings.Contains(out, "action "+tc.step+" output "+tc.entry) {
				t.Errorf("differing entry %s not named:\n%s", tc.entry, out)
			}
			// The structured diff of the files (fetched from both caches)
			// or the entry metadata shows the cause.
			if !strings.Contains(out, tc.detail) {
				t.Errorf("output lacks %q:\n%s", tc.detail, out)
			}
			if strings.Contains(out, "FIRST DIVERGING ACTION downstream") {
				t.Errorf("downstream step reported first:\n%s", out)
			}
			t.Log(out)
		})
	}
}

func TestVerifyBadInput(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, record.FileName), []byte("{not json"), 0o644)
	var out, errOut strings.Builder
	err := runVerify(t.Context(), &out, &errOut, []string{"good"}, nil, verifyOptions{exe: os.Args[0], against: dir, env: []string{testBuildEnv + "=1"}, tmpDir: t.TempDir()})
	if exitCode(badInput(err)) != ExitFailed {
		t.Fatalf("unreadable record: %v", err)
	}
	// A record of other targets is not comparable: exit 1, not 3.
	a := fakeOut(t, t.TempDir(), ld1, "x")
	err = runVerify(t.Context(), &out, &errOut, []string{"good"}, nil, verifyOptions{exe: os.Args[0], against: a, env: []string{testBuildEnv + "=1"}, tmpDir: t.TempDir()})
	if exitCode(badInput(err)) != ExitFailed || !strings.Contains(err.Error(), "not comparable") {
		t.Fatalf("different targets: %v", err)
	}
}

// TestVerifySample runs verify on the sample recipe through the real build
// command: both builds must match under every perturbation.
func TestVerifySample(t *testing.T) {
	var out, errOut strings.Builder
	o := verifyOptions{exe: os.Args[0], cacheDir: t.TempDir(), maxItems: 50, env: []string{testMainEnv + "=1"},
		projectDir: t.TempDir(), copyProject: true, tmpDir: t.TempDir(), recipe: "sample"}
	err := runVerify(t.Context(), &out, &errOut, []string{"all", "COUNT=4", "STYLE=shout"}, nil, o)
	if err != nil {
		t.Fatalf("verify sample: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "compared 9 actions") || !strings.Contains(out.String(), "reproducible") {
		t.Errorf("output:\n%s", out.String())
	}
	// A different variable in --against is not comparable: exit 1.
	first := filepath.Join(t.TempDir(), "out")
	if code := Main(t.Context(), []string{"--recipe", "sample", "--cache-dir", o.cacheDir, "--out", first, "--progress", "plain", "all", "COUNT=2"}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("build: %d %s", code, errOut.String())
	}
	o.against = first
	err = runVerify(t.Context(), &out, &errOut, []string{"all", "COUNT=3"}, nil, o)
	if exitCode(badInput(err)) != ExitFailed || !strings.Contains(err.Error(), "COUNT") {
		t.Errorf("against other vars: %v", err)
	}
}

func TestVerifyJSONAndBuildFailure(t *testing.T) {
	var out, errOut strings.Builder
	o := verifyOptions{exe: os.Args[0], cacheDir: t.TempDir(), maxItems: 50, env: []string{testBuildEnv + "=1"},
		projectDir: t.TempDir(), tmpDir: t.TempDir(), json: true}
	err := runVerify(t.Context(), &out, &errOut, []string{"date"}, nil, o)
	if exitCode(err) != ExitDiffers {
		t.Fatalf("exit %d: %v", exitCode(err), err)
	}
	var res struct {
		Reproducible bool
		First        string `json:"firstDivergingAction"`
		SameInputs   bool
		Kept         string `json:"keptIn"`
	}
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out.String())
	}
	if res.Reproducible || res.First != "stamp" || !res.SameInputs || res.Kept == "" {
		t.Errorf("result %+v", res)
	}
	// A failing build is exit 1, not "differs".
	out.Reset()
	err = runVerify(t.Context(), &out, &errOut, []string{"no-such-target"}, nil, o)
	if exitCode(badInput(err)) != ExitFailed || !strings.Contains(err.Error(), "build 1 failed") {
		t.Errorf("failing build: %v", err)
	}
}
