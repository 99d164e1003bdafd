package nodebuilder

import (
	"strings"

	"github.com/uvmbuild/uvmbuild/builder/graph"
)

// buildDir is where container steps copy the (read-only) kata source to
// build it: a fixed path, so no build path differs between runs.
const buildDir = "/tmp/kata-containers"

// copySource is the script prologue of every step that builds from the kata
// source: the source is mounted read-only at /in/kata-src.
const copySource = "cp -a /in/kata-src " + buildDir + "\n"

// runtimeFlags are the make flags of src/runtime (spec §3.1 step 2), in the
// order package_build.sh passes them.
func (p *planner) runtimeFlags() []string {
	c, n := p.cfg, p.names
	f := []string{
		"SKIP_GO_VERSION_CHECK=1",
		"QEMUCMD=", "FCCMD=", "ACRNCMD=", "STRATOVIRTCMD=",
		"DEFAULT_HYPERVISOR=cloud-hypervisor",
		"DEFMEMSZ=0", "DEFSTATICSANDBOXWORKLOADMEM=512", "DEFVCPUS=0", "DEFSTATICSANDBOXWORKLOADVCPUS=1",
	}
	if c.main() {
		f = append(f, "DEFDISABLEIMAGENVDIMM=true")
	}
	f = append(f, "DEFVIRTIOFSDAEMON="+p.r.fl.virtiofsd(c.osVersion), "PREFIX="+n.installPrefix)
	if c.confpods {
		f = append(f, "CLHPATH=/usr/bin/cloud-hypervisor")
	} else {
		f = append(f, "DEFSTATICRESOURCEMGMT_CLH=true", "KERNELPATH_CLH=/usr/share/cloud-hypervisor/vmlinux.bin")
	}
	if c.main() {
		if c.confpods {
			f = append(f, "DEFSANDBOXWORKLOADMEMMIN=192")
		} else {
			f = append(f, "DEFSANDBOXWORKLOADMEMMIN=128")
		}
	}
	if p.r.fl.cgroupV2(c.osVersion) {
		f = append(f, "DEFSANDBOXCGROUPONLY=true")
	} else if !c.confpods {
		f = append(f, `KERNELPARAMS="systemd.legacy_systemd_cgroup_controller=yes systemd.unified_cgroup_hierarchy=0"`)
	}
	return f
}

// agentFlags are the make flags of src/agent (spec §3.1 step 4).
func (p *planner) agentFlags() []string {
	c := p.cfg
	f := []string{"LIBC=gnu", "OPENSSL_NO_VENDOR=Y", "DESTDIR=/out/agent-install", "BUILD_TYPE=" + c.agentBuildType}
	if c.confpods {
		f = append(f, "AGENT_POLICY=yes")
	} else if c.main() {
		f = append(f, "INIT_DATA=no")
	}
	return f
}

// runtimeStep builds the shim, runtime, monitor, collect script and the
// main shim configuration.
func (p *planner) runtimeStep() *graph.Step {
	n := p.names
	id := p.pkgTarget() + "/runtime"
	return p.memo(id, func() *graph.Step {
		script := copySource +
			"cd " + buildDir + "/src/runtime\n" +
			p.r.fl.toolchainEnv() +
			"make " + strings.Join(p.runtimeFlags(), " ") + "\n" +
			"install -D -m 0755 -t /out containerd-shim-kata-v2 kata-runtime kata-monitor\n" +
			"install -m 0755 data/kata-collect-data.sh /out/kata-collect-data.sh\n" +
			"install -D -m 0644 config/" + n.shimConfig + " /out/config/" + n.shimConfig + "\n"
		return p.container(containerStep{
			id:      id,
			desc:    "runtime: containerd-shim-kata-v2, kata-runtime, kata-monitor, " + n.shimConfig,
			image:   p.builderImage(),
			script:  script,
			inputs:  []graph.Input{p.kataSrc()},
			outputs: []string{"containerd-shim-kata-v2", "kata-runtime", "kata-monitor", "kata-collect-data.sh", "config/" + n.shimConfig},
		})
	})
}

// hasDebugConfig reports whether the profile and variant make a debug shim
// configuration (spec §3.1 step 3: HEAD both variants, 3.15 confpods only).
func (p *planner) hasDebugConfig() bool {
	return p.names.shimDebugConfig != ""
}

// debugConfigStep derives the debug shim configuration from the main one
// with package_build.sh's three edits.
func (p *planner) debugConfigStep() *graph.Step {
	n := p.names
	id := p.pkgTarget() + "/shim-debug-config"
	return p.memo(id, func() *graph.Step {
		var b strings.Builder
		b.WriteString("cp /in/config /out/" + n.shimDebugConfig + "\n")
		if p.cfg.confpods {
			b.WriteString(`sed -i "s/kata-containers-igvm.img/kata-containers-igvm-debug.img/" /out/` + n.shimDebugConfig + "\n")
		}
		b.WriteString(`sed -i '/^#enable_debug =/s|^#||g' /out/` + n.shimDebugConfig + "\n")
		b.WriteString(`sed -i '/^#debug_console_enabled =/s|^#||g' /out/` + n.shimDebugConfig + "\n")
		return p.container(containerStep{
			id:      id,
			desc:    "debug shim configuration " + n.shimDebugConfig,
			image:   p.builderImage(),
			script:  b.String(),
			inputs:  []graph.Input{{Name: "config", From: p.runtimeStep(), Output: "config/" + n.shimConfig}},
			outputs: []string{n.shimDebugConfig},
		})
	})
}

// agentStep builds and installs the agent into agent-install/.
func (p *planner) agentStep() *graph.Step {
	id := p.pkgTarget() + "/agent"
	return p.memo(id, func() *graph.Step {
		flags := strings.Join(p.agentFlags(), " ")
		script := copySource +
			"cd " + buildDir + "/src/agent\n" +
			p.r.fl.toolchainEnv() + p.r.fl.cargoOffline("agent") +
			"make " + flags + "\n" +
			"make install " + flags + "\n"
		inputs := []graph.Input{p.kataSrc()}
		if v := p.r.fl.vendorStep(p, "agent"); v != nil {
			inputs = append(inputs, graph.Input{Name: "vendor", From: v})
		}
		return p.container(containerStep{
			id:      id,
			desc:    "agent (" + strings.Join(p.agentFlags()[3:], " ") + ")",
			image:   p.builderImage(),
			script:  script,
			inputs:  inputs,
			outputs: []string{"agent-install"},
		})
	})
}

// tardevComponent is one of the confpods host components (spec §3.1 step 1).
type tardevComponent struct {
	dir, binary string
	env         string // extra environment for make (tardev-snapshotter needs RUSTC_BOOTSTRAP)
}

var tardevComponents = []tardevComponent{
	{dir: "utarfs", binary: "utarfs"},
	{dir: "overlay", binary: "kata-overlay"},
	{dir: "tardev-snapshotter", binary: "tardev-snapshotter", env: "RUSTC_BOOTSTRAP=1 "},
}

// tardevStep builds one confpods host component with `make all`.
func (p *planner) tardevStep(tc tardevComponent) *graph.Step {
	id := p.pkgTarget() + "/" + tc.binary
	return p.memo(id, func() *graph.Step {
		script := copySource +
			"cd " + buildDir + "/src/" + tc.dir + "\n" +
			p.r.fl.toolchainEnv() + p.r.fl.cargoOffline(tc.dir) +
			tc.env + "make all\n" +
			"install -D -m 0755 target/release/" + tc.binary + " /out/" + tc.binary + "\n"
		outputs := []string{tc.binary}
		if tc.dir == "tardev-snapshotter" {
			script += "install -m 0644 tardev-snapshotter.service /out/tardev-snapshotter.service\n"
			outputs = append(outputs, "tardev-snapshotter.service")
		}
		inputs := []graph.Input{p.kataSrc()}
		if v := p.r.fl.vendorStep(p, tc.dir); v != nil {
			inputs = append(inputs, graph.Input{Name: "vendor", From: v})
		}
		return p.container(containerStep{
			id:      id,
			desc:    tc.binary + " (confpods host component)",
			image:   p.builderImage(),
			script:  script,
			inputs:  inputs,
			outputs: outputs,
		})
	})
}

// packageArtifacts are what package[-confpods] materialises into out/, under
// the names deploy (builder/deploy) reads: the runtime binaries, the built
// shim configurations, agent-install/ and the confpods host components.
func (p *planner) packageArtifacts() []graph.Artifact {
	n := p.names
	rt := p.runtimeStep()
	arts := []graph.Artifact{
		{Step: rt, Output: "containerd-shim-kata-v2", As: "containerd-shim-kata-v2"},
		{Step: rt, Output: "kata-runtime", As: "kata-runtime"},
		{Step: rt, Output: "kata-monitor", As: "kata-monitor"},
		{Step: rt, Output: "kata-collect-data.sh", As: "kata-collect-data.sh"},
		{Step: rt, Output: "config/" + n.shimConfig, As: n.shimConfig},
	}
	if p.hasDebugConfig() {
		arts = append(arts, graph.Artifact{Step: p.debugConfigStep(), Output: n.shimDebugConfig, As: n.shimDebugConfig})
	}
	arts = append(arts, graph.Artifact{Step: p.agentStep(), Output: "agent-install", As: "agent-install"})
	if p.cfg.confpods {
		for _, tc := range tardevComponents {
			s := p.tardevStep(tc)
			for _, o := range s.Outputs {
				arts = append(arts, graph.Artifact{Step: s, Output: o, As: o})
			}
		}
	}
	return arts
}

// shimConfigInstalled is the built configuration deploy-package installs
// as SHIM_CONFIG_INST_FILE_NAME: the debug one when SHIM_USE_DEBUG_CONFIG=yes
// and the profile has one (3.15 ignores it for Kata), else the main one.
func (p *planner) shimConfigInstalled() string {
	if p.cfg.shimDebug && p.hasDebugConfig() {
		return p.names.shimDebugConfig
	}
	return p.names.shimConfig
}
