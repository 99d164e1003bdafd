// Package disk lays out the Kata guest disk image the way the node-builder's
// image_builder.sh (Kata 3.15 / Microsoft lineage, no DAX header) does, and
// writes its MBR, without loop devices, parted or root.
//
// # Layout
//
// An MBR (msdos) partition table with 512-byte sectors and partitions of type
// 0x83:
//
//   - plain image: partition 1 from 1 MiB to the last sector;
//   - measured image: partition 1 from 1 MiB to H MiB, partition 2 (the
//     dm-verity hash tree) from H MiB to the last sector, partition 1
//     bootable; H = floor(size_MiB × 0.99) as the script computes it with awk
//     (%.6g, cut at the decimal point).
//
// # Size rule
//
// [ImageSizeMiB] reproduces the script's size search without formatting
// anything: with R = the rootfs disk usage in MiB (rounded up), the probe
// size D = R + 10·i for the first i ≥ 1 where the ext4 file system in
// partition 1 of a D MiB disk has more than R MiB available (the caller
// supplies that from a layout model, see builder/ext4.Geometry); the image is
// then round_up(D + 2, alignment) − 2 MiB, the file size of the 3.15 script.
//
// # Disk identifier
//
// parted writes a random 32-bit disk identifier. [DeriveDiskID] derives it
// from the content instead: the first 4 bytes (little endian) of
// SHA-256("uvmbuild mbr disk id v1" ‖ 0x00 ‖ seed), never zero.
package disk
