package nodebuilder

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/uvmbuild/uvmbuild/policy"
)

// kataSource is a validated kata-containers source tree.
type kataSource struct {
	dir     string
	version string // content of VERSION ("unknown" if absent, as osbuilder does)
}

// layout lists the paths the node-builder needs in a kata source tree.
var (
	layoutCommon   = []string{"src/runtime/Makefile", "src/agent/Makefile", "tools/osbuilder"}
	layoutConfpods = []string{
		"src/utarfs/Makefile", "src/overlay/Makefile",
		"src/tardev-snapshotter/Makefile", "src/tardev-snapshotter/tardev-snapshotter.service",
		"src/tarfs/Makefile",
	}
)

// openKataSource checks that dir has the kata-containers layout the chosen
// variant needs. The error names the tree, what is missing and what is
// expected, before any step runs.
func openKataSource(dir string, c *config) (*kataSource, error) {
	if dir == "" {
		return nil, errors.New("kata source: no tree given (use --kata-src DIR, or run inside a kata-containers checkout)")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("kata source %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("kata source %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("kata source %s: not a directory", dir)
	}
	need := layoutCommon
	if c.confpods {
		need = append(append([]string(nil), layoutCommon...), layoutConfpods...)
	}
	var missing []string
	for _, rel := range need {
		if _, err := os.Stat(filepath.Join(abs, filepath.FromSlash(rel))); err != nil {
			missing = append(missing, rel)
		}
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("kata source %s: not a kata-containers tree with the node-builder layout: missing %s",
			dir, strings.Join(missing, ", "))
		if c.confpods && len(missing) > 0 && c.main() {
			msg += fmt.Sprintf(" (the %s line has no confpods sources; use %s=%s)", profileMain, varProfile, profile315)
		}
		return nil, errors.New(msg)
	}
	ks := &kataSource{dir: abs, version: "unknown"}
	if b, err := os.ReadFile(filepath.Join(abs, "VERSION")); err == nil {
		ks.version = strings.TrimSpace(string(b))
		// It is written into osbuilder.yaml by a shell script.
		if ks.version == "" || strings.Trim(ks.version, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+~_-") != "" {
			return nil, fmt.Errorf("kata source %s: VERSION %q: want a version string (letters, digits, . + ~ _ -)", dir, ks.version)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("kata source %s: VERSION: %w", dir, err)
	}
	return ks, nil
}

// findKataCheckout returns the nearest directory at or above dir that looks
// like a kata-containers checkout, or "".
func findKataCheckout(dir string) string {
	for d := dir; ; {
		ok := true
		for _, rel := range layoutCommon {
			if _, err := os.Stat(filepath.Join(d, filepath.FromSlash(rel))); err != nil {
				ok = false
				break
			}
		}
		if ok {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return ""
		}
		d = parent
	}
}

// loadPolicy resolves AGENT_POLICY_FILE like uvm_build.sh (a name inside
// src/kata-opa/ of the kata source), falling back to the policies built into
// uvmbuild, or reads it as a path when it contains a slash. The policy is
// checked before any step runs.
func loadPolicy(value string, src *kataSource) (*policy.Policy, string, error) {
	if value == "" {
		return nil, "", fmt.Errorf("%s is empty: name a policy (%s) or a .rego file", varPolicyFile, strings.Join(policy.BuiltinNames(), ", "))
	}
	var (
		data   []byte
		origin string
	)
	if strings.ContainsRune(value, '/') {
		b, err := os.ReadFile(value)
		if err != nil {
			return nil, "", fmt.Errorf("%s=%s: %w", varPolicyFile, value, err)
		}
		data, origin = b, value
	} else if b, err := os.ReadFile(filepath.Join(src.dir, "src", "kata-opa", value)); err == nil {
		data, origin = b, filepath.Join(src.dir, "src", "kata-opa", value)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("%s=%s: %w", varPolicyFile, value, err)
	} else if b, ok := policy.Builtin(value); ok {
		data, origin = b, "built-in "+value
	} else {
		return nil, "", fmt.Errorf("%s=%s: no such policy: not in %s and not built in (%s)",
			varPolicyFile, value, filepath.Join(src.dir, "src", "kata-opa"), strings.Join(policy.BuiltinNames(), ", "))
	}
	pol, err := policy.Load(filepath.Base(value), data)
	if err != nil {
		return nil, "", fmt.Errorf("%s=%s (%s): %w", varPolicyFile, value, origin, err)
	}
	return pol, origin, nil
}
