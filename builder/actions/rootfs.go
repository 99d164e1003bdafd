package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/rootfs"
)

// RootfsKind is the Spec.Kind of rootfs normalisation steps.
const RootfsKind = "go/rootfs"

// rootfsVersion is bumped when the tar this action writes could change for
// the same params and input (including changes of builder/rootfs's output).
const rootfsVersion = "1"

// RootfsParams describe a normalisation of a root file system tar into the
// deterministic tar an image is made from (builder/rootfs).
type RootfsParams struct {
	// SourceDateEpoch clamps every mtime.
	SourceDateEpoch int64 `json:"source_date_epoch"`
	// Drop and Empty are path.Match patterns of clean slash paths ("etc/
	// machine-id"): dropped entries (a directory with its subtree) and
	// regular files kept with no content.
	Drop  []string `json:"drop,omitempty"`
	Empty []string `json:"empty,omitempty"`
	// AddEmpty are empty regular files (mode 0644) inserted or replaced
	// after filtering, e.g. etc/machine-id.
	AddEmpty []string `json:"add_empty,omitempty"`
}

// RootfsSpec returns the Spec of a normalisation step. The step has one
// input, "rootfs" (a tar file), and the outputs "rootfs.tar" and
// "summary.json" (entry counts, disk usage and what the rules removed).
func RootfsSpec(p RootfsParams) graph.Spec {
	params := map[string]any{"source_date_epoch": p.SourceDateEpoch}
	if len(p.Drop) > 0 {
		params["drop"] = slices.Clone(p.Drop)
	}
	if len(p.Empty) > 0 {
		params["empty"] = slices.Clone(p.Empty)
	}
	if len(p.AddEmpty) > 0 {
		params["add_empty"] = slices.Clone(p.AddEmpty)
	}
	return graph.Spec{Kind: RootfsKind, Version: rootfsVersion, Params: params}
}

// Rootfs runs normalisation steps.
type Rootfs struct{}

var _ graph.Executor = Rootfs{}

// Run implements graph.Executor.
func (Rootfs) Run(ctx context.Context, x *graph.Exec) error {
	var p RootfsParams
	if err := decodeParams(x.Step.Spec, &p); err != nil {
		return err
	}
	in, ok := x.Inputs["rootfs"]
	if !ok {
		return errors.New(`rootfs step: no input "rootfs"`)
	}
	filter, err := rootfs.Rules{Drop: p.Drop, Empty: p.Empty}.Filter()
	if err != nil {
		return fmt.Errorf("rootfs step: %w", err)
	}
	var add []rootfs.File
	for _, name := range p.AddEmpty {
		add = append(add, rootfs.File{Name: name, Mode: 0o644})
	}
	src, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("rootfs step: %w", err)
	}
	defer src.Close()
	outPath := filepath.Join(x.OutDir, "rootfs.tar")
	out, err := os.Create(outPath)
	if err != nil {
		return err
	}
	sum, err := rootfs.Normalize(ctx, src, out, rootfs.Options{
		SourceDateEpoch: p.SourceDateEpoch,
		Filter:          filter,
		Add:             add,
		TempDir:         x.TempDir,
	})
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("rootfs step: normalising %s: %w", filepath.Base(in), err)
	}
	if x.Log != nil {
		fmt.Fprintf(x.Log, "rootfs.tar: %d entries (%d files, %d dirs, %d symlinks, %d hardlinks), %d bytes, sha256 %x\n",
			sum.Entries, sum.Files, sum.Dirs, sum.Symlinks, sum.Hardlinks, sum.Size, sum.SHA256)
		for _, d := range sum.Dropped {
			fmt.Fprintf(x.Log, "dropped %s\n", d)
		}
		for _, e := range sum.Emptied {
			fmt.Fprintf(x.Log, "emptied %s\n", e)
		}
	}
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return err
	}
	sumPath := filepath.Join(x.OutDir, "summary.json")
	if err := os.WriteFile(sumPath, append(b, '\n'), 0o644); err != nil {
		return err
	}
	// Output modes are recorded: set them, whatever the umask.
	for _, p := range []string{outPath, sumPath} {
		if err := os.Chmod(p, 0o644); err != nil {
			return err
		}
	}
	return nil
}
