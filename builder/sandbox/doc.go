// Package sandbox runs one build step in a hermetic runc container.
//
// Run writes an OCI bundle (config.json built with the runtime-spec Go types)
// and calls the real runc binary (Debian package "runc"). The container gets:
//
//   - the image's unpacked root file system, read-only;
//   - each input bind-mounted read-only at /in/<name> (on a tmpfs /in that is
//     itself remounted read-only, so nothing can be added there either);
//   - exactly one writable directory, /out, and a private tmpfs /tmp;
//   - new pid, ipc, uts, mount, cgroup and network namespaces; the network
//     namespace has only the loopback interface (fetch steps alone may ask
//     for the host network);
//   - a fixed environment built by the caller (nothing from the host), a
//     fixed hostname, umask 022, uid 0 with a small capability set, no new
//     privileges, memory, pids and open-file limits;
//   - stdin from /dev/null; stdout and stderr to the step's log (runc copies
//     them through separate pipes, so lines of the two streams may be
//     interleaved slightly out of order).
//
// A timeout or a cancelled context kills the container (runc kill KILL) and
// deletes its state (runc delete --force) under context.WithoutCancel, so no
// container and no mount is left behind; all mounts live in the container's
// own mount namespace and vanish with it.
//
// Seccomp is not configured: the default moby profile depends on the host
// kernel version (which would leak into configs that are hashed) and costs
// about 25 ms per start; the step's isolation rests on namespaces, the
// reduced capability set and no-new-privileges.
//
// Normalize fixes what a tool's environment could leak into outputs (owner,
// umask-dependent modes, timestamps) before the graph ingests them.
package sandbox
