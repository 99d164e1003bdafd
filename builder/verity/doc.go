// Package verity builds dm-verity hash trees (on-disk format version 1, the
// veritysetup default) byte for byte identical to `veritysetup format` from
// cryptsetup 2.6, and reads them back.
//
// # Format
//
// The data device is split into data blocks (DataBlockSize, a power of two
// from 512 to 512 KiB). Each block is hashed as H(salt ‖ block). Digests are
// stored in hash blocks (HashBlockSize) in slots of the digest size rounded up
// to a power of two, so a 4096-byte hash block holds 128 sha256 digests.
// Level 0 holds the digests of the data blocks, level k+1 the digests of the
// blocks of level k, until a level has a single block; the root hash is the
// digest of that block (or of the only data block when there is just one).
// The hash device holds an optional 512-byte superblock padded to one hash
// block, then the top level first and level 0 last. The kernel table's
// hash_start_block is therefore 1 with a superblock and 0 without (the
// `kernelinit` layout of the confidential image, veritysetup --no-superblock).
//
// # Streaming, parallel, bounded
//
// [Format] reads the data once, sequentially, in 1 MiB jobs hashed by one
// worker per CPU (at most 16); an in-order committer packs the digests into
// one partial hash block per level and writes each block once it is full.
// Memory is 2·workers+2 MiB of buffers whatever the data size; nothing but
// the hash device is written. [FormatFile] does the same on a file region,
// with each worker mapping its 1 MiB job from the page cache and unmapping
// it after hashing: no copy, no reader, one job per worker resident.
//
// # Determinism
//
// The package never reads a clock or a random source: salt and superblock
// UUID are parameters. [DeriveSalt] and [DeriveUUID] compute them from a seed
// that identifies the protected content (uvmbuild uses the sha256 of the
// normalised rootfs tar, see docs/image.md):
//
//	salt = SHA-256("uvmbuild verity salt v1" ‖ 0x00 ‖ seed)            (32 bytes)
//	uuid = SHA-256("uvmbuild verity uuid v1" ‖ 0x00 ‖ seed)[0:16], RFC 9562 version 8
//
// [ContentSeed] computes a seed from the data itself (a parallel chunked
// sha256), for the standalone command when no salt is pinned.
//
// # Output text
//
// [Info] renders the `veritysetup format` report (root_hash.txt, parsed by the
// node-builder's IGVM step), a JSON form, and the dm-mod.create= kernel
// argument.
package verity
