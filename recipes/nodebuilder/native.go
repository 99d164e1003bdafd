package nodebuilder

import (
	"github.com/uvmbuild/uvmbuild/builder/graph"
)

// image is the image step: ext4 from the deterministic tar, MBR, and for
// confpods dm-verity (kernelinit layout, no superblock) with root_hash.txt.
func (p *planner) image(id string, tar *graph.Step) *graph.Step {
	outs := []string{p.names.imageFile}
	if p.cfg.confpods {
		outs = append(outs, "root_hash.txt", "verity.json")
	}
	return &graph.Step{
		ID:   id,
		Meta: graph.Meta{Description: "image " + p.names.imageFile},
		Spec: graph.Spec{Kind: "go/image", Version: "0", Params: map[string]any{
			"measured": p.cfg.confpods, "seed": imageSeed, "source_date_epoch": p.cfg.epoch,
		}},
		Inputs:  []graph.Input{{Name: "rootfs", From: tar, Output: "rootfs.tar"}},
		Outputs: outs,
	}
}

// igvm is one IGVM step (production or debug) with its measurement file.
func (p *planner) igvm(id string, debug bool) *graph.Step {
	n := p.names
	out, meas, tail := n.igvmFile, n.measurementFile, cmdlineProd
	if debug {
		out, meas, tail = n.igvmDebugFile, n.measurementDebug, cmdlineDebug
	}
	return &graph.Step{
		ID:   id,
		Meta: graph.Meta{Description: out + " + " + meas},
		Spec: graph.Spec{Kind: "go/igvm", Version: "0", Params: map[string]any{
			"cmdline_after_dm": cmdlineMiddle + tail, "svn": p.cfg.igvmSVN, "acpi": "clh",
		}},
		Inputs: []graph.Input{
			{Name: "kernel", From: p.kernelStep(), Output: "bzImage"},
			{Name: "verity", From: p.imageStep(), Output: "verity.json"},
		},
		Outputs: []string{out, meas},
	}
}
