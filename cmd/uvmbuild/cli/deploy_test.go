package cli

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/uvmbuild/uvmbuild/builder/deploy"
	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/record"
	"github.com/uvmbuild/uvmbuild/recipes"
)

// fakeNodeBuilder is a recipe with the node-builder's build targets whose
// steps write small stand-ins of the real artifacts, under the names the
// deploy layout reads. It counts step runs.
type fakeNodeBuilder struct{ runs *atomic.Int32 }

func (fakeNodeBuilder) Name() string { return "fake" }
func (fakeNodeBuilder) Vars() []recipes.Var {
	return []recipes.Var{
		{Name: "BUILD_TYPE", Type: recipes.Enum, Enum: []string{"release", "debug"}, Default: "release"},
		{Name: "PROFILE", Type: recipes.Enum, Enum: []string{"release-3.15", "msft-main"}, Default: "release-3.15"},
	}
}
func (fakeNodeBuilder) Targets() []recipes.Target {
	return []recipes.Target{{Name: "package"}, {Name: "uvm"}, {Name: "package-confpods"}, {Name: "uvm-confpods"}}
}

func (r fakeNodeBuilder) Plan(ctx context.Context, env recipes.Env, targets []string, v recipes.Values) (*recipes.Plan, error) {
	files := func(id string, names ...string) *graph.Step {
		return &graph.Step{
			ID:      id,
			Spec:    graph.Spec{Kind: "test/fake-artifacts", Version: "1", Params: map[string]any{"names": names, "build": v.Get("BUILD_TYPE")}},
			Outputs: names,
			Exec: graph.ExecFunc(func(ctx context.Context, x *graph.Exec) error {
				r.runs.Add(1)
				for _, n := range names {
					p := filepath.Join(x.OutDir, filepath.FromSlash(n))
					content := []byte(n + " " + v.Get("BUILD_TYPE") + "\n")
					if n == deploy.SourceAgentInstall {
						for _, f := range []string{"usr/bin/kata-agent", "usr/lib/systemd/system/kata-agent.service", "usr/lib/systemd/system/kata-containers.target"} {
							fp := filepath.Join(p, filepath.FromSlash(f))
							if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
								return err
							}
							if err := os.WriteFile(fp, []byte(f+"\n"), 0o644); err != nil {
								return err
							}
						}
						continue
					}
					if err := os.WriteFile(p, content, 0o644); err != nil {
						return err
					}
				}
				return nil
			}),
		}
	}
	plan := &recipes.Plan{}
	add := func(s *graph.Step) {
		for _, o := range s.Outputs {
			plan.Artifacts = append(plan.Artifacts, graph.Artifact{Step: s, Output: o, As: o})
		}
	}
	for _, t := range targets {
		switch t {
		case "package":
			add(files("package/runtime", deploy.SourceShim, deploy.SourceRuntime, deploy.SourceMonitor, deploy.SourceCollectData, deploy.SourceConfig))
			add(files("package/agent", deploy.SourceAgentInstall))
		case "package-confpods":
			add(files("package-confpods/runtime", deploy.SourceShim, deploy.SourceRuntime, deploy.SourceMonitor, deploy.SourceCollectData,
				deploy.SourceSNPConfig, deploy.SourceSNPDebugConfig, deploy.SourceUtarfs, deploy.SourceOverlay, deploy.SourceTardev, deploy.SourceTardevUnit))
			add(files("package-confpods/agent", deploy.SourceAgentInstall))
		case "uvm":
			add(files("uvm/image", deploy.SourceImage))
		case "uvm-confpods":
			add(files("uvm-confpods/image", deploy.SourceImage, deploy.SourceIGVM, deploy.SourceIGVMDebug, deploy.SourceMeasurement, deploy.SourceMeasurementDebug))
		}
	}
	return plan, nil
}

func runDeployCLI(t *testing.T, o *Options, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd(o)
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.ExecuteContext(t.Context())
	if err != nil {
		errb.WriteString("uvmbuild: " + err.Error() + "\n")
	}
	return out.String(), errb.String(), exitCode(err)
}

func deployTestOptions(t *testing.T, runs *atomic.Int32) *Options {
	t.Helper()
	return &Options{Recipes: []recipes.Recipe{fakeNodeBuilder{runs}}, Environ: []string{"START_SERVICES=no"}}
}

func TestDeployCmd(t *testing.T) {
	var runs atomic.Int32
	o := deployTestOptions(t, &runs)
	dir := t.TempDir()
	stage := filepath.Join(dir, "stage")
	if err := os.Mkdir(stage, 0o755); err != nil {
		t.Fatal(err)
	}
	common := []string{"--recipe", "fake", "--out", filepath.Join(dir, "out"), "--cache-dir", filepath.Join(dir, "cache"), "--progress", "plain", "--root", stage}

	out, errOut, code := runDeployCLI(t, o, append([]string{"deploy", "deploy-confpods", "BUILD_TYPE=debug"}, common...)...)
	if code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, errOut)
	}
	if runs.Load() == 0 {
		t.Error("deploy did not build its prerequisites")
	}
	cfg := filepath.Join(stage, "opt/confidential-containers/share/defaults/kata-containers/configuration-clh-snp.toml")
	if got, _ := os.ReadFile(cfg); string(got) != deploy.SourceSNPDebugConfig+" debug\n" {
		t.Errorf("BUILD_TYPE=debug did not install the debug shim configuration: %q", got)
	}
	if !strings.Contains(out, "installed\t/usr/local/bin/containerd-shim-kata-cc-v2\n") {
		t.Errorf("stdout:\n%s", out)
	}
	if !strings.Contains(errOut, "not running systemctl") && strings.Contains(errOut, "systemctl") {
		t.Errorf("stderr mentions systemctl oddly:\n%s", errOut)
	}
	img := filepath.Join(stage, "opt/confidential-containers/share/kata-containers/kata-containers-igvm.img")
	if st, err := os.Stat(img); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("IGVM not staged under --root: %v", err)
	}

	// Again: the build is cached, nothing is reinstalled.
	before := runs.Load()
	out, errOut, code = runDeployCLI(t, o, append([]string{"deploy", "deploy-confpods", "BUILD_TYPE=debug"}, common...)...)
	if code != 0 {
		t.Fatalf("second deploy: exit %d\n%s", code, errOut)
	}
	if runs.Load() != before {
		t.Error("second deploy re-ran build steps")
	}
	if strings.Contains(out, "installed\t") || !strings.Contains(out, "unchanged\t") {
		t.Errorf("second deploy reinstalled:\n%s", out)
	}

	// An output changed after the build is refused with --no-build.
	shim := filepath.Join(dir, "out", deploy.SourceShim)
	os.Chmod(shim, 0o644)
	if err := os.WriteFile(shim, []byte("tampered\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = runDeployCLI(t, o, append([]string{"deploy", "deploy-confpods-package", "--no-build"}, common...)...)
	if code != ExitFailed || !strings.Contains(errOut, "rebuild") {
		t.Errorf("stale output: exit %d\n%s", code, errOut)
	}

	// The make-style spelling reaches the same command.
	out, errOut, code = runDeployCLI(t, o, append([]string{"deploy-confpods-uvm", "BUILD_TYPE=debug"}, common...)...)
	if code != 0 || !strings.Contains(out, "unchanged\t/opt/confidential-containers/share/kata-containers/kata-containers.img\n") {
		t.Errorf("uvmbuild deploy-confpods-uvm: exit %d\n%s%s", code, out, errOut)
	}

	// Undeploy the UVM only, then everything.
	out, errOut, code = runDeployCLI(t, o, "undeploy", "--root", stage, "deploy-confpods-uvm")
	if code != 0 || !strings.Contains(out, "removed\t/opt/confidential-containers/share/kata-containers/kata-containers.img\n") {
		t.Fatalf("undeploy uvm: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(stage, "usr/local/bin/containerd-shim-kata-cc-v2")); err != nil {
		t.Errorf("undeploy of the UVM removed the package: %v", err)
	}
	_, errOut, code = runDeployCLI(t, o, "undeploy", "--root", stage)
	if code != 0 {
		t.Fatalf("undeploy: exit %d\n%s", code, errOut)
	}
	var left []string
	filepath.WalkDir(stage, func(p string, d fs.DirEntry, err error) error {
		if p != stage {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Errorf("undeploy left %v", left)
	}
}

func TestDeployCmdRefuses(t *testing.T) {
	var runs atomic.Int32
	o := deployTestOptions(t, &runs)
	dir := t.TempDir()
	common := []string{"--recipe", "fake", "--out", filepath.Join(dir, "out"), "--cache-dir", filepath.Join(dir, "cache")}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"deploy", "deploy-pakage"}, ExitUsage, "not a deploy target"},
		{[]string{"deploy", "deploy", "deploy-uvm"}, ExitUsage, "one deploy target"},
		{[]string{"deploy", "deploy-confpods", "START_SERVICES=perhaps", "--root", dir}, ExitFailed, "START_SERVICES"},
		{[]string{"undeploy", "FOO=bar", "--root", dir}, ExitUsage, "only PREFIX"},
	} {
		args := tc.args
		if args[0] == "deploy" {
			args = append(args, common...)
		}
		_, errOut, code := runDeployCLI(t, o, args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", tc.args, code, tc.code, tc.want, errOut)
		}
	}
	if runs.Load() != 0 {
		t.Error("a refused deploy built something")
	}
	if os.Geteuid() != 0 {
		_, errOut, code := runDeployCLI(t, o, append([]string{"deploy", "deploy-uvm"}, common...)...)
		if code != ExitFailed || !strings.Contains(errOut, "needs root") {
			t.Errorf("live deploy as non-root: exit %d\n%s", code, errOut)
		}
	} else {
		t.Log("running as root: the non-root live refusal is tested in builder/deploy")
	}
}

func TestDeployArgsPrecedence(t *testing.T) {
	env := []string{"SHIM_REDEPLOY_CONFIG=no", "SHIM_USE_DEBUG_CONFIG=yes", "START_SERVICES=no", "UVM_PATH=/env/uvm", "PREFIX=/env"}
	target, vars, build, err := deployArgs([]string{"deploy-confpods-uvm", "UVM_PATH=/cmd/uvm", "BUILD_TYPE=debug", "IGVM_SVN=3", "SHIM_USE_DEBUG_CONFIG=no"}, env,
		func(name string) bool { return name == "SHIM_USE_DEBUG_CONFIG" })
	if err != nil {
		t.Fatal(err)
	}
	if target != "deploy-confpods-uvm" {
		t.Errorf("target %q", target)
	}
	// The Makefile sets these two itself: the environment cannot override
	// them (make precedence), the command line can.
	if _, ok := vars["SHIM_REDEPLOY_CONFIG"]; ok {
		t.Error("SHIM_REDEPLOY_CONFIG taken from the environment")
	}
	if vars["SHIM_USE_DEBUG_CONFIG"] != "no" {
		t.Error("SHIM_USE_DEBUG_CONFIG from the command line not taken")
	}
	if vars["START_SERVICES"] != "no" || vars["PREFIX"] != "/env" || vars["UVM_PATH"] != "/cmd/uvm" || vars["BUILD_TYPE"] != "debug" {
		t.Errorf("vars = %v", vars)
	}
	// A deploy variable the recipe declares reaches the build too.
	if strings.Join(build, " ") != "BUILD_TYPE=debug IGVM_SVN=3 SHIM_USE_DEBUG_CONFIG=no" {
		t.Errorf("build assigns = %v", build)
	}
	_, vars, _, _ = deployArgs([]string{"SHIM_REDEPLOY_CONFIG=no"}, nil, nil)
	if vars["SHIM_REDEPLOY_CONFIG"] != "no" {
		t.Error("command-line SHIM_REDEPLOY_CONFIG ignored")
	}
}

// TestDeployDemoOut deploys a real node-builder build (the repository's
// out/, or $UVMBUILD_DEMO_OUT) into a staging root, re-deploys it (no
// change) and undeploys it (empty root).
func TestDeployDemoOut(t *testing.T) {
	out := os.Getenv("UVMBUILD_DEMO_OUT")
	if out == "" {
		out = filepath.Join("..", "..", "..", "out")
	}
	b, err := record.Read(filepath.Join(out, record.FileName))
	if err != nil {
		t.Skipf("no demo build to deploy (%v); run the demo build or set UVMBUILD_DEMO_OUT", err)
	}
	var targets []string
	for _, bt := range b.Targets {
		switch bt {
		case "package", "uvm":
			targets = append(targets, "deploy-"+bt)
		case "package-confpods", "uvm-confpods":
			targets = append(targets, "deploy-confpods-"+strings.TrimSuffix(bt, "-confpods"))
		case "all":
			targets = append(targets, "deploy")
		case "all-confpods":
			targets = append(targets, "deploy-confpods")
		}
	}
	if len(targets) == 0 {
		t.Skipf("%s records targets %v, none deployable", out, b.Targets)
	}
	o := &Options{Recipes: composeRecipes(), Environ: nil}
	for _, target := range targets {
		t.Run(target, func(t *testing.T) {
			stage := t.TempDir()
			args := []string{"deploy", target, "--no-build", "--out", out, "--root", stage}
			stdout, errOut, code := runDeployCLI(t, o, args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, errOut)
			}
			if strings.Count(stdout, "installed\t") == 0 {
				t.Fatalf("nothing installed:\n%s", stdout)
			}
			stdout, errOut, code = runDeployCLI(t, o, args...)
			if code != 0 || strings.Contains(stdout, "installed\t") {
				t.Errorf("re-deploy: exit %d\n%s%s", code, stdout, errOut)
			}
			if _, errOut, code = runDeployCLI(t, o, "undeploy", "--root", stage); code != 0 {
				t.Fatalf("undeploy: exit %d\n%s", code, errOut)
			}
			if ents, _ := os.ReadDir(stage); len(ents) != 0 {
				t.Errorf("undeploy left %v", ents)
			}
		})
	}
}
