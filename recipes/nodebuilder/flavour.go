package nodebuilder

import (
	"github.com/uvmbuild/uvmbuild/builder/graph"
)

// flavour is what differs between the azure-linux and the demo recipe: where
// the builder image, the packages and the kernel come from, and the paths of
// the target distribution. The graph shape is the same.
type flavour interface {
	name() string
	description() string
	// osVersions are the accepted OS_VERSION values, the default first.
	osVersions() []string
	osVersionDoc() string
	// distroName is base-distro.name in osbuilder.yaml.
	distroName() string
	// defaultKataSrc is the kata source when --kata-src is not given.
	defaultKataSrc(p *planner) string
	// virtiofsd is DEFVIRTIOFSDAEMON; cgroupV2 selects DEFSANDBOXCGROUPONLY.
	virtiofsd(osVersion string) string
	cgroupV2(osVersion string) bool
	// toolchainEnv is shell set-up prepended to make in package steps;
	// cargoOffline points cargo at vendored crates for a source dir.
	toolchainEnv() string
	cargoOffline(dir string) string
	// vendorStep yields vendored crates for a source dir (nil if none).
	vendorStep(p *planner, dir string) *graph.Step
	builderImage(p *planner) imageRef
	// packages is the rootfs package set; packagesStep provides it.
	packages(c *config) []string
	packagesStep(p *planner) *graph.Step
	// packagesInput is the rootfs step's "packages" input.
	packagesInput(p *planner) graph.Input
	// installPackages populates $R from /in/packages.
	installPackages(p *planner) string
	chronyConf() string
	chronyUnit() string
	kernelStep(p *planner, id string) *graph.Step
	// kernelDescription names the guest kernel for the build record.
	kernelDescription() string
	tarfsStep(p *planner, id string) *graph.Step
}
