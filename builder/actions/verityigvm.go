package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/verity"
)

// VerityIGVMKind is the Spec.Kind of IGVM steps whose kernel command line
// starts with the dm-mod.create= argument of a measured image.
const VerityIGVMKind = "go/igvm-verity"

// verityIGVMVersion is bumped when the command line this wrapper builds
// could change for the same spec and inputs.
const verityIGVMVersion = "1"

// Input and output names of a verity IGVM step.
const (
	// VerityIGVMInputVerity is the image step's verity.json.
	VerityIGVMInputVerity = "verity"
	// VerityIGVMOutputCmdline, when declared as the third output, receives
	// the exact command line measured into the IGVM file.
	VerityIGVMOutputCmdline = "cmdline.txt"
)

// VerityIGVMSpec returns the Spec of an IGVM step whose command line is
// the dm-mod.create= argument built from its "verity" input (the verity
// parameters of the image it boots, on dataDev and hashDev) followed by
// tail, byte for byte. It consumes the image step's own parameters, so an
// IGVM can never embed a root hash other than the image's (the osbuilder
// Makefile can pair an image with a stale root_hash.txt). p.Cmdline must be
// empty. The step declares the IGVM file, then optionally the measurement
// JSON and cmdline.txt, as its Outputs.
func VerityIGVMSpec(p IGVMParams, dataDev, hashDev, tail string) (graph.Spec, error) {
	if p.Cmdline != "" {
		return graph.Spec{}, errors.New("verity IGVM step: the command line is built from the verity input; leave Cmdline empty")
	}
	s, err := IGVMSpec(p)
	if err != nil {
		return graph.Spec{}, err
	}
	delete(s.Params, "cmdline")
	s.Params["data_dev"], s.Params["hash_dev"], s.Params["cmdline_tail"] = dataDev, hashDev, tail
	s.Kind, s.Version = VerityIGVMKind, verityIGVMVersion+"+"+s.Version
	return s, nil
}

// VerityIGVM runs verity IGVM steps through IGVM.
type VerityIGVM struct {
	IGVM IGVM
}

var _ graph.Executor = (*VerityIGVM)(nil)

// Run implements graph.Executor.
func (e *VerityIGVM) Run(ctx context.Context, x *graph.Exec) error {
	s := x.Step
	vpath, ok := x.Inputs[VerityIGVMInputVerity]
	if !ok {
		return fmt.Errorf("verity IGVM step %s: no %q input", s.ID, VerityIGVMInputVerity)
	}
	b, err := os.ReadFile(vpath)
	if err != nil {
		return fmt.Errorf("verity IGVM step %s: %w", s.ID, err)
	}
	var info verity.Info
	if err := json.Unmarshal(b, &info); err != nil {
		return fmt.Errorf("verity IGVM step %s: verity parameters: %w", s.ID, err)
	}
	if info.RootHash == "" || info.DataBlocks == 0 || info.DataBlockSize == 0 || info.HashBlockSize == 0 {
		return fmt.Errorf("verity IGVM step %s: verity parameters incomplete (root hash %q, %d data blocks of %d bytes, hash blocks of %d bytes)",
			s.ID, info.RootHash, info.DataBlocks, info.DataBlockSize, info.HashBlockSize)
	}
	str := func(k string) string { v, _ := s.Spec.Params[k].(string); return v }
	cmdline := info.KernelArg(str("data_dev"), str("hash_dev")) + str("cmdline_tail")
	inner := *s
	inner.Spec.Params = maps.Clone(s.Spec.Params)
	inner.Spec.Params["cmdline"] = cmdline
	var writeCmdline bool
	if len(inner.Outputs) == 3 && inner.Outputs[2] == VerityIGVMOutputCmdline {
		inner.Outputs, writeCmdline = slices.Clone(inner.Outputs[:2]), true
	}
	ix := *x
	ix.Step = &inner
	if x.Log != nil {
		fmt.Fprintf(x.Log, "kernel command line: %q\n", cmdline)
	}
	if err := e.IGVM.Run(ctx, &ix); err != nil {
		return err
	}
	if writeCmdline {
		if err := os.WriteFile(filepath.Join(x.OutDir, VerityIGVMOutputCmdline), []byte(cmdline), 0o644); err != nil {
			return err
		}
	}
	// Output modes are recorded in the manifest: fix them whatever the
	// umask the files were created under.
	for _, o := range s.Outputs {
		if err := os.Chmod(filepath.Join(x.OutDir, filepath.FromSlash(o)), 0o644); err != nil {
			return err
		}
	}
	return nil
}
