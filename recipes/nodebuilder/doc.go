// Package nodebuilder is the Azure Linux node-builder
// (tools/osbuilder/node-builder/azure-linux in microsoft/kata-containers) as a
// uvmbuild recipe: the targets all, all-confpods, package, package-confpods,
// uvm, uvm-confpods, clean and clean-confpods, with the Makefile's variables
// and defaults, as a build graph whose edges are the real data dependencies.
//
// Two flavours share one graph shape (New):
//
//   - "azure-linux" builds what the node-builder builds on an Azure Linux host:
//     the builder is an Azure Linux image, packages come from tdnf, the kernel
//     is kernel-uvm. It cannot run on this project's Debian CI; golden tests of
//     its plan pin every command, flag, path and file name per profile and
//     variant.
//   - "demo" builds the same graph from Debian parts so it runs anywhere
//     (the default recipe): a Debian builder image made with mmdebstrap, the
//     small kata-shaped source tree in testdata/kata-src, a Debian rootfs with
//     systemd, and the bzImage of Debian's cloud kernel package.
//
// # Graph
//
// package[-confpods]: runtime (make with the node-builder's flags), the debug
// shim configuration, the agent (make + make install into agent-install), and
// for confpods utarfs, kata-overlay and tardev-snapshotter; each is a
// container step in the builder image, keyed by the content of the kata
// source tree (not its git state).
//
// uvm[-confpods]: package download (a fetch step, pinned in uvmbuild.lock),
// rootfs assembly (a hermetic container step doing what rootfs.sh and
// uvm_build.sh do), normalisation into a deterministic tar, the ext4 image
// (with dm-verity for confpods), and for confpods the production and debug
// IGVM files and their measurement files.
//
// Latent bugs of the Makefile are fixed, not copied: uvm depends on the agent
// step (the Makefile has no uvm → package edge); the IGVM steps consume the
// verity parameters of the image they embed (no stale root_hash.txt can be
// used, and clean removes root_hash.txt); outputs are materialised atomically
// instead of with cp --backup=numbered.
//
// # Profiles
//
// PROFILE selects the behaviour of one of the two lines of development that
// carry the node-builder (spec §0, §12): release-3.15 (the default; the line
// that builds AKS confidential UVMs) or msft-main. They differ in runtime
// flags, agent flags, the debug shim configuration, the systemd units deleted
// from the rootfs, the coco package set and the image layout.
//
// # Policy
//
// AGENT_POLICY_FILE names a policy: a file of that name in the kata source's
// src/kata-opa/ if there is one, else one of the policies built into
// uvmbuild (package policy), or a path. It is checked with package policy
// before any step runs; its digest is recorded in build.json. Only the rootfs
// step consumes it, so swapping the policy re-runs the rootfs, normalisation,
// image and IGVM steps and nothing else.
package nodebuilder
