package nodebuilder

import (
	"fmt"

	"github.com/uvmbuild/uvmbuild/builder/graph"
)

// Fixed seeds of the image step. The ext4 UUID, htree hash seed, verity salt
// and MBR disk id are derived by the image action from these and the rootfs
// digest (spec §9.1: every random value becomes a function of the inputs).
const imageSeed = "uvmbuild/nodebuilder/image/v1"

// policyStep materialises the checked policy bytes as a file; its key is the
// policy's content, so a different policy changes exactly the steps that
// consume it.
func (p *planner) policyStep() *graph.Step {
	id := p.uvmTarget() + "/policy"
	return p.memo(id, func() *graph.Step {
		return fileStep(id, "agent policy "+p.pol.Name()+" ("+string(p.pol.Digest())+")", p.pol.Name(), p.pol.Bytes())
	})
}

// rootfsStep assembles the rootfs (rootfs.sh + uvm_build.sh steps, spec §4)
// and writes it as a tar with numeric owners.
func (p *planner) rootfsStep() *graph.Step {
	id := p.uvmTarget() + "/rootfs"
	return p.memo(id, func() *graph.Step {
		inputs := []graph.Input{
			p.r.fl.packagesInput(p),
			// The real uvm → package edge the Makefile lacks.
			{Name: "agent-install", From: p.agentStep(), Output: "agent-install"},
		}
		if p.cfg.confpods {
			inputs = append(inputs,
				graph.Input{Name: "policy", From: p.policyStep(), Output: p.pol.Name()},
				graph.Input{Name: "tarfs", From: p.tarfsStep(), Output: "modules"})
		}
		return p.container(containerStep{
			id:      id,
			desc:    fmt.Sprintf("rootfs (%s, %s)", p.cfg.profile, p.cfg.variantName()),
			image:   p.builderImage(),
			script:  p.rootfsScript(),
			inputs:  inputs,
			outputs: []string{"rootfs.tar"},
		})
	})
}

// kernelStep yields the guest kernel: bzImage and its release string
// (confpods only; the Kata variant boots the host's vmlinux.bin).
func (p *planner) kernelStep() *graph.Step {
	id := p.uvmTarget() + "/kernel"
	return p.memo(id, func() *graph.Step { return p.r.fl.kernelStep(p, id) })
}

// tarfsStep builds tarfs.ko against the guest kernel's headers and installs
// it with depmod into modules/ (spec §3.2 step 4).
func (p *planner) tarfsStep() *graph.Step {
	id := p.uvmTarget() + "/tarfs"
	return p.memo(id, func() *graph.Step { return p.r.fl.tarfsStep(p, id) })
}

// normaliseStep turns the assembled rootfs tar into the deterministic tar
// the image is made from (docs/rootfs.md lists what it removes and why).
func (p *planner) normaliseStep() *graph.Step {
	id := p.uvmTarget() + "/rootfs-tar"
	return p.memo(id, func() *graph.Step {
		return p.normalise(id, p.rootfsStep())
	})
}

// imageStep makes kata-containers.img (+ root_hash.txt and the verity
// parameters for confpods) from the deterministic rootfs tar.
func (p *planner) imageStep() *graph.Step {
	id := p.uvmTarget() + "/image"
	return p.memo(id, func() *graph.Step {
		s, err := p.image(id, p.normaliseStep())
		if err != nil {
			p.fail(err)
		}
		return s
	})
}

// igvmStep makes one IGVM file and its measurement file with the exact
// kernel command line of spec §6.3. It consumes the verity parameters of the
// image step directly, so it can never pair an image with a stale
// root_hash.txt (the osbuilder Makefile's latent bug).
func (p *planner) igvmStep(debug bool) *graph.Step {
	id := p.uvmTarget() + "/igvm"
	if debug {
		id += "-debug"
	}
	return p.memo(id, func() *graph.Step {
		s, err := p.igvm(id, debug)
		if err != nil {
			p.fail(err)
		}
		return s
	})
}

// Kernel command lines (spec §6.3). The two " \t" sequences are what the
// node-builder's backslash-newline continuations inside a double-quoted
// string leave; they are measured, so they are reproduced byte for byte.
const (
	cmdlineMiddle = " \troot=/dev/dm-0 rootflags=data=ordered,errors=remount-ro ro rootfstype=ext4 panic=1 no_timer_check noreplace-smp systemd.unit=kata-containers.target systemd.mask=systemd-networkd.service \tsystemd.mask=systemd-networkd.socket agent.enable_signature_verification=false"
	cmdlineProd   = " quiet"
	cmdlineDebug  = " console=hvc0 systemd.log_target=console agent.log=debug agent.debug_console agent.debug_console_vport=1026"
)

// uvmArtifacts are what uvm[-confpods] materialises into out/.
func (p *planner) uvmArtifacts() []graph.Artifact {
	n := p.names
	img := p.imageStep()
	arts := []graph.Artifact{{Step: img, Output: n.imageFile, As: n.imageFile}}
	if !p.cfg.confpods {
		return arts
	}
	arts = append(arts, graph.Artifact{Step: img, Output: "root_hash.txt", As: "root_hash.txt"})
	prod, dbg := p.igvmStep(false), p.igvmStep(true)
	arts = append(arts,
		graph.Artifact{Step: prod, Output: n.igvmFile, As: n.igvmFile},
		graph.Artifact{Step: prod, Output: n.measurementFile, As: n.measurementFile},
		graph.Artifact{Step: dbg, Output: n.igvmDebugFile, As: n.igvmDebugFile},
		graph.Artifact{Step: dbg, Output: n.measurementDebug, As: n.measurementDebug},
	)
	return arts
}

// cleanPaths are what clean[-confpods] removes from out/: everything the
// variant's package and uvm targets write, including root_hash.txt (which
// the osbuilder clean forgets).
func (p *planner) cleanPaths() []string {
	n := p.names
	paths := []string{"containerd-shim-kata-v2", "kata-runtime", "kata-monitor", "kata-collect-data.sh", n.shimConfig}
	if n.shimDebugConfig != "" {
		paths = append(paths, n.shimDebugConfig)
	}
	paths = append(paths, "agent-install", n.imageFile)
	if p.cfg.confpods {
		paths = append(paths, "utarfs", "kata-overlay", "tardev-snapshotter", "tardev-snapshotter.service",
			"root_hash.txt", n.igvmFile, n.igvmDebugFile, n.measurementFile, n.measurementDebug)
	}
	return paths
}
