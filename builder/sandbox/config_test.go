package sandbox_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/uvmbuild/uvmbuild/builder/sandbox"
)

func TestConfigIsHermetic(t *testing.T) {
	s := &sandbox.Spec{Rootfs: "/r", Args: []string{"make"}, Env: []string{"A=1"}, Hostname: "uvmbuild", Memory: 1 << 30, Pids: 100,
		Inputs: []sandbox.Mount{{Source: "/src", Dest: "/in/src"}}, Output: "/o"}
	c := sandbox.Config(s)
	if !c.Root.Readonly || c.Process.Terminal || !c.Process.NoNewPrivileges || *c.Process.User.Umask != 0o022 {
		t.Errorf("root/process: %+v %+v", c.Root, c.Process)
	}
	var ns []specs.LinuxNamespaceType
	for _, n := range c.Linux.Namespaces {
		ns = append(ns, n.Type)
	}
	for _, want := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.PIDNamespace, specs.MountNamespace, specs.UTSNamespace, specs.IPCNamespace} {
		if !slices.Contains(ns, want) {
			t.Errorf("namespace %s missing", want)
		}
	}
	if *c.Linux.Resources.Memory.Limit != 1<<30 || c.Linux.Resources.Pids.Limit == nil || *c.Linux.Resources.Pids.Limit != 100 {
		t.Error("limits not applied")
	}
	for _, m := range c.Mounts {
		switch m.Destination {
		case "/in/src":
			if !slices.Contains(m.Options, "ro") {
				t.Errorf("input mount not read-only: %v", m.Options)
			}
		case "/out":
			if m.Source != "/o" || !slices.Contains(m.Options, "rw") {
				t.Errorf("output mount: %+v", m)
			}
		}
	}
	if !slices.Contains(c.Linux.ReadonlyPaths, "/in") {
		t.Error("/in not made read-only")
	}
	if c.Linux.Seccomp != nil {
		t.Error("seccomp set: it would make the config depend on the host kernel")
	}
	// Deterministic: the same spec gives the same bytes.
	a, _ := json.Marshal(sandbox.Config(s))
	b, _ := json.Marshal(sandbox.Config(s))
	if string(a) != string(b) {
		t.Error("config not deterministic")
	}
	s.Network = true
	for _, n := range sandbox.Config(s).Linux.Namespaces {
		if n.Type == specs.NetworkNamespace {
			t.Error("Network: true still unshares the network")
		}
	}
}

func TestPidsLimit(t *testing.T) {
	f := newFixture(t)
	// Only builtins after the loop: a failed fork aborts the shell before
	// "reached".
	reached := func(pids int64) bool {
		s, log := f.spec(t, `i=0; while [ $i -lt 20 ]; do sleep 2 & i=$((i+1)); done; echo reached`)
		s.Pids = pids
		sandbox.Run(context.Background(), s)
		return strings.Contains(log.String(), "reached")
	}
	if !reached(100) {
		t.Fatal("20 processes refused under a limit of 100")
	}
	if reached(8) {
		t.Error("20 processes started under a pids limit of 8")
	}
}
