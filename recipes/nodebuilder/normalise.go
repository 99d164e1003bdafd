package nodebuilder

import (
	"github.com/uvmbuild/uvmbuild/builder/actions"
	"github.com/uvmbuild/uvmbuild/builder/graph"
)

// Run-dependent files removed or made stable when the rootfs becomes the
// deterministic tar (docs/rootfs.md says why for each). Most of /var is
// already gone (rootfs.sh step 6); these rules also hold for a rootfs whose
// packages were installed differently.
var (
	normaliseDrop = []string{
		"dev/*",          // device nodes: the guest's /dev is a devtmpfs
		"tmp/*", "run/*", // scratch left by package scripts
		"var/cache/*", "var/log/*", // caches (ldconfig aux-cache, apt) and logs with times
		"etc/udev/hwdb.bin", "usr/lib/udev/hwdb.bin", // systemd-hwdb output, rebuilt by triggers
		"etc/passwd-", "etc/group-", "etc/shadow-", "etc/gshadow-", "etc/subuid-", "etc/subgid-", // backups from useradd/groupadd runs
		"etc/.pwd.lock",                                          // lock file of those runs
		"etc/ssh/ssh_host_*",                                     // per-machine keys, if a package generated any
		"usr/lib/sysimage/tdnf/history.db",                       // tdnf transaction history with times (Contrast #834)
		"etc/pki/ca-trust/extracted/java/cacerts",                // Java keystore with creation times (spec §9.2)
		"var/lib/dbus/machine-id", "var/lib/systemd/random-seed", // per-machine identity and entropy
	}
	// etc/machine-id is emptied and always present: systemd generates one
	// at boot (image_builder.sh touches an empty one into the image).
	normaliseEmpty = []string{"etc/machine-id"}
	normaliseAdd   = []string{"etc/machine-id"}
)

func (p *planner) normalise(id string, rootfs *graph.Step) *graph.Step {
	return &graph.Step{
		ID:   id,
		Meta: graph.Meta{Description: "deterministic rootfs tar (sorted, numeric owners, mtimes clamped, run-dependent files removed)"},
		Spec: actions.RootfsSpec(actions.RootfsParams{
			SourceDateEpoch: p.cfg.epoch,
			Drop:            normaliseDrop,
			Empty:           normaliseEmpty,
			AddEmpty:        normaliseAdd,
		}),
		Inputs:  []graph.Input{{Name: "rootfs", From: rootfs, Output: "rootfs.tar"}},
		Outputs: []string{"rootfs.tar", "summary.json"},
		Exec:    actions.Rootfs{},
	}
}
