// Package builder holds no code: it documents the architecture of
// uvmbuild's build machinery, and its layering test enforces it.
//
// Data flows one way: cmd/uvmbuild → recipes → builder/graph →
// builder/actions → (builder/sandbox | artifact libraries).
//
//   - builder/graph is the engine: a DAG of steps, each keyed by a digest of
//     its spec and the content of its inputs; a parallel scheduler (-j, -k,
//     cancellation); the dry-run explanation behind `uvmbuild plan`; and
//     the atomic placement of outputs into out/. It defines the Executor and
//     Store interfaces it consumes and never imports an implementation.
//   - builder/cache is the local content-addressed Store (blobs by digest,
//     action cache by key, per-key file locks, prune), satisfying graph.Store
//     without importing the graph.
//   - builder/progress carries build events to a tty, plain or JSON
//     renderer; builder/record is the build.json schema.
//   - builder/actions wraps each action kind (container steps through
//     builder/sandbox, native Go steps over an artifact library) as a
//     graph.Executor; it is the only package that knows both sides.
//   - Artifact libraries (kernel, igvm, snp, acpi, igvmgen, verity, disk,
//     ext4, rootfs) take bytes, readers and parameter structs and import
//     nothing of the graph, the cache, the sandbox, the recipes or cobra.
//   - Leaves any layer may use, stdlib only: builder/atomicfile (replace a
//     file all at once: temp file beside it, chmod, fsync, rename) and
//     builder/filemode (Unix 0o7777 bits as manifests keep them ↔
//     fs.FileMode).
//   - recipes turn make-style targets and variables into steps; cmd/uvmbuild
//     /cli is a thin cobra shell over all of it.
//
// layering_test.go checks these rules on every `go test ./...` with
// `go list`: each package's direct imports against an allow-list, and the
// transitive dependencies of libraries against a deny-list.
package builder
