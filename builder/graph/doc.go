// Package graph is uvmbuild's build engine: a DAG of Steps with real data
// edges, each identified by a key, scheduled in parallel with results kept
// in a content-addressed Store.
//
// A step's key is the SHA-256 of the canonical JSON of its KeyMaterial:
// the key schema version (KeySchema), Spec.Kind, Spec.Version, Spec.Image,
// the canonical Params (sorted keys, normalised numbers), each input's name
// and content digest, and the declared outputs. Step.ID and Step.Meta are
// not part of it: two steps doing the same work share one result. Inputs
// are digested by content, never by path or time: a host file as its
// content plus its executable bit, a host tree as a canonical tree digest
// (paths, types, exec bits, contents, symlink targets; Ignore patterns
// excluded), an upstream output by the digests and exact modes in its
// manifest — so a step whose rebuild gives identical bytes does not
// invalidate what follows it. Host inputs are hashed once per build, and
// their digests are remembered across builds (WorkDir/filehashes.json,
// keyed by path, device, inode, size, mtime and ctime, never trusted for a
// file modified within two seconds of being hashed), so a no-op build does
// not re-read a large source tree.
//
// Build walks the graph in topological order with one goroutine per step
// (errgroup), at most Jobs steps running or hashing at once (a weighted
// semaphore), steps with equal keys run once (singleflight, and a per-key
// file lock in the store across processes). The first failure cancels the
// rest unless KeepGoing. A step's outputs are stored only after it
// succeeded and was not cancelled, so the store never holds a partial
// entry. A corrupt blob found when an output is read back makes its step
// be rebuilt.
//
// Explain is the dry run behind `uvmbuild plan`: for each step, cached or
// not and, for a miss, the differences against the key material of the
// last build of the same step ID, kept in WorkDir/history.
//
// Result.Materialize places chosen outputs into the output directory: all
// staged first, then renamed into place, so a failure leaves it untouched.
//
// The package never imports an executor; recipes wire executors
// (builder/actions) into Steps.
package graph
