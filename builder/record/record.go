package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/atomicfile"
)

// SchemaVersion is the version of the build.json schema written by this
// package. Readers reject records with a different major schema.
const SchemaVersion = "uvmbuild.build/v1"

// FileName is the name of the record inside the output directory.
const FileName = "build.json"

// Build is the content of build.json.
type Build struct {
	SchemaVersion string `json:"schemaVersion"`
	// Recipe is the recipe's name, e.g. "demo".
	Recipe string `json:"recipe"`
	// Targets are the targets requested, in command-line order.
	Targets []string `json:"targets"`
	// Vars are the resolved values of every declared variable.
	Vars map[string]string `json:"vars"`
	// Actions are every step of the build in topological (graph) order,
	// ties broken by step ID.
	Actions []Action `json:"actions"`
	// Artifacts are the files and trees materialised into the output
	// directory, sorted by Name.
	Artifacts []Artifact `json:"artifacts"`
	// Record holds recipe-specific facts, e.g. "policy.digest".
	Record map[string]string `json:"record,omitempty"`
}

// Action is one step of the build.
type Action struct {
	ID          string        `json:"id"`
	Description string        `json:"description,omitempty"`
	Kind        string        `json:"kind"`
	Version     string        `json:"version,omitempty"`
	Image       digest.Digest `json:"image,omitempty"`
	Key         digest.Digest `json:"key"`
	Inputs      []Input       `json:"inputs"`
	Outputs     Manifest      `json:"outputs"`
	// Cached is true when the outputs were served from the cache (or
	// produced by another step with the same key in this build).
	Cached bool `json:"cached"`
	// DurationMS is the wall time of the run, or of the cache lookup.
	DurationMS int64 `json:"durationMS"`
	// Log is the log file of the run that produced the outputs, relative to
	// the cache directory ("logs/ab/abcd….log"); empty if there is none.
	Log string `json:"log,omitempty"`
}

// Input is one data edge of an action.
type Input struct {
	Name string `json:"name"`
	// Digest is the canonical tree digest of the input's content (see
	// builder/graph: files by content and executable bit, trees by path,
	// type and content).
	Digest digest.Digest `json:"digest"`
	// Source is "file" or "dir" for a host input, "step:<id>" for a whole
	// upstream output directory or "step:<id>/<output>" for one output.
	Source string `json:"source"`
}

// Artifact is one entry materialised into the output directory.
type Artifact struct {
	// Name is the slash path under the output directory.
	Name string `json:"name"`
	// Step and Output name what produced it.
	Step   string `json:"step"`
	Output string `json:"output"`
	// Type is "file", "dir" or "symlink".
	Type string `json:"type"`
	// Digest is the content digest of a file, or the tree digest of a
	// directory (the same digest a downstream step would key it by).
	Digest digest.Digest `json:"digest"`
	// Size is a file's size.
	Size int64 `json:"size,omitempty"`
	// Entries lists a directory artifact's content, relative to Name.
	Entries []Entry `json:"entries,omitempty"`
}

// Manifest describes the outputs of one run of a step as stored in the
// action cache: every file, directory and symlink under the output
// directory, sorted by Path.
type Manifest struct {
	Entries []Entry `json:"entries"`
}

// Entry is one file system object of a step's outputs.
type Entry struct {
	// Path is slash-separated and relative to the step's output directory.
	Path string `json:"path"`
	// Type is "file", "dir" or "symlink".
	Type string `json:"type"`
	// Mode holds the permission bits (0o7777 mask).
	Mode fs.FileMode `json:"mode"`
	// Digest and Size describe a regular file's content.
	Digest digest.Digest `json:"digest,omitempty"`
	Size   int64         `json:"size,omitempty"`
	// Target is a symlink's target.
	Target string `json:"target,omitempty"`
}

// Entry types.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
)

// Marshal encodes b as indented JSON with a trailing newline. The encoding
// is deterministic: equal builds give equal bytes.
func Marshal(b *Build) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(b); err != nil {
		return nil, fmt.Errorf("encoding build record: %w", err)
	}
	return buf.Bytes(), nil
}

// Write writes b to path atomically: a temp file beside it, fsync, rename.
// On error path is left as it was.
func Write(path string, b *Build) error {
	data, err := Marshal(b)
	if err != nil {
		return err
	}
	// A no-op build records the same bytes: leave the file (and its
	// fsync) alone.
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return atomicfile.WriteFile(path, data, 0o644)
}

// Read parses the build record at path and checks its schema version.
func Read(path string) (*Build, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading build record: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes a build record; name is used in errors.
func Parse(data []byte, name string) (*Build, error) {
	var b Build
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("parsing build record %s: %w", name, err)
	}
	if b.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("build record %s: schemaVersion %q, want %q", name, b.SchemaVersion, SchemaVersion)
	}
	return &b, nil
}

// Action returns the action with the given step ID, or nil.
func (b *Build) Action(id string) *Action {
	for i := range b.Actions {
		if b.Actions[i].ID == id {
			return &b.Actions[i]
		}
	}
	return nil
}
