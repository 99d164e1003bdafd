package deploy

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// Targets are the node-builder's deploy targets, in Makefile order.
func Targets() []string {
	return []string{
		"deploy", "deploy-package", "deploy-package-tools", "deploy-uvm",
		"deploy-confpods", "deploy-confpods-package", "deploy-confpods-package-tools", "deploy-confpods-uvm",
	}
}

// TargetParts maps a deploy target to its variant and parts. `deploy` and
// `deploy-confpods` are package + uvm (not package-tools), as in the
// Makefile.
func TargetParts(target string) (Variant, []Part, error) {
	rest, ok := strings.CutPrefix(target, "deploy")
	if !ok {
		return "", nil, fmt.Errorf("%q is not a deploy target (want one of %s)", target, strings.Join(Targets(), ", "))
	}
	v := Kata
	if r, ok := strings.CutPrefix(rest, "-confpods"); ok {
		v, rest = Confpods, r
	}
	switch rest {
	case "":
		return v, []Part{Package, UVM}, nil
	case "-package":
		return v, []Part{Package}, nil
	case "-package-tools":
		return v, []Part{PackageTools}, nil
	case "-uvm":
		return v, []Part{UVM}, nil
	}
	return "", nil, fmt.Errorf("%q is not a deploy target (want one of %s)", target, strings.Join(Targets(), ", "))
}

// BuildTargets returns the build targets whose outputs a deploy target
// installs; a recipe must run (or find cached) these before deploying.
// package-tools installs the agent built by the package target.
func BuildTargets(target string) ([]string, error) {
	v, parts, err := TargetParts(target)
	if err != nil {
		return nil, err
	}
	suffix := ""
	if v == Confpods {
		suffix = "-confpods"
	}
	var out []string
	for _, p := range parts {
		t := "uvm" + suffix
		if p == Package || p == PackageTools {
			t = "package" + suffix
		}
		if len(out) == 0 || out[len(out)-1] != t {
			out = append(out, t)
		}
	}
	return out, nil
}

// Variable names ParamsFromVars reads (make-style, spec §2.1).
const (
	VarPrefix             = "PREFIX"
	VarUVMPath            = "UVM_PATH"
	VarShimRedeployConfig = "SHIM_REDEPLOY_CONFIG"
	VarShimUseDebugConfig = "SHIM_USE_DEBUG_CONFIG"
	VarStartServices      = "START_SERVICES"
	VarBuildType          = "BUILD_TYPE"
	VarProfile            = "PROFILE"
)

// ParamsFromVars builds Params for a deploy target from resolved make-style
// variables (yes/no booleans). Unset variables take the node-builder's
// defaults: SHIM_REDEPLOY_CONFIG=yes, START_SERVICES=yes,
// SHIM_USE_DEBUG_CONFIG=yes only when BUILD_TYPE=debug, PROFILE
// release-3.15 (the node-builder recipe's default). outDir holds the build
// outputs; kataSrc is only needed for package-tools.
func ParamsFromVars(target string, vars map[string]string, outDir, kataSrc string) (Params, error) {
	v, parts, err := TargetParts(target)
	if err != nil {
		return Params{}, err
	}
	get := func(name, def string) string {
		if s, ok := vars[name]; ok && s != "" {
			return s
		}
		return def
	}
	boolVar := func(name, def string) (bool, error) {
		switch s := strings.ToLower(get(name, def)); s {
		case "yes", "true", "1", "y", "on":
			return true, nil
		case "no", "false", "0", "n", "off":
			return false, nil
		default:
			return false, fmt.Errorf("%s: invalid value %q: want yes or no", name, s)
		}
	}
	debugDefault := "no"
	if get(VarBuildType, "release") == "debug" {
		debugDefault = "yes"
	}
	p := Params{
		Variant: v, Parts: parts, Profile: get(VarProfile, ProfileRelease3_15),
		Prefix: get(VarPrefix, ""), UVMPath: get(VarUVMPath, ""),
		OutDir: outDir, KataSrc: kataSrc,
	}
	if p.RedeployShimConfig, err = boolVar(VarShimRedeployConfig, "yes"); err != nil {
		return Params{}, err
	}
	if p.UseDebugShimConfig, err = boolVar(VarShimUseDebugConfig, debugDefault); err != nil {
		return Params{}, err
	}
	if p.StartServices, err = boolVar(VarStartServices, "yes"); err != nil {
		return Params{}, err
	}
	return p, nil
}

// ServiceCommands returns the commands package_install.sh runs after a
// confpods package install with START_SERVICES=yes (none otherwise).
func ServiceCommands(p Params) [][]string {
	if p.Variant != Confpods || !p.StartServices {
		return nil
	}
	for _, part := range p.Parts {
		if part == Package {
			return [][]string{
				{"systemctl", "enable", "tardev-snapshotter"},
				{"systemctl", "daemon-reload"},
				{"systemctl", "restart", "tardev-snapshotter"},
			}
		}
	}
	return nil
}

// RunServiceCommands runs cmds in order on the live host, stopping at the
// first failure; their output goes to w.
func RunServiceCommands(ctx context.Context, cmds [][]string, w io.Writer) error {
	for _, c := range cmds {
		cmd := exec.CommandContext(ctx, c[0], c[1:]...)
		cmd.Stdout, cmd.Stderr = w, w
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(c, " "), err)
		}
	}
	return nil
}
