package nodebuilder

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/actions"
	"github.com/uvmbuild/uvmbuild/builder/graph"
)

// azureLinux builds the UVM the way the node-builder does on an Azure Linux
// host, with tdnf's package set downloaded by pinned checksum instead of
// resolved live.
type azureLinux struct{}

func (azureLinux) name() string { return "azure-linux" }
func (azureLinux) description() string {
	return "the node-builder on Azure Linux: kata-containers checkout, Azure Linux builder image, tdnf package set, kernel-uvm"
}
func (azureLinux) osVersions() []string { return []string{"3.0", "2.0"} }
func (azureLinux) osVersionDoc() string {
	return "Azure Linux release of the rootfs and packages (an input here: never read from the host)"
}
func (azureLinux) distroName() string { return "cbl-mariner" }
func (azureLinux) defaultKataSrc(p *planner) string {
	if wd, err := os.Getwd(); err == nil {
		return findKataCheckout(wd)
	}
	return ""
}
func (azureLinux) virtiofsd(os string) string {
	if os == "2.0" {
		return "/usr/libexec/virtiofsd-rs"
	}
	return "/usr/libexec/virtiofsd"
}
func (azureLinux) cgroupV2(os string) bool { return os == "3.0" }

// toolchainEnv keeps host paths and VCS state out of Go and cargo outputs
// (spec §9.1) and keeps cargo's home in the step's scratch space.
func (azureLinux) toolchainEnv() string {
	return "export GOFLAGS='-trimpath -buildvcs=false' CARGO_HOME=/tmp/cargo CARGO_NET_OFFLINE=true\n"
}

// cargoOffline points cargo at the vendored crates of the kata-containers
// source package (the RPM build's cargo tarball).
func (azureLinux) cargoOffline(dir string) string {
	return "mkdir -p /tmp/cargo && tar -xzf /in/vendor/cargo-vendor.tar.gz -C /tmp/cargo\n" +
		"printf '[source.crates-io]\\nreplace-with = \"vendored-sources\"\\n[source.vendored-sources]\\ndirectory = \"/tmp/cargo/vendor\"\\n' > /tmp/cargo/config.toml\n"
}

func (a azureLinux) vendorStep(p *planner, dir string) *graph.Step {
	return a.fetchGroups(p, p.pkgTarget()+"/cargo-vendor", "vendored crates of the kata-containers sources", []string{"cargo-vendor"})
}

func (azureLinux) chronyConf() string { return "/etc/chrony.conf" }
func (azureLinux) chronyUnit() string { return "/usr/lib/systemd/system/chronyd.service" }

func (azureLinux) builderImage(p *planner) imageRef {
	return imageRef{digest: p.azl.builder}
}

// packages is cbl-mariner/config.sh's PACKAGES (spec §4.1 step 2).
func (azureLinux) packages(c *config) []string {
	p := []string{"kata-packages-uvm", "systemd", "libseccomp"}
	if c.confpods && !c.main() {
		// 3.15 adds the coco set when CONF_GUEST=yes; HEAD ignores it.
		p = append(p, "kata-packages-uvm-coco")
	}
	return p
}

func (a azureLinux) packagesStep(p *planner) *graph.Step {
	def, extra := p.rootfsPackages()
	groups := append(append([]string(nil), extra...), def...)
	return a.fetchGroups(p, p.uvmTarget()+"/packages", "Azure Linux "+p.cfg.osVersion+" RPMs of "+strings.Join(groups, " ")+" (pinned)", groups)
}

func (a azureLinux) packagesInput(p *planner) graph.Input {
	return graph.Input{Name: "packages", From: a.packagesStep(p)}
}

// installPackages installs the pinned RPMs offline into the rootfs, in one
// rpm transaction (what tdnf --installroot does after resolving).
func (azureLinux) installPackages(p *planner) string {
	return "rpm --root \"$R\" --initdb\n" +
		"rpm --root \"$R\" --install --nosignature --excludedocs /in/packages/*.rpm\n"
}

func (a azureLinux) kernelRPMs(p *planner) *graph.Step {
	return a.fetchGroups(p, p.uvmTarget()+"/kernel-rpms", "kernel-uvm and kernel-uvm-devel (pinned)", []string{"kernel-uvm"})
}

func (azureLinux) kernelDescription() string { return "kernel-uvm (pinned in the package index)" }

// kernelStep takes bzImage from kernel-uvm (/usr/share/cloud-hypervisor)
// and the kernel version from kernel-uvm-devel (set_uvm_kernel_vars).
func (a azureLinux) kernelStep(p *planner, id string) *graph.Step {
	rpms := a.kernelRPMs(p)
	script := "mkdir -p /tmp/k && cd /tmp/k\n" +
		"rpm2cpio /in/kernel-rpms/kernel-uvm.rpm | cpio -idm ./usr/share/cloud-hypervisor/bzImage\n" +
		"install -m 0644 usr/share/cloud-hypervisor/bzImage /out/bzImage\n" +
		"rpm -qp --queryformat '%{VERSION}-%{RELEASE}\\n' /in/kernel-rpms/kernel-uvm-devel.rpm > /out/kernel-release\n"
	return p.container(containerStep{
		id: id, desc: "bzImage of kernel-uvm", image: p.builderImage(), script: script,
		inputs:  []graph.Input{{Name: "kernel-rpms", From: rpms}},
		outputs: []string{"bzImage", "kernel-release"},
	})
}

// tarfsStep builds tarfs.ko against kernel-uvm-devel (uvm_build.sh step 4).
func (a azureLinux) tarfsStep(p *planner, id string) *graph.Step {
	rpms := a.kernelRPMs(p)
	script := copySource +
		"mkdir -p /tmp/k && (cd /tmp/k && rpm2cpio /in/kernel-rpms/kernel-uvm-devel.rpm | cpio -idm)\n" +
		"KVER=$(rpm -qp --queryformat '%{VERSION}' /in/kernel-rpms/kernel-uvm-devel.rpm)\n" +
		"KDIR=/tmp/k/usr/src/linux-headers-$(rpm -qp --queryformat '%{VERSION}-%{RELEASE}' /in/kernel-rpms/kernel-uvm-devel.rpm)\n" +
		"cd " + buildDir + "/src/tarfs\n" +
		"make KDIR=\"$KDIR\"\n" +
		"make KDIR=\"$KDIR\" KVER=\"$KVER\" INSTALL_MOD_PATH=/out/modules install\n"
	return p.container(containerStep{
		id: id, desc: "tarfs.ko for kernel-uvm", image: p.builderImage(), script: script,
		inputs:  []graph.Input{p.kataSrc(), {Name: "kernel-rpms", From: rpms}},
		outputs: []string{"modules"},
	})
}

// fetchGroups is a fetch step of every index entry in groups.
func (azureLinux) fetchGroups(p *planner, id, desc string, groups []string) *graph.Step {
	return p.memo(id, func() *graph.Step {
		var files []actions.FetchFile
		seen := map[string]bool{}
		for _, g := range groups {
			for _, e := range p.azl.index[g] {
				// Closures overlap (glibc is in every one); the index check
				// made sure one file name has one digest.
				if !seen[e.file] {
					seen[e.file] = true
					files = append(files, actions.FetchFile{Name: e.file, URLs: []string{e.url}, Digest: e.digest})
				}
			}
		}
		sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
		var outs []string
		for _, f := range files {
			outs = append(outs, f.Name)
		}
		return &graph.Step{
			ID: id, Meta: graph.Meta{Description: desc},
			Spec: actions.FetchSpec(files), Outputs: outs, Exec: p.w.fetch(id, files),
		}
	})
}

// azlInputs are the azure-linux flavour's pinned external inputs.
type azlInputs struct {
	builder digest.Digest
	index   map[string][]indexEntry
}

// indexEntry is one line of the package index: a file of a group (a
// metapackage's resolved closure, kernel-uvm, cargo-vendor, or an
// EXTRA_PKGS name).
type indexEntry struct {
	group, file, url string
	digest           digest.Digest
}

// parseIndex reads a package index:
//
//	# comment
//	<group> <file> sha256:<hex> <url>
//
// It is produced on an Azure Linux host by resolving the groups with tdnf
// (docs/nodebuilder.md shows the commands).
func parseIndex(name string, b []byte) (map[string][]indexEntry, error) {
	idx := map[string][]indexEntry{}
	seen := map[string]bool{}
	digests := map[string]digest.Digest{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("%s:%d: want <group> <file> sha256:<hex> <url>, got %d fields", name, ln, len(f))
		}
		d, err := digest.Parse(f[2])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, ln, err)
		}
		if f[1] != path.Base(f[1]) || !strings.Contains(f[1], ".") {
			return nil, fmt.Errorf("%s:%d: file %q must be a plain file name", name, ln, f[1])
		}
		key := f[0] + "/" + f[1]
		if seen[key] {
			return nil, fmt.Errorf("%s:%d: %s listed twice in group %s", name, ln, f[1], f[0])
		}
		seen[key] = true
		if prev, ok := digests[f[1]]; ok && prev != d {
			return nil, fmt.Errorf("%s:%d: %s has two digests (%s and %s)", name, ln, f[1], prev, d)
		}
		digests[f[1]] = d
		idx[f[0]] = append(idx[f[0]], indexEntry{group: f[0], file: f[1], digest: d, url: f[3]})
	}
	return idx, sc.Err()
}
