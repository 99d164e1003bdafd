// Package deploy installs the node-builder's build outputs where containerd,
// the kata shim and the kubelet look for them, and generates the host
// integration files.
//
// It replaces package_install.sh, package_tools_install.sh and
// uvm_install.sh (spec §7): Layout maps artifacts to destinations per
// variant and profile, honouring PREFIX, UVM_PATH, SHIM_REDEPLOY_CONFIG,
// SHIM_USE_DEBUG_CONFIG and START_SERVICES; Install copies them under a
// root with explicit modes, each file replaced atomically (temporary file
// beside the destination, fsync, rename; no `~N~` backups), and records
// what it installed in a manifest (path, digest, mode) under the root, so
// Uninstall removes exactly that and a second Install writes nothing.
//
// ContainerdConfig and RuntimeClass generate the containerd fragment for the
// kata / kata-cc runtimes (with the tardev snapshotter for kata-cc) and the
// node.k8s.io/v1 RuntimeClass manifests; Layout installs them under
// /usr/share/uvmbuild/host/.
//
// # Wiring in a recipe
//
// A deploy target writes outside the build's output directory, so it is not
// a graph step: the recipe makes the deploy target depend on the build
// targets BuildTargets(target) returns (so the artifacts are built, or found
// in the cache, and materialised into the output directory under the
// Source* names), and after the build calls
//
//	p, err := deploy.ParamsFromVars(target, vals, outDir, kataSrc)
//	res, err := deploy.Deploy(ctx, root, p, os.Stderr,
//		deploy.WithExpectedDigests(digestsFromBuildJSON))
//
// where root is --root ("" for the live system).
//
// The package imports only the standard library.
package deploy
