// Package cache is uvmbuild's local content-addressed store: file blobs by
// digest and an action cache mapping a step key to its output manifest. It
// satisfies graph.Store without importing the graph (manifests are opaque
// bytes here).
//
// Layout under the cache directory (default $XDG_CACHE_HOME/uvmbuild, i.e.
// ~/.cache/uvmbuild; UVMBUILD_CACHE or --cache-dir override it):
//
//	lock                         shared by builds, exclusive for prune
//	blobs/sha256/ab/<hex>.<mode> file contents, one hard-linkable copy per
//	                             permission mode (e.g. ".0755")
//	ac/ab/<key>.json             action entries: a header line (checksum of
//	                             the manifest and the blobs it uses), then
//	                             the manifest
//	locks/ab/<key>.lock          per-key locks, so two processes never run
//	                             the same step at once
//	logs/, history/, tmp/        the graph's step logs, per-step key history
//	                             and run scratch space
//	filehashes.json              the graph's remembered host file digests
//
// Every write goes to a temp file in the destination directory and is
// renamed into place; an action entry is written (and fsynced) only after
// the blobs it references are flushed (an fsync each, in parallel, or one
// syncfs for a step with many output files). Every blob is digest-checked when it is read back
// (once per process and file); a corrupt blob or entry is evicted with a
// warning and reported as missing, so the step that made it is rebuilt.
// Several uvmbuild processes may share one cache directory.
package cache
