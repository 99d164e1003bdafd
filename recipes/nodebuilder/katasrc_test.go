package nodebuilder

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/uvmbuild/uvmbuild/policy"
)

// TestKataSrcMakefiles builds testdata/kata-src on the host with the flags
// the recipe passes (the demo runs the same in the builder container): the
// runtime bakes the flags into its configuration, the agent rejects a libc
// the node-builder never uses, and the agent stand-in logs the policy it
// loads with its SHA-256.
func TestKataSrcMakefiles(t *testing.T) {
	for _, tool := range []string{"make", "cc", "cp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: the demo builds these sources in its builder image instead", tool)
		}
	}
	src := filepath.Join(t.TempDir(), "kata")
	if out, err := exec.Command("cp", "-a", filepath.Join(repoRoot(t), "testdata", "kata-src"), src).CombinedOutput(); err != nil {
		t.Fatalf("copy: %v: %s", err, out)
	}
	run := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("make", args...)
		cmd.Dir = filepath.Join(src, dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make %v in %s: %v\n%s", args, dir, err, out)
		}
		return string(out)
	}

	p := &planner{cfg: &config{profile: profile315, confpods: true, osVersion: "12"}, r: &Recipe{fl: demo{}}}
	p.names = namesFor(p.cfg)
	run("src/runtime", p.runtimeFlags()...)
	cfg, err := os.ReadFile(filepath.Join(src, "src/runtime/config/configuration-clh-snp.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`igvm = "/opt/confidential-containers/share/kata-containers/kata-containers-igvm.img"`,
		`path = "/usr/bin/cloud-hypervisor"`, "default_memory = 0", "static_sandbox_default_workload_mem = 512",
		"#enable_debug = true", "#debug_console_enabled = true", "sandbox_cgroup_only = true",
	} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("configuration-clh-snp.toml lacks %q:\n%s", want, cfg)
		}
	}

	dest := filepath.Join(t.TempDir(), "agent-install")
	flags := []string{"LIBC=gnu", "OPENSSL_NO_VENDOR=Y", "DESTDIR=" + dest, "BUILD_TYPE=release", "AGENT_POLICY=yes"}
	run("src/agent", flags...)
	run("src/agent", append([]string{"install"}, flags...)...)
	cmd := exec.Command("make", "LIBC=musl")
	cmd.Dir = filepath.Join(src, "src/agent")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "LIBC=gnu") {
		t.Errorf("LIBC=musl accepted: %v\n%s", err, out)
	}
	for _, f := range []string{"usr/lib/systemd/system/kata-agent.service", "usr/lib/systemd/system/kata-containers.target"} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Error(err)
		}
	}
	pol, _ := policy.Builtin("allow-set-policy.rego")
	pp := filepath.Join(t.TempDir(), "default-policy.rego")
	if err := os.WriteFile(pp, pol, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(dest, "usr/bin/kata-agent"), "--policy", pp).CombinedOutput()
	if err != nil {
		t.Fatalf("agent: %v\n%s", err, out)
	}
	sum := sha256.Sum256(pol)
	for _, want := range []string{
		"features: seccomp agent-policy init-data", "release build",
		"loaded policy " + pp + " (" + strconv.Itoa(len(pol)) + " bytes, sha256 " + hex.EncodeToString(sum[:]) + ")",
		"policy: default SetPolicyRequest := true",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("agent log lacks %q:\n%s", want, out)
		}
	}
}
