package nodebuilder

import (
	"fmt"
	"strconv"

	"github.com/uvmbuild/uvmbuild/builder/actions"
	"github.com/uvmbuild/uvmbuild/builder/graph"
)

// image is the image step: ext4 from the deterministic tar with the
// node-builder's size rule (IMAGE_SIZE_ALIGNMENT_MB=2, tune2fs -m 3), an
// MBR, and for confpods dm-verity in the kernelinit layout (no superblock,
// so hash_start_block 0 in the command line is right; msft-main's
// superblock-plus-hash-start-0 inconsistency is not reproduced) with
// root_hash.txt. UUID, hash seed, salt and disk id are derived from the
// content and imageSeed.
func (p *planner) image(id string, tar *graph.Step) (*graph.Step, error) {
	outs := []string{p.names.imageFile}
	if p.cfg.confpods {
		outs = append(outs, "root_hash.txt", "verity.json")
	}
	spec, err := actions.ImageSpec(p.ctx, actions.ImageParams{
		Measured:        p.cfg.confpods,
		SourceDateEpoch: p.cfg.epoch,
		Seed:            imageSeed,
		AlignMiB:        2,
	}, "")
	if err != nil {
		return nil, fmt.Errorf("image step: %w", err)
	}
	return &graph.Step{
		ID:      id,
		Meta:    graph.Meta{Description: "image " + p.names.imageFile},
		Spec:    spec,
		Inputs:  []graph.Input{{Name: "rootfs", From: tar, Output: "rootfs.tar"}},
		Outputs: outs,
		Exec:    actions.Image{},
	}, nil
}

// igvm is one IGVM step (production or debug) with its measurement file;
// the command line is dm-mod.create= of the image plus the spec §6.3 tail.
func (p *planner) igvm(id string, debug bool) (*graph.Step, error) {
	n := p.names
	out, meas, tail := n.igvmFile, n.measurementFile, cmdlineMiddle+cmdlineProd
	if debug {
		out, meas, tail = n.igvmDebugFile, n.measurementDebug, cmdlineMiddle+cmdlineDebug
	}
	ip := actions.DefaultIGVMParams()
	ip.SVN = strconv.Itoa(p.cfg.igvmSVN)
	ip.IASLVersion = p.iasl
	spec, err := actions.VerityIGVMSpec(ip, "/dev/vda1", "/dev/vda2", tail)
	if err != nil {
		return nil, fmt.Errorf("IGVM step: %w", err)
	}
	return &graph.Step{
		ID:   id,
		Meta: graph.Meta{Description: out + " + " + meas},
		Spec: spec,
		Inputs: []graph.Input{
			{Name: actions.IGVMInputKernel, From: p.kernelStep(), Output: "bzImage"},
			{Name: actions.VerityIGVMInputVerity, From: p.imageStep(), Output: "verity.json"},
		},
		Outputs: []string{out, meas, actions.VerityIGVMOutputCmdline},
		Exec:    &actions.VerityIGVM{},
	}, nil
}
