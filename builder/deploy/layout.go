package deploy

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Variant selects the Kata (Pod Sandboxing) or the confidential (kata-cc)
// flavour of every path and file name (the node-builder's CONF_PODS).
type Variant string

// Variants.
const (
	Kata     Variant = "kata"
	Confpods Variant = "confpods"
)

// Part is one of the node-builder's install scripts.
type Part string

// Parts, in the order the node-builder's deploy targets run them.
const (
	// Package is deploy[-confpods]-package (package_install.sh): shim,
	// runtime tools, shim configuration, tardev-snapshotter (confpods), and
	// the host integration files (containerd fragment, RuntimeClass).
	Package Part = "package"
	// PackageTools is deploy[-confpods]-package-tools
	// (package_tools_install.sh): the node-builder scripts and the agent, so
	// the UVM can be rebuilt from the installed copy.
	PackageTools Part = "package-tools"
	// UVM is deploy[-confpods]-uvm (uvm_install.sh): the image, and for
	// confpods the IGVM files and their measurements.
	UVM Part = "uvm"
)

// Profiles (spec §0, §12). They differ here only in the Kata debug shim
// configuration and in image-builder/nsdax.gpl.c in the tools tree.
const (
	ProfileMsftMain    = "msft-main"
	ProfileRelease3_15 = "release-3.15"
)

// Params are the deploy inputs: the make variables of spec §2.1 that the
// install scripts read, and where the sources are.
type Params struct {
	Variant Variant
	// Profile is ProfileMsftMain or ProfileRelease3_15.
	Profile string
	// Parts to install, e.g. {Package, UVM} for the deploy target.
	Parts []Part
	// Prefix is PREFIX: a directory prepended to every package and
	// package-tools destination (never to the UVM's, as in the Makefile).
	Prefix string
	// UVMPath is UVM_PATH; empty means the variant's default.
	UVMPath string
	// RedeployShimConfig is SHIM_REDEPLOY_CONFIG (Makefile default yes).
	RedeployShimConfig bool
	// UseDebugShimConfig is SHIM_USE_DEBUG_CONFIG: the debug configuration
	// is installed under the main configuration's name.
	UseDebugShimConfig bool
	// StartServices is START_SERVICES: after a confpods package install,
	// enable and restart tardev-snapshotter (live host only).
	StartServices bool
	// OutDir is the build output directory holding the artifacts named in
	// the Source* constants.
	OutDir string
	// KataSrc is the kata-containers checkout; only package-tools reads it.
	KataSrc string
	// Host configures the generated containerd fragment and RuntimeClass
	// manifests; zero fields take documented defaults.
	Host HostParams
}

// Artifact names under Params.OutDir that Layout reads. The node-builder
// recipe materialises its outputs under exactly these names.
const (
	SourceShim             = "containerd-shim-kata-v2"
	SourceRuntime          = "kata-runtime"
	SourceMonitor          = "kata-monitor"
	SourceCollectData      = "kata-collect-data.sh"
	SourceConfig           = "configuration-clh.toml"
	SourceDebugConfig      = "configuration-clh-debug.toml"
	SourceSNPConfig        = "configuration-clh-snp.toml"
	SourceSNPDebugConfig   = "configuration-clh-snp-debug.toml"
	SourceUtarfs           = "utarfs"
	SourceOverlay          = "kata-overlay"
	SourceTardev           = "tardev-snapshotter"
	SourceTardevUnit       = "tardev-snapshotter.service"
	SourceAgentInstall     = "agent-install"
	SourceImage            = "kata-containers.img"
	SourceIGVM             = "kata-containers-igvm.img"
	SourceIGVMDebug        = "kata-containers-igvm-debug.img"
	SourceMeasurement      = "igvm-measurement.cose"
	SourceMeasurementDebug = "igvm-debug-measurement.cose"
)

// File is one file to install.
type File struct {
	// Dest is the absolute, slash-separated destination path on the target
	// system (PREFIX included, staging root not included).
	Dest string
	// Src is the host path to copy from; empty when Content is set.
	Src string
	// Content is the file's bytes when it is generated rather than copied.
	Content []byte
	// Mode is the permission bits the installed file gets, whatever the
	// source's mode or the umask.
	Mode fs.FileMode
	// Variant and Part say which deploy target installs the file; they are
	// recorded in the manifest so undeploy can select by target.
	Variant Variant
	Part    Part
}

// paths are the derived constants of spec §2.2 for one variant.
type paths struct {
	installPrefix, toolsOSB, toolsSrc, uvmDefault, shimConfigDir, debugBinDir, shimBinDir, shimName string
	config, debugConfig, configInst                                                                 string
}

func variantPaths(v Variant) (paths, error) {
	switch v {
	case Kata:
		return paths{
			installPrefix: "/usr",
			toolsOSB:      "/opt/kata-containers/uvm/tools/osbuilder",
			toolsSrc:      "/opt/kata-containers/uvm/src",
			uvmDefault:    "/usr/share/kata-containers",
			shimConfigDir: "/usr/share/defaults/kata-containers",
			debugBinDir:   "/usr/local/bin",
			shimBinDir:    "/usr/local/bin",
			shimName:      "containerd-shim-kata-v2",
			config:        SourceConfig,
			debugConfig:   SourceDebugConfig,
			configInst:    "configuration.toml",
		}, nil
	case Confpods:
		return paths{
			installPrefix: "/opt/confidential-containers",
			toolsOSB:      "/opt/confidential-containers/uvm/tools/osbuilder",
			toolsSrc:      "/opt/confidential-containers/uvm/src",
			uvmDefault:    "/opt/confidential-containers/share/kata-containers",
			shimConfigDir: "/opt/confidential-containers/share/defaults/kata-containers",
			debugBinDir:   "/opt/confidential-containers/bin",
			shimBinDir:    "/usr/local/bin",
			shimName:      "containerd-shim-kata-cc-v2",
			config:        SourceSNPConfig,
			debugConfig:   SourceSNPDebugConfig,
			configInst:    SourceSNPConfig,
		}, nil
	}
	return paths{}, fmt.Errorf("variant %q: want %s or %s", v, Kata, Confpods)
}

// UVMDir returns the directory the UVM files are installed in: UVM_PATH or
// the variant's default.
func (p Params) UVMDir() (string, error) {
	vp, err := variantPaths(p.Variant)
	if err != nil {
		return "", err
	}
	if p.UVMPath != "" {
		return p.UVMPath, nil
	}
	return vp.uvmDefault, nil
}

// ShimConfigPath is the live path of the shim configuration the runtime
// class uses (no PREFIX: it is where the file is on the running host).
func (p Params) ShimConfigPath() (string, error) {
	vp, err := variantPaths(p.Variant)
	if err != nil {
		return "", err
	}
	return path.Join(vp.shimConfigDir, vp.configInst), nil
}

// Layout maps the build outputs to their destinations for p.Parts, per
// spec §7–8: which artifact goes where, under which name and mode. It reads
// nothing; Install checks that every source exists. Files are returned in a
// stable order (by part, then by destination).
func Layout(p Params) ([]File, error) {
	vp, err := variantPaths(p.Variant)
	if err != nil {
		return nil, err
	}
	if p.Profile != ProfileMsftMain && p.Profile != ProfileRelease3_15 {
		return nil, fmt.Errorf("profile %q: want %s or %s", p.Profile, ProfileMsftMain, ProfileRelease3_15)
	}
	if p.Prefix != "" && !path.IsAbs(filepath.ToSlash(p.Prefix)) {
		return nil, fmt.Errorf("PREFIX %q: must be an absolute path", p.Prefix)
	}
	if p.UVMPath != "" && !path.IsAbs(filepath.ToSlash(p.UVMPath)) {
		return nil, fmt.Errorf("UVM_PATH %q: must be an absolute path", p.UVMPath)
	}
	if len(p.Parts) == 0 {
		return nil, fmt.Errorf("no part to deploy")
	}
	if p.OutDir == "" {
		return nil, fmt.Errorf("no build output directory given")
	}
	var files []File
	for _, part := range p.Parts {
		var fs []File
		switch part {
		case Package:
			fs, err = packageFiles(p, vp)
		case PackageTools:
			fs, err = toolsFiles(p, vp)
		case UVM:
			fs, err = uvmFiles(p)
		default:
			err = fmt.Errorf("unknown part %q", part)
		}
		if err != nil {
			return nil, err
		}
		slices.SortFunc(fs, func(a, b File) int { return strings.Compare(a.Dest, b.Dest) })
		files = append(files, fs...)
	}
	seen := map[string]Part{}
	for i := range files {
		files[i].Variant = p.Variant
	}
	for _, f := range files {
		if prev, dup := seen[f.Dest]; dup {
			return nil, fmt.Errorf("%s is installed by both %s and %s", f.Dest, prev, f.Part)
		}
		seen[f.Dest] = f.Part
	}
	return files, nil
}

func (p Params) out(name string) string { return filepath.Join(p.OutDir, filepath.FromSlash(name)) }

func prefixed(prefix, dest string) string {
	if prefix == "" {
		return dest
	}
	return path.Join(filepath.ToSlash(prefix), dest)
}

func packageFiles(p Params, vp paths) ([]File, error) {
	var files []File
	add := func(src, dest string, mode fs.FileMode) {
		files = append(files, File{Src: p.out(src), Dest: prefixed(p.Prefix, dest), Mode: mode, Part: Package})
	}
	if p.Variant == Confpods {
		add(SourceUtarfs, "/usr/sbin/mount.tar", 0o755)
		add(SourceOverlay, "/usr/bin/kata-overlay", 0o755)
		add(SourceTardev, "/usr/bin/tardev-snapshotter", 0o755)
		add(SourceTardevUnit, "/usr/lib/systemd/system/tardev-snapshotter.service", 0o644)
	}
	add(SourceMonitor, path.Join(vp.debugBinDir, "kata-monitor"), 0o755)
	add(SourceRuntime, path.Join(vp.debugBinDir, "kata-runtime"), 0o755)
	// package_install.sh chmods the collect script +x before copying it.
	add(SourceCollectData, path.Join(vp.debugBinDir, "kata-collect-data.sh"), 0o755)
	add(SourceShim, path.Join(vp.shimBinDir, vp.shimName), 0o755)
	if p.RedeployShimConfig {
		// Kata on release-3.15 has no debug configuration (and ignores
		// SHIM_USE_DEBUG_CONFIG), spec §7.1.
		hasDebug := p.Variant == Confpods || p.Profile == ProfileMsftMain
		main := vp.config
		if hasDebug && p.UseDebugShimConfig {
			main = vp.debugConfig
		}
		add(main, path.Join(vp.shimConfigDir, vp.configInst), 0o644)
		if hasDebug {
			add(vp.debugConfig, path.Join(vp.shimConfigDir, vp.debugConfig), 0o644)
		}
	}
	host, err := hostFiles(p)
	if err != nil {
		return nil, err
	}
	for _, h := range host {
		h.Dest = prefixed(p.Prefix, h.Dest)
		files = append(files, h)
	}
	return files, nil
}

// toolsTree lists package_tools_install.sh's copies: repository-relative
// source → path under UVM_TOOLS_PATH_OSB (or _SRC), with the mode the file
// has in the kata-containers repository.
type toolsEntry struct {
	src, dest string // dest relative to toolsOSB, or to toolsSrc when srcTree
	srcTree   bool
	mode      fs.FileMode
}

func toolsTree(p Params) []toolsEntry {
	osb := "tools/osbuilder/"
	nb := "node-builder/azure-linux/"
	t := []toolsEntry{
		{osb + "Makefile", "Makefile", false, 0o644},
		{osb + "scripts/lib.sh", "scripts/lib.sh", false, 0o644},
		{osb + "rootfs-builder/rootfs.sh", "rootfs-builder/rootfs.sh", false, 0o755},
		{osb + "rootfs-builder/cbl-mariner/config.sh", "rootfs-builder/cbl-mariner/config.sh", false, 0o644},
		{osb + "rootfs-builder/cbl-mariner/rootfs_lib.sh", "rootfs-builder/cbl-mariner/rootfs_lib.sh", false, 0o644},
		{osb + "image-builder/image_builder.sh", "image-builder/image_builder.sh", false, 0o755},
		{osb + nb + "Makefile", nb + "Makefile", false, 0o644},
		{osb + nb + "clean.sh", nb + "clean.sh", false, 0o755},
		{osb + nb + "common.sh", nb + "common.sh", false, 0o755},
		{osb + nb + "uvm_build.sh", nb + "uvm_build.sh", false, 0o755},
		{osb + nb + "uvm_install.sh", nb + "uvm_install.sh", false, 0o755},
	}
	if p.Profile == ProfileMsftMain {
		t = append(t, toolsEntry{osb + "image-builder/nsdax.gpl.c", "image-builder/nsdax.gpl.c", false, 0o644})
	}
	if p.Variant == Confpods {
		t = append(t,
			toolsEntry{"src/kata-opa/allow-all.rego", "kata-opa/allow-all.rego", true, 0o644},
			toolsEntry{"src/kata-opa/allow-set-policy.rego", "kata-opa/allow-set-policy.rego", true, 0o644},
			toolsEntry{"src/tarfs/Makefile", "tarfs/Makefile", true, 0o644},
			toolsEntry{"src/tarfs/tarfs.c", "tarfs/tarfs.c", true, 0o644},
			toolsEntry{osb + "igvm-builder/igvm_builder.sh", "igvm-builder/igvm_builder.sh", false, 0o755},
			toolsEntry{osb + "igvm-builder/azure-linux/config.sh", "igvm-builder/azure-linux/config.sh", false, 0o644},
			toolsEntry{osb + "igvm-builder/azure-linux/igvm_lib.sh", "igvm-builder/azure-linux/igvm_lib.sh", false, 0o644},
		)
	}
	return t
}

func toolsFiles(p Params, vp paths) ([]File, error) {
	if p.KataSrc == "" {
		return nil, fmt.Errorf("package-tools needs the kata-containers source tree (--kata-src)")
	}
	var files []File
	for _, e := range toolsTree(p) {
		base := vp.toolsOSB
		if e.srcTree {
			base = vp.toolsSrc
		}
		files = append(files, File{
			Src:  filepath.Join(p.KataSrc, filepath.FromSlash(e.src)),
			Dest: prefixed(p.Prefix, path.Join(base, e.dest)),
			Mode: e.mode, Part: PackageTools,
		})
	}
	// The agent comes from the build (agent-install/), not from the source.
	agent := "node-builder/azure-linux/agent-install/"
	for _, a := range []struct {
		rel  string
		mode fs.FileMode
	}{
		{"usr/bin/kata-agent", 0o755},
		{"usr/lib/systemd/system/kata-containers.target", 0o644},
		{"usr/lib/systemd/system/kata-agent.service", 0o644},
	} {
		files = append(files, File{
			Src:  p.out(path.Join(SourceAgentInstall, a.rel)),
			Dest: prefixed(p.Prefix, path.Join(vp.toolsOSB, agent+a.rel)),
			Mode: a.mode, Part: PackageTools,
		})
	}
	return files, nil
}

func uvmFiles(p Params) ([]File, error) {
	dir, err := p.UVMDir()
	if err != nil {
		return nil, err
	}
	names := []string{SourceImage}
	if p.Variant == Confpods {
		names = append(names, SourceIGVM, SourceIGVMDebug, SourceMeasurement, SourceMeasurementDebug)
	}
	files := make([]File, 0, len(names))
	for _, n := range names {
		files = append(files, File{Src: p.out(n), Dest: path.Join(filepath.ToSlash(dir), n), Mode: 0o644, Part: UVM})
	}
	return files, nil
}
