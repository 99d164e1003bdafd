package cli

import (
	"context"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/uvmbuild/uvmbuild/builder/deploy"
	"github.com/uvmbuild/uvmbuild/builder/record"
	"github.com/uvmbuild/uvmbuild/recipes"
)

// deployOptions are the deploy and undeploy flags.
type deployOptions struct {
	Root    string
	NoBuild bool
}

// cmdlineOnly reports the install variables the node-builder Makefile sets
// itself (SHIM_REDEPLOY_CONFIG, SHIM_USE_DEBUG_CONFIG): by GNU make
// precedence only the command line overrides them, never the environment.
func cmdlineOnly(name string) bool {
	return name == deploy.VarShimRedeployConfig || name == deploy.VarShimUseDebugConfig
}

// isDeployVar reports the variables only the install scripts read; they are
// not passed to the recipe.
func isDeployVar(name string) bool {
	switch name {
	case deploy.VarPrefix, deploy.VarUVMPath, deploy.VarStartServices,
		deploy.VarShimRedeployConfig, deploy.VarShimUseDebugConfig:
		return true
	}
	return false
}

func newDeployCmd(o *Options) *cobra.Command {
	d := &deployOptions{}
	cmd := &cobra.Command{
		Use:   "deploy [DEPLOY-TARGET] [VAR=value...]",
		Short: "Build, then install the host package and the UVM (the node-builder's deploy targets)",
		Long: `Installs what the node-builder's deploy targets install: deploy (default),
deploy-package, deploy-package-tools, deploy-uvm and their -confpods forms
('uvmbuild deploy-confpods-uvm' is 'uvmbuild deploy deploy-confpods-uvm').
It first builds the targets whose outputs it installs (package[-confpods],
uvm[-confpods]; cached actions do not run again), then copies every output
atomically (written beside the destination and renamed, with its mode; no
backup files) and records what it installed in /var/lib/uvmbuild/deploy.json
under the root, so 'uvmbuild undeploy' removes exactly that and a second
deploy changes nothing.

  --root DIR   stage everything under DIR, the UVM too (packaging, tests);
               without it the live system is the target, which needs root.

Variables: PREFIX (prepended to package destinations; alone, it is a
staging directory for package targets, as in an RPM %install), UVM_PATH,
SHIM_REDEPLOY_CONFIG (yes), SHIM_USE_DEBUG_CONFIG (yes when BUILD_TYPE=debug),
START_SERVICES (yes: enable and restart tardev-snapshotter after a confpods
package deploy on a live host; only listed under --root). Other VAR=value are
passed to the build. The containerd fragment and the RuntimeClass manifest
are installed under /usr/share/uvmbuild/host/.`,
		// The other deploy targets are aliases, so that
		// `uvmbuild deploy-confpods-uvm` works as `make deploy-confpods-uvm`.
		Aliases: deploy.Targets()[1:],
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if called := cmd.CalledAs(); called != "" && called != "deploy" {
				args = append([]string{called}, args...)
			}
			return runDeploy(cmd.Context(), o, d, args, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&d.Root, "root", "", "staging root: install everything under this directory")
	cmd.Flags().BoolVar(&d.NoBuild, "no-build", false, "do not build; install the outputs recorded in --out/build.json")
	return cmd
}

// deployArgs splits [DEPLOY-TARGET] [VAR=value...] into the target, the
// install variables and the variables for the build: install variables go to
// the build too when the recipe declares them (declared may be nil).
func deployArgs(args []string, environ []string, declared func(string) bool) (target string, vars map[string]string, buildAssigns []string, err error) {
	targets, assigns := recipes.SplitArgs(args)
	switch len(targets) {
	case 0:
		target = "deploy"
	case 1:
		target = targets[0]
	default:
		return "", nil, nil, usageError(fmt.Errorf("one deploy target at a time, got %s", strings.Join(targets, " ")))
	}
	if _, _, err := deploy.TargetParts(target); err != nil {
		return "", nil, nil, usageError(err)
	}
	vars = map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && isDeployVar(k) && !cmdlineOnly(k) {
			vars[k] = v
		}
	}
	for _, kv := range assigns {
		k, v, _ := strings.Cut(kv, "=")
		if isDeployVar(k) {
			vars[k] = v
			if declared == nil || !declared(k) {
				continue
			}
		}
		if k == deploy.VarBuildType || k == deploy.VarProfile {
			vars[k] = v
		}
		buildAssigns = append(buildAssigns, kv)
	}
	return target, vars, buildAssigns, nil
}

func runDeploy(ctx context.Context, o *Options, d *deployOptions, args []string, stdout, stderr io.Writer) error {
	var declared func(string) bool
	if r, err := o.recipe(); err == nil {
		declared = func(name string) bool {
			return slices.ContainsFunc(r.Vars(), func(v recipes.Var) bool { return v.Name == name })
		}
	}
	target, vars, buildAssigns, err := deployArgs(args, o.Environ, declared)
	if err != nil {
		return err
	}
	outDir, err := filepath.Abs(o.OutDir)
	if err != nil {
		return err
	}
	kataSrc := o.KataSrc
	if kataSrc != "" {
		if kataSrc, err = filepath.Abs(kataSrc); err != nil {
			return err
		}
	}
	root := d.Root
	if root != "" {
		if root, err = filepath.Abs(root); err != nil {
			return err
		}
	}
	// Everything that can be checked is checked before building: the
	// variables, the layout, and the privileges a live deploy needs.
	p, err := deploy.ParamsFromVars(target, vars, outDir, kataSrc)
	if err != nil {
		return err
	}
	instRoot, _, err := deploy.Resolve(root, p)
	if err != nil {
		return err
	}
	if err := deploy.CheckPrivileges(instRoot); err != nil {
		return err
	}

	if !d.NoBuild {
		builds, err := deploy.BuildTargets(target)
		if err != nil {
			return err
		}
		// The build's artifact list is progress for a deploy: stderr.
		if err := runBuild(ctx, o, append(builds, buildAssigns...), stderr, stderr); err != nil {
			return err
		}
	}
	b, err := record.Read(filepath.Join(outDir, record.FileName))
	if err != nil {
		return fmt.Errorf("%w (build first, or drop --no-build)", err)
	}
	// BUILD_TYPE and PROFILE as the build resolved them decide the
	// defaults of the install variables (SHIM_USE_DEBUG_CONFIG).
	for _, k := range []string{deploy.VarBuildType, deploy.VarProfile} {
		if _, set := vars[k]; !set && b.Vars[k] != "" {
			vars[k] = b.Vars[k]
		}
	}
	if p, err = deploy.ParamsFromVars(target, vars, outDir, kataSrc); err != nil {
		return err
	}
	res, err := deploy.Deploy(ctx, root, p, stderr,
		deploy.WithRecordedOutputs(outDir, recordedDigests(outDir, b)),
		deploy.WithObserver(func(ev deploy.Event) {
			if ev.Action == "installed" || ev.Action == "unchanged" {
				fmt.Fprintf(stdout, "%s\t%s\n", ev.Action, ev.Dest)
			}
		}))
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "uvmbuild: %s: %d installed, %d unchanged under %s\n", target, len(res.Installed), len(res.Unchanged), rootName(instRoot))
	return nil
}

// recordedDigests maps the host path of every file the build record lists
// under outDir to its digest.
func recordedDigests(outDir string, b *record.Build) map[string]string {
	m := map[string]string{}
	for _, a := range b.Artifacts {
		switch a.Type {
		case record.TypeFile:
			m[filepath.Join(outDir, filepath.FromSlash(a.Name))] = a.Digest.String()
		case record.TypeDir:
			for _, e := range a.Entries {
				if e.Type == record.TypeFile {
					m[filepath.Join(outDir, filepath.FromSlash(path.Join(a.Name, e.Path)))] = e.Digest.String()
				}
			}
		}
	}
	return m
}

func rootName(root string) string {
	if deploy.IsLive(root) {
		return "/ (live system)"
	}
	return root
}

func newUndeployCmd() *cobra.Command {
	d := &deployOptions{}
	cmd := &cobra.Command{
		Use:   "undeploy [DEPLOY-TARGET] [PREFIX=dir]",
		Short: "Remove exactly what deploy installed",
		Long: `Removes the files recorded in /var/lib/uvmbuild/deploy.json under the root
(--root DIR, or the live system, which needs root), then the directories deploy
created that are now empty. With a deploy target (e.g. deploy-confpods-uvm)
only that target's files are removed. A file edited since it was deployed is
removed too and reported. PREFIX=dir undeploys a PREFIX-only package deploy.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUndeploy(cmd.Context(), d, args, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&d.Root, "root", "", "staging root the files were deployed under")
	return cmd
}

func runUndeploy(ctx context.Context, d *deployOptions, args []string, stdout, stderr io.Writer) error {
	targets, assigns := recipes.SplitArgs(args)
	if len(targets) > 1 {
		return usageError(fmt.Errorf("one deploy target at a time, got %s", strings.Join(targets, " ")))
	}
	prefix := ""
	for _, kv := range assigns {
		k, v, _ := strings.Cut(kv, "=")
		if k != deploy.VarPrefix {
			return usageError(fmt.Errorf("undeploy takes only PREFIX=dir, not %s", kv))
		}
		prefix = v
	}
	root := d.Root
	var err error
	if root != "" {
		if root, err = filepath.Abs(root); err != nil {
			return err
		}
	}
	var sel deploy.Selector
	var hasUVM bool
	if len(targets) == 1 {
		v, parts, err := deploy.TargetParts(targets[0])
		if err != nil {
			return usageError(err)
		}
		sel, hasUVM = deploy.Select(v, parts...), slices.Contains(parts, deploy.UVM)
	}
	if root == "" && prefix != "" && !hasUVM {
		root = prefix
	}
	if err := deploy.CheckPrivileges(root); err != nil {
		return err
	}
	res, err := deploy.Uninstall(ctx, root, sel, deploy.WithObserver(func(ev deploy.Event) {
		fmt.Fprintf(stdout, "%s\t%s\n", ev.Action, ev.Dest)
	}))
	if err != nil {
		return err
	}
	if len(res.Removed)+len(res.Missing) == 0 {
		fmt.Fprintf(stderr, "uvmbuild: nothing deployed under %s\n", rootName(root))
	}
	for _, m := range res.Modified {
		fmt.Fprintf(stderr, "uvmbuild: warning: %s had been modified since it was deployed\n", m)
	}
	return nil
}
