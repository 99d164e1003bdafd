// Package actions holds the executors of build steps: each action kind as a
// graph.Executor over the sandbox or an artifact library. It is the only
// package that knows both the graph and the tools.
//
// # Container steps
//
// A container step runs a command in an image's root file system under runc
// (builder/sandbox). Everything that decides its output is in the step's
// Spec, so it is in the key: declare it with ContainerSpec and run it with a
// *Container (one value can serve every step; it holds only wiring):
//
//	store := &images.Store{Dir: cacheDir, Lock: lockfile.Open("uvmbuild.lock")}
//	busybox := images.Source{Name: "busybox", Ref: "docker.io/library/busybox:1.36"}
//	img, err := store.Resolve(ctx, busybox) // digest from the lock, or resolved once and recorded
//	run := &actions.Container{Images: store, Sources: []images.Source{busybox}}
//	step := &graph.Step{
//		ID:      "demo/hello",
//		Spec:    actions.ContainerSpec(img, actions.ContainerParams{
//			Script:          "cp /in/src/hello.txt /out/hello.txt",
//			SourceDateEpoch: 1700000000,
//		}),
//		Inputs:  []graph.Input{{Name: "src", Path: "testdata/src"}},
//		Outputs: []string{"hello.txt"},
//		Exec:    run,
//	}
//
// Inside the container: inputs at /in/<name> (read-only), the one writable
// directory /out (the step's output directory), tmpfs /tmp, no network
// (only lo), read-only root, hostname "uvmbuild", umask 022, and exactly this
// environment plus ContainerParams.Env:
//
//	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
//	SOURCE_DATE_EPOCH=<param>  TZ=UTC  LC_ALL=C  LANG=C  HOME=/tmp  TMPDIR=/tmp
//
// The image is either Spec.Image (a manifest digest, unpacked from the image
// store; Container.Sources say where to get it the first time) or, when
// ContainerParams.ImageInput names an input, the OCI layout directory that
// input holds (e.g. the "image" output of a DebianImage step); that input is
// not mounted under /in, and its content digest is already in the key.
//
// After the command exits 0 the output directory is normalised
// (sandbox.Normalize: owners 0:0, modes 0644/0755, mtimes clamped to
// SOURCE_DATE_EPOCH). A failing command returns a *sandbox.ExitError that
// carries the log tail; a timeout a *sandbox.TimeoutError.
//
// Normalisation fixes the metadata of the output files, not what a tool
// writes inside them: a step that archives files must clamp their times
// itself (GNU tar --mtime=@$SOURCE_DATE_EPOCH --clamp-mtime --sort=name
// --numeric-owner). And because it drops owners and setuid bits, a root
// file system leaves a step as a tar, never as a directory tree.
//
// # Fetch steps
//
// Fetch steps are the only steps with network. Each file is declared with
// its sha256 (FetchSpec puts names and digests, not URLs, in the key: a
// mirror change does not invalidate the cache); the executor downloads to a
// temporary file, verifies, renames, and records the checksums in
// uvmbuild.lock under the step's lock name. With the lock present and the
// cache warm nothing is fetched. A file declared without a digest is pinned
// by the lock on first use; a later download that differs is a
// *lockfile.MismatchError naming both digests. When the recipe changes a
// declared digest (a version bump) the lock entry follows the recipe.
//
// # Debian images
//
// DebianImageSpec + *DebianImage build a Debian root file system with
// mmdebstrap (pinned suite, package list, optional packages from
// <suite>-backports, SOURCE_DATE_EPOCH) and write it as an OCI layout with
// one uncompressed layer (digest independent of any compressor). The mirror
// is read from the machine's apt configuration at run time and is not part
// of the key. Declare the outputs you need:
//
//	step := &graph.Step{
//		ID: "builder-image",
//		Spec: actions.DebianImageSpec(actions.DebianImageParams{
//			Suite:           "bookworm",
//			Packages:        []string{"make", "gcc", "acpica-tools"},
//			Backports:       []string{"e2fsprogs"},
//			SourceDateEpoch: 1700000000,
//		}),
//		Outputs: []string{"image", "rootfs.tar", "packages.txt"},
//		Exec:    &actions.DebianImage{Lock: lock, LockName: "builder-image"},
//	}
//
// "image" is the OCI layout directory (feed it to container steps as an
// input named by ContainerParams.ImageInput), "rootfs.tar" the mmdebstrap
// tar (usable directly as a demo root file system), "packages.txt" the
// installed packages with versions. Only "image" is required; list the ones
// you consume. The image digest is recorded in uvmbuild.lock under LockName
// together with a fingerprint of the spec; a later build of the same spec
// that produces another digest (the mirror moved on) fails with a
// *lockfile.MismatchError, while a changed spec re-pins the entry.
package actions
