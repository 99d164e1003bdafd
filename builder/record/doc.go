// Package record defines build.json, the record every uvmbuild build writes
// into its output directory: the recipe, targets and variables, every action
// in graph order with its key, input digests, output manifest, whether it was
// served from the cache, and the materialised artifacts.
//
// Other commands (verify, provenance, diff) read it, and records of builds run
// in different directories are compared, so it holds no host paths: log paths
// are relative to the cache directory and input sources name files by their
// input name, not their location.
//
// The file is written atomically (temp file beside it, fsync, rename).
package record
