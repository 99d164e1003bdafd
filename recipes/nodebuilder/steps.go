package nodebuilder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/policy"
	"github.com/uvmbuild/uvmbuild/recipes"
)

// planner builds the steps of one variant (kata or confpods) of one Plan
// call. Steps are memoised by ID so that every consumer of, say, the agent
// shares one *graph.Step, and both variants share the builder image.
type planner struct {
	r     *Recipe
	env   recipes.Env
	cfg   *config
	names names
	src   *kataSource
	pol   *policy.Policy // nil for the Kata variant
	steps map[string]*graph.Step
	w     *wiring
	azl   *azlInputs // azure-linux only
	ctx   context.Context
	iasl  string // iasl version, keyed into the IGVM steps
	// err is the first error of a step constructor that needs a tool
	// (mkfs.ext4); Plan returns it.
	err error
}

func (p *planner) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

func (p *planner) memo(id string, mk func() *graph.Step) *graph.Step {
	if s, ok := p.steps[id]; ok {
		return s
	}
	s := mk()
	p.steps[id] = s
	return s
}

func (p *planner) pkgTarget() string {
	if p.cfg.confpods {
		return "package-confpods"
	}
	return "package"
}

func (p *planner) uvmTarget() string {
	if p.cfg.confpods {
		return "uvm-confpods"
	}
	return "uvm"
}

// kataSrcIgnore keeps build outputs and VCS state of a checkout out of the
// source digest: the source is keyed by content, never by git state.
var kataSrcIgnore = []string{".git", "target", "agent-install", "*.o", "*.ko", "*.mod.c", "*.cmd"}

// kataSrc is the kata source tree as a step input (mounted at /in/kata-src).
func (p *planner) kataSrc() graph.Input {
	return graph.Input{Name: "kata-src", Path: p.src.dir, Ignore: kataSrcIgnore}
}

// containerStep describes a step run by a shell script in a container.
type containerStep struct {
	id, desc string
	image    imageRef
	script   string
	inputs   []graph.Input
	outputs  []string
}

// imageRef is the image a container step runs in: the output of an
// upstream step (an OCI layout) or a reference pinned in uvmbuild.lock.
type imageRef struct {
	step   *graph.Step
	digest digest.Digest // a registry image pinned through the lock
}

// builderImage is the image the package and uvm steps run in.
func (p *planner) builderImage() imageRef {
	return p.r.fl.builderImage(p)
}

// fileKind writes bytes given in its params as one output file.
const fileKind = "go/nodebuilder-file"

// fileStep is a native step writing content to an output called name.
func fileStep(id, desc, name string, content []byte) *graph.Step {
	return &graph.Step{
		ID:      id,
		Meta:    graph.Meta{Description: desc},
		Spec:    graph.Spec{Kind: fileKind, Version: "1", Params: map[string]any{"name": name, "content": string(content)}},
		Outputs: []string{name},
		Exec: graph.ExecFunc(func(ctx context.Context, x *graph.Exec) error {
			out := filepath.Join(x.OutDir, name)
			if err := os.WriteFile(out, content, 0o644); err != nil {
				return fmt.Errorf("writing %s: %w", name, err)
			}
			// The mode is part of the output: not the umask's to decide.
			return os.Chmod(out, 0o644)
		}),
	}
}
