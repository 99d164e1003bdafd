package nodebuilder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/actions"
	"github.com/uvmbuild/uvmbuild/builder/cache"
	"github.com/uvmbuild/uvmbuild/builder/ext4"
	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/lockfile"
	"github.com/uvmbuild/uvmbuild/policy"
	"github.com/uvmbuild/uvmbuild/recipes"
)

var update = flag.Bool("update", false, "rewrite the golden plan files")

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// plan resolves args (targets and VAR=value) like the CLI and plans.
func plan(t *testing.T, r *Recipe, env recipes.Env, args ...string) (*recipes.Plan, error) {
	t.Helper()
	targets, assigns := recipes.SplitArgs(args)
	vals, err := recipes.Resolve(r, assigns, nil)
	if err != nil {
		return nil, err
	}
	return r.Plan(context.Background(), env, targets, vals)
}

// needPlanTools skips when the tools a confpods plan keys are missing: the
// image step's Spec names the mkfs.ext4 version, the IGVM steps iasl's.
func needPlanTools(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("iasl"); err != nil {
		t.Skip("iasl not installed (acpica-tools): the IGVM steps key its version")
	}
	if _, err := ext4.CheckVersion(context.Background(), ""); err != nil {
		t.Skipf("mkfs.ext4 unusable (%v): the image step keys its version", err)
	}
}

func demoEnv(t *testing.T) recipes.Env {
	return recipes.Env{ProjectDir: t.TempDir(), KataSrc: filepath.Join(repoRoot(t), "testdata", "kata-src")}
}

func mustNew(t *testing.T, flavour string) *Recipe {
	t.Helper()
	r, err := New(flavour, WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// azureEnv is a project with a lock pinning the builder image and a
// synthetic package index (names and digests made up here: the plan only
// shows them).
func azureEnv(t *testing.T) recipes.Env {
	t.Helper()
	dir := t.TempDir()
	lock := lockfile.Open(filepath.Join(dir, lockfile.Name))
	if err := lock.Set("azure-linux-builder", lockfile.Entry{Ref: defaultAzureBuilder, Digest: fakeDigest("builder")}); err != nil {
		t.Fatal(err)
	}
	var idx strings.Builder
	idx.WriteString("# synthetic package index for the plan goldens\n")
	add := func(group, file string) {
		fmt.Fprintf(&idx, "%s %s %s https://packages.example/azurelinux/3.0/%s\n", group, file, fakeDigest(file), file)
	}
	add("kata-packages-uvm", "kata-packages-uvm-1.0.0-8.azl3.x86_64.rpm")
	add("kata-packages-uvm", "glibc-2.38-9.azl3.x86_64.rpm")
	add("kata-packages-uvm", "chrony-4.5-3.azl3.x86_64.rpm")
	add("systemd", "systemd-255-20.azl3.x86_64.rpm")
	add("systemd", "glibc-2.38-9.azl3.x86_64.rpm")
	add("libseccomp", "libseccomp-2.5.4-1.azl3.x86_64.rpm")
	add("kata-packages-uvm-coco", "kata-packages-uvm-coco-1.0.0-8.azl3.x86_64.rpm")
	add("kata-packages-uvm-coco", "systemd-udev-255-20.azl3.x86_64.rpm")
	add("kernel-uvm", "kernel-uvm.rpm")
	add("kernel-uvm", "kernel-uvm-devel.rpm")
	add("cargo-vendor", "cargo-vendor.tar.gz")
	for _, v := range []string{"3.0", "2.0"} {
		if err := os.WriteFile(filepath.Join(dir, "azurelinux-"+v+".pkgs"), []byte(idx.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := filepath.Join(repoRoot(t), "testdata", "kata-src")
	return recipes.Env{ProjectDir: dir, KataSrc: src}
}

func fakeDigest(s string) digest.Digest {
	h := sha256.Sum256([]byte(s))
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h[:]))
}

// TestGoldenAzureLinux pins the exact commands, flags, paths and file names
// of the azure-linux flavour per profile and variant (it cannot run here).
func TestGoldenAzureLinux(t *testing.T) {
	needPlanTools(t)
	for _, profile := range []string{profile315, profileMain} {
		for _, target := range []string{"all", "all-confpods"} {
			for _, bt := range []string{"release", "debug"} {
				name := fmt.Sprintf("azure-linux-%s-%s-%s.plan", profile, target, bt)
				t.Run(name, func(t *testing.T) {
					env := azureEnv(t)
					p, err := plan(t, mustNew(t, AzureLinux), env, target, "PROFILE="+profile, "BUILD_TYPE="+bt)
					if err != nil {
						t.Fatal(err)
					}
					got := render(p, env.KataSrc)
					golden := filepath.Join(repoRoot(t), "testdata", "golden", name)
					if *update {
						if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
							t.Fatal(err)
						}
						if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
							t.Fatal(err)
						}
						return
					}
					want, err := os.ReadFile(golden)
					if err != nil {
						t.Fatalf("%v (run go test -update to create it)", err)
					}
					if got != string(want) {
						t.Errorf("plan differs from %s (go test -update rewrites it); got:\n%s", golden, got)
					}
				})
			}
		}
	}
}

// stepByID finds a step of the plan.
func stepByID(t *testing.T, p *recipes.Plan, id string) *graph.Step {
	t.Helper()
	for _, s := range allSteps(p) {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no step %s", id)
	return nil
}

func TestRuntimeAndAgentFlags(t *testing.T) {
	env := azureEnv(t)
	cases := []struct {
		args          []string
		runtimeWant   []string
		runtimeReject []string
		agentWant     string
	}{
		{[]string{"package", "PROFILE=release-3.15"},
			[]string{"PREFIX=/usr", "DEFSTATICRESOURCEMGMT_CLH=true", "KERNELPATH_CLH=/usr/share/cloud-hypervisor/vmlinux.bin", "DEFSANDBOXCGROUPONLY=true", "DEFVIRTIOFSDAEMON=/usr/libexec/virtiofsd"},
			[]string{"DEFDISABLEIMAGENVDIMM", "DEFSANDBOXWORKLOADMEMMIN", "CLHPATH"},
			"make LIBC=gnu OPENSSL_NO_VENDOR=Y DESTDIR=/out/agent-install BUILD_TYPE=release\n"},
		{[]string{"package-confpods", "PROFILE=msft-main"},
			[]string{"PREFIX=/opt/confidential-containers", "CLHPATH=/usr/bin/cloud-hypervisor", "DEFDISABLEIMAGENVDIMM=true", "DEFSANDBOXWORKLOADMEMMIN=192"},
			[]string{"KERNELPATH_CLH", "KERNELPARAMS"},
			"make LIBC=gnu OPENSSL_NO_VENDOR=Y DESTDIR=/out/agent-install BUILD_TYPE=release AGENT_POLICY=yes\n"},
		{[]string{"package", "PROFILE=msft-main", "OS_VERSION=2.0", "BUILD_TYPE=debug"},
			[]string{"DEFSANDBOXWORKLOADMEMMIN=128", `KERNELPARAMS="systemd.legacy_systemd_cgroup_controller=yes systemd.unified_cgroup_hierarchy=0"`, "DEFVIRTIOFSDAEMON=/usr/libexec/virtiofsd-rs"},
			[]string{"DEFSANDBOXCGROUPONLY"},
			"make LIBC=gnu OPENSSL_NO_VENDOR=Y DESTDIR=/out/agent-install BUILD_TYPE=debug INIT_DATA=no\n"},
	}
	for _, c := range cases {
		p, err := plan(t, mustNew(t, AzureLinux), env, c.args...)
		if err != nil {
			t.Fatal(err)
		}
		pkg := strings.TrimSuffix(c.args[0], "-confpods")
		if strings.HasSuffix(c.args[0], "-confpods") {
			pkg += "-confpods"
		}
		rt := stepByID(t, p, pkg+"/runtime").Spec.Params["script"].(string)
		for _, w := range c.runtimeWant {
			if !strings.Contains(rt, " "+w) {
				t.Errorf("%v: runtime make lacks %s:\n%s", c.args, w, rt)
			}
		}
		for _, w := range c.runtimeReject {
			if strings.Contains(rt, w) {
				t.Errorf("%v: runtime make has %s:\n%s", c.args, w, rt)
			}
		}
		ag := stepByID(t, p, pkg+"/agent").Spec.Params["script"].(string)
		if !strings.Contains(ag, c.agentWant) || !strings.Contains(ag, "make install "+strings.TrimPrefix(c.agentWant, "make ")) {
			t.Errorf("%v: agent script lacks %q / make install:\n%s", c.args, c.agentWant, ag)
		}
	}
}

// TestBuildTypeDebug: BUILD_TYPE=debug selects allow-all.rego, the debug
// agent and the debug shim configuration, as the Makefile does.
func TestBuildTypeDebug(t *testing.T) {
	needPlanTools(t)
	r := mustNew(t, Demo)
	p, err := plan(t, r, demoEnv(t), "all-confpods", "BUILD_TYPE=debug")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Record["policy.name"]; got != "allow-all.rego" {
		t.Errorf("policy = %s, want allow-all.rego", got)
	}
	allowAll, _ := policy.Builtin("allow-all.rego")
	if got, want := p.Record["policy.digest"], digest.FromBytes(allowAll).String(); got != want {
		t.Errorf("policy digest = %s, want %s", got, want)
	}
	if s := stepByID(t, p, "package-confpods/agent").Spec.Params["script"].(string); !strings.Contains(s, "BUILD_TYPE=debug AGENT_POLICY=yes") {
		t.Errorf("agent not built as debug:\n%s", s)
	}
	if got, want := p.Record["shim-config.install"], "configuration-clh-snp-debug.toml -> /opt/confidential-containers/share/defaults/kata-containers/configuration-clh-snp.toml"; got != want {
		t.Errorf("installed shim config = %q, want %q", got, want)
	}
	// Release: the main configuration and allow-set-policy.rego.
	p, err = plan(t, r, demoEnv(t), "all-confpods")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Record["policy.name"]; got != "allow-set-policy.rego" {
		t.Errorf("release policy = %s", got)
	}
	if got := p.Record["shim-config.install"]; !strings.HasPrefix(got, "configuration-clh-snp.toml ->") {
		t.Errorf("release installs %q", got)
	}
}

// fakeExec counts runs and writes, for every output, the step's key: so a
// downstream key changes exactly when an upstream key does.
type fakeExec struct {
	mu  sync.Mutex
	ran []string
}

func (f *fakeExec) Run(ctx context.Context, x *graph.Exec) error {
	f.mu.Lock()
	f.ran = append(f.ran, x.Step.ID)
	f.mu.Unlock()
	for _, o := range x.Step.Outputs {
		p := filepath.Join(x.OutDir, filepath.FromSlash(o))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(x.Step.ID+" "+x.Key.String()+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeExec) reset() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.ran
	f.ran = nil
	return r
}

// TestPolicySwapRebuildsOnlyPolicySteps builds release all-confpods with a
// counting fake executor, then swaps AGENT_POLICY_FILE=allow-all.rego:
// plan (graph.Explain) and the build must agree that only the policy file,
// rootfs, normalisation, image and the two IGVM steps run.
func TestPolicySwapRebuildsOnlyPolicySteps(t *testing.T) {
	needPlanTools(t)
	ctx := context.Background()
	store, err := cache.Open(ctx, filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	opts := graph.Options{Store: store, WorkDir: store.Dir(), Jobs: 2}
	r := mustNew(t, Demo)
	env := demoEnv(t)
	fake := &fakeExec{}
	build := func(args ...string) []string {
		p, err := plan(t, r, env, args...)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range allSteps(p) {
			s.Exec = fake
		}
		res, err := graph.Build(ctx, p.Steps(), opts)
		if err != nil {
			t.Fatal(err)
		}
		ran := fake.reset()
		// build.json's actions say the same: exactly these were not cached.
		var notCached []string
		for _, a := range res.Actions {
			if !a.Cached {
				notCached = append(notCached, a.ID)
			}
		}
		if strings.Join(sorted(notCached), " ") != strings.Join(sorted(ran), " ") {
			t.Errorf("build record: not cached %v, executor ran %v", sorted(notCached), sorted(ran))
		}
		return ran
	}
	first := build("all-confpods")
	if len(first) < 12 {
		t.Fatalf("first build ran %d steps: %v", len(first), first)
	}
	if again := build("all-confpods"); len(again) != 0 {
		t.Fatalf("warm rebuild ran %v", again)
	}
	p, err := plan(t, r, env, "all-confpods", "AGENT_POLICY_FILE=allow-all.rego")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range allSteps(p) {
		s.Exec = fake
	}
	planned, err := graph.Explain(ctx, p.Steps(), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"uvm-confpods/igvm", "uvm-confpods/igvm-debug", "uvm-confpods/image", "uvm-confpods/policy", "uvm-confpods/rootfs", "uvm-confpods/rootfs-tar"}
	var willRun []string
	for _, pa := range planned {
		if !pa.Cached {
			willRun = append(willRun, pa.ID)
		}
	}
	if got := sorted(willRun); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("plan says %v would run, want %v", got, want)
	}
	ran := build("all-confpods", "AGENT_POLICY_FILE=allow-all.rego")
	if got := sorted(ran); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("policy swap ran %v, want %v", got, want)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestBadInputsStopBeforeAnyStep: each bad input fails Plan (so no step
// runs) with a message naming the input.
func TestBadInputsStopBeforeAnyStep(t *testing.T) {
	needPlanTools(t)
	badDir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(badDir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	syntax := write("syntax.rego", "package agent_policy\n\ndefault CreateContainerRequest := \n")
	wrongPkg := write("wrongpkg.rego", "package agent\n\ndefault CreateContainerRequest := true\n")
	misspelt := write("misspelt.rego", "package agent_policy\n\ndefault SetPolicyRequest := true\ndefault CreateContainerReqest := true\n")
	noLayout := t.TempDir()
	cases := []struct {
		name    string
		env     recipes.Env
		args    []string
		wantErr []string
	}{
		{"syntax error", demoEnv(t), []string{"all-confpods", "AGENT_POLICY_FILE=" + syntax}, []string{"AGENT_POLICY_FILE", "syntax.rego:"}},
		{"wrong package", demoEnv(t), []string{"all-confpods", "AGENT_POLICY_FILE=" + wrongPkg}, []string{"wrongpkg.rego:1", "agent_policy"}},
		{"misspelt rule", demoEnv(t), []string{"all-confpods", "AGENT_POLICY_FILE=" + misspelt}, []string{"misspelt.rego:4", "CreateContainerReqest"}},
		{"missing policy", demoEnv(t), []string{"uvm-confpods", "AGENT_POLICY_FILE=nosuch.rego"}, []string{"AGENT_POLICY_FILE=nosuch.rego", "no such policy"}},
		{"missing policy path", demoEnv(t), []string{"uvm-confpods", "AGENT_POLICY_FILE=" + filepath.Join(badDir, "gone.rego")}, []string{"gone.rego", "no such file"}},
		{"bad kata source", recipes.Env{ProjectDir: t.TempDir(), KataSrc: noLayout}, []string{"all"}, []string{"kata source", "src/runtime/Makefile", "src/agent/Makefile", "tools/osbuilder"}},
		{"kata source not a dir", recipes.Env{ProjectDir: t.TempDir(), KataSrc: syntax}, []string{"package"}, []string{"not a directory"}},
		{"unknown profile", demoEnv(t), []string{"all", "PROFILE=msft-mian"}, []string{"PROFILE", "msft-mian", "release-3.15"}},
		{"unknown target", demoEnv(t), []string{"al-confpods"}, []string{"unknown target", "all-confpods"}},
		{"mixed variants", demoEnv(t), []string{"all", "uvm-confpods"}, []string{"mix"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := plan(t, mustNew(t, Demo), c.env, c.args...)
			if err == nil {
				t.Fatalf("no error; plan has %d artifacts", len(p.Artifacts))
			}
			for _, w := range c.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestMsftMainConfpodsNeedsSources: the msft-main tree has no confpods
// sources; the error says so instead of failing in a step.
func TestMsftMainConfpodsNeedsSources(t *testing.T) {
	needPlanTools(t)
	src := t.TempDir()
	for _, d := range []string{"src/runtime", "src/agent", "tools/osbuilder"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"src/runtime/Makefile", "src/agent/Makefile"} {
		if err := os.WriteFile(filepath.Join(src, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := plan(t, mustNew(t, Demo), recipes.Env{ProjectDir: t.TempDir(), KataSrc: src}, "all-confpods", "PROFILE=msft-main")
	if err == nil || !strings.Contains(err.Error(), "src/utarfs/Makefile") || !strings.Contains(err.Error(), "PROFILE=release-3.15") {
		t.Fatalf("error = %v", err)
	}
	if _, err := plan(t, mustNew(t, Demo), recipes.Env{ProjectDir: t.TempDir(), KataSrc: src}, "all", "PROFILE=msft-main"); err != nil {
		t.Fatalf("kata variant of a HEAD-shaped tree: %v", err)
	}
}

// TestLatentBugsFixed: uvm depends on the agent; the IGVM consumes the
// image's verity parameters; clean removes root_hash.txt.
func TestLatentBugsFixed(t *testing.T) {
	needPlanTools(t)
	p, err := plan(t, mustNew(t, Demo), demoEnv(t), "clean-confpods", "uvm-confpods")
	if err != nil {
		t.Fatal(err)
	}
	rootfs := stepByID(t, p, "uvm-confpods/rootfs")
	var agent bool
	for _, in := range rootfs.Inputs {
		if in.From != nil && in.From.ID == "package-confpods/agent" {
			agent = true
		}
	}
	if !agent {
		t.Error("uvm-confpods/rootfs does not depend on package-confpods/agent")
	}
	for _, id := range []string{"uvm-confpods/igvm", "uvm-confpods/igvm-debug"} {
		var img bool
		for _, in := range stepByID(t, p, id).Inputs {
			if in.From != nil && in.From.ID == "uvm-confpods/image" {
				img = true
			}
		}
		if !img {
			t.Errorf("%s does not consume the image step's verity parameters", id)
		}
	}
	if !strings.Contains(" "+strings.Join(p.Clean, " ")+" ", " root_hash.txt ") {
		t.Errorf("clean-confpods does not remove root_hash.txt: %v", p.Clean)
	}
}

// TestCmdlineBytes pins the measured kernel command line tails (spec §6.3).
func TestCmdlineBytes(t *testing.T) {
	if strings.Count(cmdlineMiddle, " \t") != 2 || !strings.HasPrefix(cmdlineMiddle, " \troot=/dev/dm-0 ") {
		t.Errorf("cmdline middle lost its space-TAB sequences: %q", cmdlineMiddle)
	}
	if !strings.Contains(cmdlineMiddle, "systemd.mask=systemd-networkd.service \tsystemd.mask=systemd-networkd.socket") {
		t.Errorf("second space-TAB misplaced: %q", cmdlineMiddle)
	}
}

// TestDemoLockPinsDefaults: the committed uvmbuild.lock pins every external
// input of the demo's default builds (all-confpods and all), so CI's cold
// build is checked against it instead of recording new entries.
func TestDemoLockPinsDefaults(t *testing.T) {
	needPlanTools(t)
	root := repoRoot(t)
	lock, err := lockfile.Read(filepath.Join(root, lockfile.Name))
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"all-confpods", "all"} {
		p, err := plan(t, mustNew(t, Demo), recipes.Env{ProjectDir: root, KataSrc: filepath.Join(root, "testdata", "kata-src")}, target)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range allSteps(p) {
			var name string
			switch e := s.Exec.(type) {
			case *actions.DebianImage:
				name = e.LockName
			case *actions.Fetch:
				name = e.LockName
			default:
				continue
			}
			if _, ok := lock.Entries[name]; !ok {
				t.Errorf("%s: step %s is not pinned: no entry %q in uvmbuild.lock (build the demo once and commit the lock)", target, s.ID, name)
			}
		}
	}
}
