package nodebuilder

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/actions"
	"github.com/uvmbuild/uvmbuild/builder/graph"
)

// The demo's guest kernel: Debian 12's cloud kernel and the headers tarfs
// is built against, pinned by pool path and SHA-256 (the same values apt
// records in the archive's Packages index). Bumping the kernel means
// changing these five constants together; see docs/nodebuilder.md.
const (
	demoSuite         = "bookworm"
	demoKernelRelease = "6.1.0-50-cloud-amd64"
	demoKernelVersion = "6.1.176-1"
)

var demoKernelDebs = []struct {
	name, pool string
	sha256     string
}{
	{"linux-image.deb", "pool/main/l/linux-signed-amd64/linux-image-6.1.0-50-cloud-amd64_6.1.176-1_amd64.deb",
		"efe19f605b6f54a8352e68d85a629abb2d30b72a085faef603a9152590baa791"},
	{"linux-headers.deb", "pool/main/l/linux/linux-headers-6.1.0-50-cloud-amd64_6.1.176-1_amd64.deb",
		"9fdb34aac8cbd0519c78c2e69db5a4d02df1e82a797bfde0dbbe7a1da4379a92"},
	{"linux-headers-common.deb", "pool/main/l/linux/linux-headers-6.1.0-50-common_6.1.176-1_all.deb",
		"7f6f7bee50efbc36dc02c976be5982b96cf36abe544f03f09368e98cfcc5ac3b"},
	{"linux-kbuild.deb", "pool/main/l/linux/linux-kbuild-6.1_6.1.176-1_amd64.deb",
		"667d2e1e94047031c3bcefa4bb67c2520bbc3cc1cce0aa592e67b108dbbead03"},
}

// demoBuilderPackages are what the package, rootfs and tarfs steps need in
// the Debian builder image: a C toolchain (the demo sources are C), binutils
// for strip, kmod for depmod, and libelf/libssl for the kernel's kbuild
// helpers (gcc is gcc-12, the compiler Debian built the kernel with).
var demoBuilderPackages = []string{"binutils", "gcc", "kmod", "libc6-dev", "libelf1", "libssl3", "make"}

// demo builds the node-builder graph from Debian parts; it runs end to end
// on any Debian machine with runc and mmdebstrap.
type demo struct{}

func (demo) name() string { return "demo" }
func (demo) description() string {
	return "the node-builder graph from Debian parts: testdata/kata-src, a Debian builder image and rootfs, Debian's cloud kernel (runs anywhere)"
}
func (demo) osVersions() []string { return []string{"12"} }
func (demo) osVersionDoc() string {
	return "Debian release of the builder image and the rootfs (12 = bookworm)"
}
func (demo) distroName() string { return "debian" }
func (demo) defaultKataSrc(p *planner) string {
	return filepath.Join(p.env.ProjectDir, "testdata", "kata-src")
}
func (demo) virtiofsd(string) string                 { return "/usr/libexec/virtiofsd" }
func (demo) cgroupV2(string) bool                    { return true }
func (demo) toolchainEnv() string                    { return "" }
func (demo) cargoOffline(string) string              { return "" }
func (demo) vendorStep(*planner, string) *graph.Step { return nil }
func (demo) chronyConf() string                      { return "/etc/chrony/chrony.conf" }
func (demo) chronyUnit() string                      { return "/usr/lib/systemd/system/chrony.service" }

func (demo) builderImage(p *planner) imageRef {
	s := p.memo("builder-image", func() *graph.Step {
		return &graph.Step{
			ID:   "builder-image",
			Meta: graph.Meta{Description: "Debian " + demoSuite + " builder image (mmdebstrap)"},
			Spec: actions.DebianImageSpec(actions.DebianImageParams{
				Suite:           demoSuite,
				Packages:        demoBuilderPackages,
				SourceDateEpoch: p.cfg.epoch,
			}),
			Outputs: []string{"image"},
			Exec:    p.w.debianImage("builder-image"),
		}
	})
	return imageRef{step: s}
}

// packages maps the Azure Linux metapackages (spec §4.3) to Debian:
// kata-packages-uvm, systemd (+ systemd-sysv for /sbin/init), libseccomp,
// and for confpods kata-packages-uvm-coco.
func (demo) packages(c *config) []string {
	p := []string{
		"ca-certificates", "chrony", "cryptsetup-bin", "dbus", "libelf1", "iptables", "iproute2",
		"irqbalance", "liblz4-1", "sed", "systemd", "systemd-sysv", "tzdata", "zlib1g", "libseccomp2",
	}
	if c.confpods && !c.main() {
		// kata-packages-uvm-coco: 3.15 installs it for CONF_GUEST=yes;
		// msft-main's config.sh ignores CONF_GUEST.
		p = append(p, "cifs-utils", "dmsetup", "udev")
	}
	return p
}

// packagesLockName names the lock entry of a package set: the step ID and a
// digest of the list, so that another set (EXTRA_PKGS, another profile) is
// pinned on its own instead of failing as a mismatch of the default one.
func packagesLockName(id string, pkgs []string) string {
	sorted := append([]string(nil), pkgs...)
	sort.Strings(sorted)
	h := sha256.Sum256([]byte(strings.Join(sorted, " ")))
	return id + "@" + hex.EncodeToString(h[:6])
}

func (d demo) packagesStep(p *planner) *graph.Step {
	id := p.uvmTarget() + "/packages"
	return p.memo(id, func() *graph.Step {
		def, extra := p.rootfsPackages()
		return &graph.Step{
			ID:   id,
			Meta: graph.Meta{Description: "Debian " + demoSuite + " rootfs packages (mmdebstrap, pinned in uvmbuild.lock)"},
			Spec: actions.DebianImageSpec(actions.DebianImageParams{
				Suite:           demoSuite,
				Packages:        append(append([]string(nil), def...), extra...),
				SourceDateEpoch: p.cfg.epoch,
			}),
			Outputs: []string{"image", "rootfs.tar"},
			Exec:    p.w.debianImage(packagesLockName(id, append(append([]string(nil), def...), extra...))),
		}
	})
}

func (d demo) packagesInput(p *planner) graph.Input {
	return graph.Input{Name: "packages", From: d.packagesStep(p), Output: "rootfs.tar"}
}

// installPackages unpacks the mmdebstrap tar (device nodes are left out:
// the guest's /dev is a devtmpfs).
func (demo) installPackages(*planner) string {
	return "tar -xpf /in/packages -C \"$R\" --numeric-owner --exclude='./dev/*'\n"
}

// kernelDebs is the fetch step of the kernel and header packages.
func (demo) kernelDebs(p *planner) *graph.Step {
	id := p.uvmTarget() + "/kernel-debs"
	return p.memo(id, func() *graph.Step {
		var files []actions.FetchFile
		for _, d := range demoKernelDebs {
			files = append(files, actions.FetchFile{
				Name:   d.name,
				URLs:   p.w.debianURLs(d.pool),
				Digest: digest.NewDigestFromEncoded(digest.SHA256, d.sha256),
			})
		}
		return &graph.Step{
			ID:      id,
			Meta:    graph.Meta{Description: "Debian cloud kernel " + demoKernelRelease + " and headers (fetch, pinned by sha256)"},
			Spec:    actions.FetchSpec(files),
			Outputs: []string{"linux-image.deb", "linux-headers.deb", "linux-headers-common.deb", "linux-kbuild.deb"},
			Exec:    p.w.fetch(id, files),
		}
	})
}

func (demo) kernelDescription() string {
	return "Debian linux-image-" + demoKernelRelease + " " + demoKernelVersion
}

func (d demo) kernelStep(p *planner, id string) *graph.Step {
	debs := d.kernelDebs(p)
	script := "dpkg-deb --fsys-tarfile /in/linux-image.deb | tar -x -C /tmp ./boot/vmlinuz-" + demoKernelRelease + "\n" +
		"install -m 0644 /tmp/boot/vmlinuz-" + demoKernelRelease + " /out/bzImage\n" +
		"printf '%s\\n' " + demoKernelRelease + " > /out/kernel-release\n"
	return p.container(containerStep{
		id:      id,
		desc:    "bzImage of " + demoKernelRelease,
		image:   p.builderImage(),
		script:  script,
		inputs:  []graph.Input{{Name: "linux-image.deb", From: debs, Output: "linux-image.deb"}},
		outputs: []string{"bzImage", "kernel-release"},
	})
}

// tarfsStep builds the real tarfs module of the kata source against the
// Debian kernel headers, unpacked from their packages into the step's /tmp.
// The headers' Makefile includes the common headers by absolute path; the
// one sed points it at the unpacked copy.
func (d demo) tarfsStep(p *planner, id string) *graph.Step {
	debs := d.kernelDebs(p)
	k := "/tmp/kernel-headers"
	kdir := k + "/usr/src/linux-headers-" + demoKernelRelease
	script := copySource +
		"for d in /in/linux-headers.deb /in/linux-headers-common.deb /in/linux-kbuild.deb; do dpkg -x \"$d\" " + k + "; done\n" +
		"sed -i 's|^include /usr/src/|include " + k + "/usr/src/|' " + kdir + "/Makefile\n" +
		"cd " + buildDir + "/src/tarfs\n" +
		"make KDIR=" + kdir + "\n" +
		"make KDIR=" + kdir + " KVER=" + demoKernelRelease + " INSTALL_MOD_PATH=/out/modules install\n" +
		// The module must match the kernel the IGVM boots.
		"modinfo -F vermagic /out/modules/lib/modules/" + demoKernelRelease + "/extra/tarfs.ko | grep -q '^" + demoKernelRelease + " '\n"
	return p.container(containerStep{
		id:     id,
		desc:   "tarfs.ko for " + demoKernelRelease,
		image:  p.builderImage(),
		script: script,
		inputs: []graph.Input{
			p.kataSrc(),
			{Name: "linux-headers.deb", From: debs, Output: "linux-headers.deb"},
			{Name: "linux-headers-common.deb", From: debs, Output: "linux-headers-common.deb"},
			{Name: "linux-kbuild.deb", From: debs, Output: "linux-kbuild.deb"},
		},
		outputs: []string{"modules"},
	})
}
