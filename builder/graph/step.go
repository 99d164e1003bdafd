package graph

import (
	"context"
	"io"
	"log/slog"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/record"
)

// Step is one node of the build graph: what it consumes (Inputs), how it is
// identified (Spec), what it produces (Outputs) and who produces it (Exec).
// Only Spec, Inputs and Outputs go into the step's key; Meta never does.
type Step struct {
	// ID names the step uniquely and stably within a graph, e.g.
	// "uvm-confpods/image". It is used in build.json, logs and `plan`, and to
	// find the previous build of the same step when explaining a miss. It is
	// not part of the key: two steps that differ only by ID share results.
	ID string
	// Meta is display-only metadata.
	Meta Meta
	// Spec is the hashed identity of the work.
	Spec Spec
	// Inputs are the step's data edges, in a stable order chosen by the recipe.
	Inputs []Input
	// Outputs are the slash-separated names, relative to the output directory,
	// that the executor must create: a regular file, a symlink or a directory
	// tree each. Anything else the executor leaves in the directory is an error.
	Outputs []string
	// Exec does the work. It is not hashed: what it does must be fully
	// described by Spec (Kind, Version, Image, Params).
	Exec Executor
}

// Meta is step metadata that never changes the key.
type Meta struct {
	Description string
}

// Spec is the hashed part of a step besides its inputs.
type Spec struct {
	// Kind names the executor kind, e.g. "go/verity" or "container".
	Kind string
	// Version is the version of the Go code or tool implementing Kind. Bump it
	// whenever the bytes an executor writes could change for the same inputs.
	Version string
	// Image is the digest of the container image the step runs in; empty for
	// native Go steps.
	Image digest.Digest
	// Params are typed parameters (strings, numbers, bools, string slices,
	// nested maps). They are encoded canonically (JSON, sorted keys).
	Params map[string]any
}

// Input is one data edge. Exactly one of Path, Blob or From is set.
type Input struct {
	// Name is the logical name the executor sees the input under; unique
	// within the step.
	Name string
	// Blob is inline content (e.g. a generated config file), presented to
	// the executor as a read-only regular file and keyed by its content.
	Blob []byte
	// Path is a host file or directory tree; it is keyed by content and
	// executable bits (not other mode bits, owners, paths or timestamps,
	// which a checkout does not preserve). The executor gets the path
	// itself, read-only by contract, and must not let other metadata leak
	// into its outputs.
	Path string
	// Ignore lists slash-separated glob patterns (path.Match, matched against
	// each path relative to Path and against each base name) excluded from a
	// directory input, e.g. ".git".
	Ignore []string
	// From is an upstream step; Output selects one of its Outputs ("" means
	// the step's whole output directory).
	From   *Step
	Output string
}

// Executor runs a step. Implementations live outside this package (native Go
// functions in builder/actions, container steps in builder/sandbox through
// builder/actions); the graph only calls Run.
type Executor interface {
	// Run produces every declared output under x.OutDir. It must honour ctx:
	// when ctx is cancelled it stops its work (killing any child process) and
	// returns. It must not write anywhere but x.OutDir and x.TempDir.
	Run(ctx context.Context, x *Exec) error
}

// ExecFunc adapts a function to Executor.
type ExecFunc func(ctx context.Context, x *Exec) error

// Run calls f.
func (f ExecFunc) Run(ctx context.Context, x *Exec) error { return f(ctx, x) }

// Exec is what an executor gets for one run.
type Exec struct {
	// Step is the step being run.
	Step *Step
	// Key is the step's key.
	Key digest.Digest
	// Inputs maps each input's Name to a host path holding its content. The
	// content must be treated as read-only (it may be hard-linked from the
	// cache).
	Inputs map[string]string
	// OutDir is an empty directory; the executor writes its Outputs here.
	OutDir string
	// TempDir is an empty scratch directory, removed after the run.
	TempDir string
	// Log receives the step's output; it goes to the step's own log file.
	Log io.Writer
	// Logger is for warnings meant for the user.
	Logger *slog.Logger
}

// Manifest describes the outputs of one run of a step as stored in the
// action cache: every file, directory and symlink under the output
// directory, sorted by Path. It is defined in builder/record, which build.json
// readers import without pulling in the graph.
type Manifest = record.Manifest

// Entry is one file system object of a step's outputs (see record.Entry).
type Entry = record.Entry
