// Package image builds the Kata guest disk image (kata-containers.img) from a
// rootfs tar as a pure function of its content, without root, loop devices
// or mounts:
//
//  1. the tar is normalised (builder/rootfs) and its sha256 becomes the seed;
//  2. the image size follows the node-builder's rule, computed from the
//     rootfs disk usage and the ext4 layout model (builder/disk,
//     builder/ext4.Geometry), or is given;
//  3. the MBR is written (builder/disk), partition 1 is formatted in place by
//     mkfs.ext4 -d from the normalised tar (builder/ext4), and for a measured
//     image the dm-verity tree of partition 1 is written into partition 2
//     (builder/verity, no superblock by default: the kernelinit layout);
//  4. the image and the root hash files are written to temp files beside
//     their destinations and renamed only when everything succeeded.
//
// Derived values (unless pinned), with seed = sha256(normalised rootfs tar),
// or SHA-256(Options.Seed ‖ 0x00 ‖ that digest) when the recipe sets a seed
// label:
//
//	ext4 UUID      = verity.DeriveUUIDWithLabel("uvmbuild ext4 uuid v1", seed)
//	ext4 hash_seed = verity.DeriveUUIDWithLabel("uvmbuild ext4 hash seed v1", seed)
//	verity salt    = verity.DeriveSalt(seed)   (32 bytes, like veritysetup's default)
//	verity UUID    = verity.DeriveUUID(seed)   (only written with a superblock)
//	MBR disk id    = disk.DeriveDiskID(seed)
//
// The ext4 image is a function of the normalised tar and the pinned mkfs
// parameters, so a seed of the tar identifies the protected content as well
// as a digest of the partition would, and costs no extra pass.
package image
