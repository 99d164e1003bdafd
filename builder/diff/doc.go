// Package diff explains how two build artifacts differ, down to the cause.
//
// [Files] compares two files or two directory trees (for example two out/
// directories) and picks a structured comparison by content:
//
//   - IGVM files: the fixed header, then each variable header, then guest
//     memory page by page, naming what a differing region holds (kernel
//     command line, boot_params, VMSA, CPUID page, ACPI table SIG, kernel,
//     initrd, ID block) and printing both command lines when they differ.
//   - measurement files and other flat JSON objects: key by key.
//   - veritysetup's root_hash.txt: field by field.
//   - disk images: the MBR partition table, each partition's ext4 or
//     dm-verity superblock field by field, then the differing byte ranges
//     named by partition, 4 KiB block and ext4 structure (superblock, group
//     descriptors, bitmaps, inode table, journal, data), and down to the
//     file: differing inodes with their paths and fields, the owners of
//     differing data blocks.
//   - tar archives (plain, gzip or zstd): per entry path, type, mode, owner,
//     mtime, size and content digest, then a unified diff for small text
//     files.
//   - anything else: small text files get a unified diff, binary files the
//     first differing offset, the number of differing bytes and a hexdump of
//     both sides around the first difference.
//
// [Records] compares two build records (build.json) action by action in
// graph order and reports the first action whose outputs diverge; later
// divergences are usually its consequences.
//
// Large files are streamed with fixed-size buffers: memory stays bounded by
// the buffer sizes and the number of tar entries, never by file sizes.
package diff
