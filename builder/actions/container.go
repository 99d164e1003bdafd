package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/images"
	"github.com/uvmbuild/uvmbuild/builder/sandbox"
)

// ContainerKind is the Spec.Kind of container steps.
const ContainerKind = "container"

// containerVersion is bumped when what a container step writes could change
// for the same spec (environment, mounts, normalisation).
const containerVersion = "1"

// ContainerPath is the PATH every container step gets unless its Env
// overrides it.
const ContainerPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ContainerParams is the hashed description of a container step.
type ContainerParams struct {
	// Argv is the command. With Script set, Argv become the script's
	// positional parameters ($1…).
	Argv []string `json:"argv,omitempty"`
	// Script is run as `/bin/sh -euc Script step Argv...`.
	Script string `json:"script,omitempty"`
	// Env is added to the fixed environment; it may override PATH but no
	// other fixed variable.
	Env map[string]string `json:"env,omitempty"`
	// SourceDateEpoch is exported as SOURCE_DATE_EPOCH and clamps output
	// mtimes; required (0 is a valid value: 1970).
	SourceDateEpoch int64 `json:"source_date_epoch"`
	// Workdir is the working directory in the container ("/" by default).
	Workdir string `json:"workdir,omitempty"`
	// ImageInput names the input that holds the step's image as an OCI
	// layout directory; Spec.Image must then be empty.
	ImageInput string `json:"image_input,omitempty"`
}

// ContainerSpec returns the Spec of a container step running in image (a
// manifest digest; empty when p.ImageInput names the image input).
func ContainerSpec(image digest.Digest, p ContainerParams) graph.Spec {
	params := map[string]any{"source_date_epoch": p.SourceDateEpoch}
	if len(p.Argv) > 0 {
		params["argv"] = slices.Clone(p.Argv)
	}
	if p.Script != "" {
		params["script"] = p.Script
	}
	if len(p.Env) > 0 {
		env := map[string]any{}
		for k, v := range p.Env {
			env[k] = v
		}
		params["env"] = env
	}
	if p.Workdir != "" {
		params["workdir"] = p.Workdir
	}
	if p.ImageInput != "" {
		params["image_input"] = p.ImageInput
	}
	return graph.Spec{Kind: ContainerKind, Version: containerVersion, Image: image, Params: params}
}

// decodeParams reads ContainerParams back from a Spec (whatever JSON-like
// types the map holds).
func decodeParams(s graph.Spec, v any) error {
	b, err := json.Marshal(s.Params)
	if err != nil {
		return fmt.Errorf("%s step params: %w", s.Kind, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s step params: %w", s.Kind, err)
	}
	return nil
}

// inputName is what may follow /in/.
var inputName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)

// envName is a portable environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// fixedEnv lists the variables every step gets; only PATH may be overridden.
var fixedEnv = []string{"SOURCE_DATE_EPOCH", "TZ", "LC_ALL", "LANG", "HOME", "TMPDIR"}

// Container runs container steps (see the package documentation). Its
// fields are wiring only; nothing here changes a step's output.
type Container struct {
	// Images holds and unpacks images; required.
	Images *images.Store
	// Sources are where Spec.Image may be obtained if it is not yet in the
	// store; each is tried in turn (a registry source is pulled by digest).
	Sources []images.Source
	// Runc and StateRoot configure the runtime (sandbox defaults if empty).
	Runc, StateRoot string
	// Timeout, Memory (bytes) and Pids bound each run (sandbox defaults).
	Timeout      time.Duration
	Memory, Pids int64
}

var _ graph.Executor = (*Container)(nil)

// Run implements graph.Executor.
func (c *Container) Run(ctx context.Context, x *graph.Exec) error {
	if c.Images == nil {
		return errors.New("container executor: no image store")
	}
	var p ContainerParams
	if err := decodeParams(x.Step.Spec, &p); err != nil {
		return err
	}
	args, env, err := containerCommand(p)
	if err != nil {
		return err
	}
	root, err := c.rootfs(ctx, x, p)
	if err != nil {
		return err
	}
	var mounts []sandbox.Mount
	for _, name := range slices.Sorted(maps.Keys(x.Inputs)) {
		if name == p.ImageInput {
			continue
		}
		if !inputName.MatchString(name) {
			return fmt.Errorf("container input %q: name must match %s (it becomes /in/<name>)", name, inputName)
		}
		mounts = append(mounts, sandbox.Mount{Source: x.Inputs[name], Dest: "/in/" + name})
	}
	bundle := filepath.Join(x.TempDir, "bundle")
	if err := os.Mkdir(bundle, 0o700); err != nil {
		return fmt.Errorf("container bundle: %w", err)
	}
	err = sandbox.Run(ctx, sandbox.Spec{
		Rootfs:    root,
		Args:      args,
		Env:       env,
		Cwd:       p.Workdir,
		Inputs:    mounts,
		Output:    x.OutDir,
		Memory:    c.Memory,
		Pids:      c.Pids,
		Timeout:   c.Timeout,
		Log:       x.Log,
		Bundle:    bundle,
		Runc:      c.Runc,
		StateRoot: c.StateRoot,
	})
	if err != nil {
		return err
	}
	if err := sandbox.Normalize(x.OutDir, time.Unix(p.SourceDateEpoch, 0)); err != nil {
		return err
	}
	for _, o := range x.Step.Outputs {
		if _, err := os.Lstat(filepath.Join(x.OutDir, filepath.FromSlash(o))); err != nil {
			return fmt.Errorf("container step did not create its declared output %q under /out", o)
		}
	}
	return nil
}

// containerCommand builds the argv and the complete environment.
func containerCommand(p ContainerParams) ([]string, []string, error) {
	var args []string
	switch {
	case p.Script != "":
		args = append([]string{"/bin/sh", "-euc", p.Script, "step"}, p.Argv...)
	case len(p.Argv) > 0:
		args = slices.Clone(p.Argv)
	default:
		return nil, nil, errors.New("container step: neither argv nor script")
	}
	env := map[string]string{
		"PATH":              ContainerPath,
		"SOURCE_DATE_EPOCH": strconv.FormatInt(p.SourceDateEpoch, 10),
		"TZ":                "UTC",
		"LC_ALL":            "C",
		"LANG":              "C",
		"HOME":              "/tmp",
		"TMPDIR":            "/tmp",
	}
	for k, v := range p.Env {
		if slices.Contains(fixedEnv, k) {
			return nil, nil, fmt.Errorf("container step env: %s is fixed and cannot be set", k)
		}
		if !envName.MatchString(k) {
			return nil, nil, fmt.Errorf("container step env: invalid variable name %q", k)
		}
		env[k] = v
	}
	var list []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		list = append(list, k+"="+env[k])
	}
	return args, list, nil
}

func (c *Container) rootfs(ctx context.Context, x *graph.Exec, p ContainerParams) (string, error) {
	if p.ImageInput != "" {
		if x.Step.Spec.Image != "" {
			return "", fmt.Errorf("container step: both Spec.Image (%s) and image input %q set", x.Step.Spec.Image, p.ImageInput)
		}
		dir, ok := x.Inputs[p.ImageInput]
		if !ok {
			return "", fmt.Errorf("container step: image input %q is not among the step's inputs", p.ImageInput)
		}
		root, _, err := c.Images.RootfsFromLayout(ctx, dir, "")
		if err != nil {
			return "", fmt.Errorf("container image from input %q: %w", p.ImageInput, err)
		}
		return root, nil
	}
	want := x.Step.Spec.Image
	if want == "" {
		return "", errors.New("container step: no image (set Spec.Image or ContainerParams.ImageInput)")
	}
	// The store first (no network), then each source.
	root, err := c.Images.Rootfs(ctx, images.Source{}, want)
	if err == nil || !errors.Is(err, images.ErrUnknownImage) {
		return root, err
	}
	errs := []error{err}
	for _, src := range c.Sources {
		root, err := c.Images.Rootfs(ctx, src, want)
		if err == nil {
			return root, nil
		}
		var de *images.DigestError
		if errors.As(err, &de) || ctx.Err() != nil {
			return "", err
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("container image %s: %w", want, errors.Join(errs...))
}
