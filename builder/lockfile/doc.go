// Package lockfile reads and writes uvmbuild.lock, the file next to a recipe
// that pins everything a build takes from outside: image references resolved
// to digests, and the checksums of what fetch steps download.
//
// The file is JSON with sorted keys (one entry per name):
//
//	{
//	  "version": 1,
//	  "entries": {
//	    "busybox": {"ref": "docker.io/library/busybox:1.36", "digest": "sha256:…"},
//	    "builder-image": {"digest": "sha256:…", "checksums": {"rootfs.tar": "sha256:…"}}
//	  }
//	}
//
// An entry is written once, the first time a name is resolved; later builds
// read it and fail with a *MismatchError, naming the entry and both digests,
// when what they resolve or fetch no longer matches. Writes are atomic (a
// temporary file beside the lock, fsync, rename) and serialised between
// processes by an advisory lock on the directory holding the file, so two
// builds recording entries at once lose neither.
package lockfile
