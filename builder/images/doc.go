// Package images brings OCI images into a build, pinned by digest.
//
// An image comes from one Source: an OCI image layout directory, a `docker
// save` tarball, or a registry reference. Store.Resolve turns a source into
// the manifest digest a step's key is computed from: a pinned digest is
// used as is; otherwise the digest recorded in uvmbuild.lock under the
// source's Name; otherwise the source is resolved once (a registry tag is
// looked up, a layout or tarball is hashed) and recorded in the lock. A lock
// entry that no longer matches (a re-tagged layout, an edited tarball) is a
// *lockfile.MismatchError naming the entry and both digests.
//
// Store.Image imports an image into the store (under the caller's cache
// directory) once: pulled or copied into a private OCI layout, then every
// blob is re-hashed (manifest, config, each layer's compressed digest and
// uncompressed diffID; gzip and zstd through klauspost/compress) and every
// tar header is checked before the layout is renamed into place. A tampered
// layer, a digest mismatch or an unknown image is an error and leaves nothing
// in the store. With the lock present and the store warm, no network is
// used.
//
// Store.Rootfs unpacks an image into a root file system cached by image
// digest, in one pass per layer that also re-hashes it. Layers are applied
// bottom first, as a runtime does: whiteouts remove lower-layer entries,
// opaque whiteouts empty a directory of lower-layer content, an entry of
// another type replaces what was there. Unpacking refuses entries whose path
// leaves the root or goes through a symlink (also one from a lower layer:
// layers that write through a symlinked directory are refused, not
// resolved), relative links whose target escapes the root and hard links to
// outside it, and keeps owners
// (numeric, lchown before chmod so setuid/setgid survive), modes, file
// capabilities and times. Device nodes are skipped (the runtime provides
// /dev). It creates the mount points the sandbox needs (/in, /out, /tmp,
// /proc, /sys, /dev). Unpacking goes to a temporary directory renamed into
// place, so a crash or an error leaves no half-unpacked root.
//
// WriteLayout turns a root file system tar into a deterministic one-layer
// OCI layout (uncompressed layer, config created at SOURCE_DATE_EPOCH), the
// form the DebianImage action produces.
//
// Layout of the store (Store.Dir):
//
//	images/oci/<hex>/     OCI layout holding the one image <hex>
//	images/rootfs/<hex>/  its unpacked root
//	images/tmp/           work directories, renamed into place when complete
package images
