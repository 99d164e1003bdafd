package nodebuilder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/uvmbuild/uvmbuild/builder/actions"
	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/images"
	"github.com/uvmbuild/uvmbuild/builder/lockfile"
	"github.com/uvmbuild/uvmbuild/recipes"
)

// Flavours accepted by New.
const (
	Demo       = "demo"
	AzureLinux = "azure-linux"
)

// Recipe is the node-builder recipe of one flavour.
type Recipe struct {
	fl       flavour
	cacheDir string
}

var _ recipes.Recipe = (*Recipe)(nil)

// Option configures a Recipe.
type Option func(*Recipe)

// WithCacheDir sets the directory holding the image store (imported and
// unpacked builder images). The default is uvmbuild/ under the user's cache
// directory.
func WithCacheDir(dir string) Option { return func(r *Recipe) { r.cacheDir = dir } }

// NewDemo returns the demo recipe (the CLI's default).
func NewDemo(opts ...Option) *Recipe { return newRecipe(demo{}, opts) }

// NewAzureLinux returns the azure-linux recipe.
func NewAzureLinux(opts ...Option) *Recipe { return newRecipe(azureLinux{}, opts) }

func newRecipe(fl flavour, opts []Option) *Recipe {
	r := &Recipe{fl: fl}
	for _, o := range opts {
		o(r)
	}
	return r
}

// New returns the recipe of flavour Demo or AzureLinux.
func New(flavourName string, opts ...Option) (*Recipe, error) {
	var fl flavour
	switch flavourName {
	case Demo:
		fl = demo{}
	case AzureLinux:
		fl = azureLinux{}
	default:
		return nil, fmt.Errorf("nodebuilder: unknown flavour %q: want %s or %s", flavourName, Demo, AzureLinux)
	}
	return newRecipe(fl, opts), nil
}

// Name implements recipes.Recipe.
func (r *Recipe) Name() string { return r.fl.name() }

// Description says what the flavour builds.
func (r *Recipe) Description() string { return r.fl.description() }

// Vars implements recipes.Recipe.
func (r *Recipe) Vars() []recipes.Var {
	v := r.vars()
	if _, ok := r.fl.(azureLinux); ok {
		v = append(v,
			recipes.Var{Name: varBuilderImage, Type: recipes.String, Default: defaultAzureBuilder,
				Description: "Azure Linux builder image (kata-packages-uvm-build, golang, rust installed); pinned by digest in uvmbuild.lock"},
			recipes.Var{Name: varPackageIndex, Type: recipes.Path, Default: "",
				Description: "package index of pinned RPMs (default azurelinux-<OS_VERSION>.pkgs beside uvmbuild.lock)"})
	}
	return v
}

// Azure-only variables.
const (
	varBuilderImage     = "BUILDER_IMAGE"
	varPackageIndex     = "PACKAGE_INDEX"
	defaultAzureBuilder = "mcr.microsoft.com/azurelinux/base/core:3.0"
)

// Targets implements recipes.Recipe.
func (r *Recipe) Targets() []recipes.Target {
	return []recipes.Target{
		{Name: "all", Description: "package and uvm (the Makefile's default)"},
		{Name: "all-confpods", Description: "package-confpods and uvm-confpods"},
		{Name: "package", Description: "runtime, shim configuration, agent (agent-install/)"},
		{Name: "package-confpods", Description: "package for confidential pods + utarfs, kata-overlay, tardev-snapshotter"},
		{Name: "uvm", Description: "rootfs and kata-containers.img"},
		{Name: "uvm-confpods", Description: "rootfs with policy and tarfs, verity image, root_hash.txt, IGVM files and measurements"},
		{Name: "clean", Description: "remove the Kata variant's outputs from the output directory"},
		{Name: "clean-confpods", Description: "remove the confpods variant's outputs (root_hash.txt included)"},
	}
}

// request is what the targets ask of one variant.
type request struct{ pkg, uvm, clean bool }

// Plan implements recipes.Recipe. It validates the variables, the kata
// source layout and the policy before returning any step.
func (r *Recipe) Plan(ctx context.Context, env recipes.Env, targets []string, vals recipes.Values) (*recipes.Plan, error) {
	if len(targets) == 0 {
		targets = []string{"all"}
	}
	if err := recipes.CheckTargets(r, targets); err != nil {
		return nil, err
	}
	byVariant := map[bool]*request{}
	for _, t := range targets {
		base, confpods := strings.CutSuffix(t, "-confpods")
		// CONF_PODS=yes turns the plain targets into the confpods ones,
		// as the scripts read it from the environment.
		confpods = confpods || vals.Bool(varConfPods)
		rq := byVariant[confpods]
		if rq == nil {
			rq = &request{}
			byVariant[confpods] = rq
		}
		switch base {
		case "all":
			rq.pkg, rq.uvm = true, true
		case "package":
			rq.pkg = true
		case "uvm":
			rq.uvm = true
		case "clean":
			rq.clean = true
		}
	}
	if len(byVariant) > 1 {
		return nil, errors.New("targets mix the Kata and the confpods variant, which write the same files (kata-containers.img, agent-install/); build them into separate output directories")
	}
	var confpods bool
	var rq *request
	for k, v := range byVariant {
		confpods, rq = k, v
	}
	cfg, err := newConfig(vals, confpods, r.fl.osVersions())
	if err != nil {
		return nil, err
	}
	p := &planner{r: r, env: env, cfg: cfg, names: namesFor(cfg), steps: map[string]*graph.Step{}, ctx: ctx}
	plan := &recipes.Plan{Record: map[string]string{
		"profile": cfg.profile, "variant": cfg.variantName(), "flavour": r.fl.name(),
	}}
	if rq.clean {
		plan.Clean = p.cleanPaths()
	}
	if !rq.pkg && !rq.uvm {
		return plan, nil
	}
	srcDir := env.KataSrc
	if srcDir == "" {
		srcDir = r.fl.defaultKataSrc(p)
	}
	if p.src, err = openKataSource(srcDir, cfg); err != nil {
		return nil, err
	}
	plan.Record["kata-src.version"] = p.src.version
	if rq.uvm && cfg.confpods {
		pol, origin, err := loadPolicy(cfg.policyName, p.src)
		if err != nil {
			return nil, err
		}
		p.pol = pol
		plan.Record["policy.name"] = pol.Name()
		plan.Record["policy.digest"] = pol.Digest().String()
		plan.Record["policy.source"] = origin
	}
	if p.w, err = r.wiring(env); err != nil {
		return nil, err
	}
	if az, ok := r.fl.(azureLinux); ok {
		if p.azl, err = az.inputs(ctx, p, vals); err != nil {
			return nil, err
		}
	}
	if rq.pkg {
		plan.Artifacts = append(plan.Artifacts, p.packageArtifacts()...)
		plan.Record["shim-config.install"] = p.shimConfigInstalled() + " -> " + p.names.shimConfigPath + "/" + p.names.shimConfigInst
	}
	if rq.uvm {
		if cfg.confpods {
			// iasl stamps its version into every ACPI table: it is keyed.
			if p.iasl, err = actions.IASLVersion(ctx, ""); err != nil {
				return nil, fmt.Errorf("IGVM steps: %w", err)
			}
			plan.Record["iasl.version"] = p.iasl
			plan.Record["kernel"] = r.fl.kernelDescription()
		}
		plan.Artifacts = append(plan.Artifacts, p.uvmArtifacts()...)
	}
	if p.err != nil {
		return nil, p.err
	}
	return plan, nil
}

// wiring opens the lock file beside the project and the image store.
func (r *Recipe) wiring(env recipes.Env) (*wiring, error) {
	cache := r.cacheDir
	if cache == "" {
		cache = env.CacheDir
	}
	if cache == "" {
		// The CLI's default cache location (builder/cache.DefaultDir).
		cache = os.Getenv("UVMBUILD_CACHE")
	}
	if cache == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("image store: %w (set UVMBUILD_CACHE)", err)
		}
		cache = filepath.Join(d, "uvmbuild")
	}
	lock := lockfile.Open(filepath.Join(env.ProjectDir, lockfile.Name))
	w := &wiring{lock: lock, images: &images.Store{Dir: cache, Lock: lock}}
	if m, err := actions.AptMirror("/"); err == nil {
		w.mirror = m
	}
	return w, nil
}

// inputs resolves the azure-linux flavour's builder image (through the
// lock) and reads its package index.
func (azureLinux) inputs(ctx context.Context, p *planner, vals recipes.Values) (*azlInputs, error) {
	src := images.Source{Name: "azure-linux-builder", Ref: vals.Get(varBuilderImage)}
	d, err := p.w.images.Resolve(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("%s=%s: %w", varBuilderImage, src.Ref, err)
	}
	p.w.sources = []images.Source{src}
	idxPath := vals.Get(varPackageIndex)
	if idxPath == "" {
		idxPath = filepath.Join(p.env.ProjectDir, "azurelinux-"+p.cfg.osVersion+".pkgs")
	}
	b, err := os.ReadFile(idxPath)
	if err != nil {
		return nil, fmt.Errorf("%s: package index: %w (resolve the package set on an Azure Linux host, see docs/nodebuilder.md)", varPackageIndex, err)
	}
	idx, err := parseIndex(idxPath, b)
	if err != nil {
		return nil, err
	}
	def, extra := p.rootfsPackages()
	need := append(append([]string(nil), def...), extra...)
	if p.cfg.confpods {
		need = append(need, "kernel-uvm")
	}
	need = append(need, "cargo-vendor")
	for _, g := range need {
		if len(idx[g]) == 0 {
			return nil, fmt.Errorf("package index %s: no entries for %s", idxPath, g)
		}
	}
	return &azlInputs{builder: d, index: idx}, nil
}
