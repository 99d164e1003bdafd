// Package rootfs writes deterministic root filesystem tars.
//
// [Normalize] reads any tar (ustar, PAX, GNU; optionally gzip or zstd
// compressed) and writes a normalised one; [WriteDir] writes one from a
// directory tree. Both produce the same bytes for the same tree:
//
//   - entries in depth-first order with the names of each directory sorted
//     bytewise (GNU tar --sort=name), every name prefixed "./", directories
//     ending in "/"; missing parent directories are added (mode 0755);
//   - PAX format; numeric uid/gid kept, user and group names cleared;
//     permission bits kept (setuid, setgid, sticky included);
//   - mtime clamped to Options.SourceDateEpoch and truncated to seconds,
//     atime and ctime dropped; of the extended attributes only those listed in
//     Options.Xattrs (default security.capability) are kept;
//   - hardlinks preserved: the first path of a group in output order carries
//     the content, the others link to it;
//   - later duplicates of a path replace earlier ones (tar extraction order).
//
// Unsafe input is rejected with an error naming the entry: absolute paths,
// ".." components, hardlinks leaving the tree or pointing at a missing file,
// relative symlinks whose target climbs above the root (absolute symlink
// targets are resolved inside the guest's root and are fine), entries below a
// non-directory, and unsupported entry types.
//
// A [Filter] lets the recipe drop run-dependent files (a directory drops its
// subtree) or replace their content by nothing (e.g. etc/machine-id);
// [Rules] is the declarative form, a list of path.Match patterns. Options.Add
// inserts small files (e.g. the empty etc/machine-id the node-builder touches).
//
// [Summary] reports entry counts, the apparent disk usage (as `du -B1` of
// the extracted tree on a 4 KiB-block file system) and the sha256 of the
// written tar, which uvmbuild uses as the seed that identifies the content.
package rootfs
