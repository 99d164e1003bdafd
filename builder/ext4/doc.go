// Package ext4 makes reproducible ext4 file systems from a tar with the real
// mkfs.ext4 (e2fsprogs ≥ 1.47.1), and models their geometry so image sizes can
// be computed without formatting anything.
//
// [Make] runs
//
//	MKE2FS_CONFIG=<pinned mke2fs.conf> SOURCE_DATE_EPOCH=<sde> TZ=UTC LC_ALL=C.UTF-8 \
//	mkfs.ext4 -q -F -t ext4 -T default -b 4096 -I 256 -m <reserved> -U <uuid> \
//	  -E hash_seed=<seed>,root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0,nodiscard,offset=<off> \
//	  -d <rootfs.tar> <file> <blocks>
//
// with a clean environment. The pinned configuration (mke2fs.conf, embedded)
// fixes the feature set; -U and hash_seed fix the random identifiers;
// SOURCE_DATE_EPOCH fixes the superblock times and clamps every inode time
// (e2fsprogs ≥ 1.47.1, which also walks directories in sorted order). The
// file system is written at an offset into an existing file, so a disk image
// needs neither a loop device nor a copy. The mkfs binary is an option, so a
// recipe can run a pinned one (e.g. inside the builder container).
//
// [Version] and [CheckVersion] reject e2fsprogs older than 1.47.1 with an
// error naming the installed version and how to get a newer one.
//
// [Geometry] reproduces mke2fs's layout arithmetic for the pinned
// configuration (groups, inode tables, superblock backups, reserved GDT
// blocks, journal size, reserved blocks) and so the space `df` reports as
// available on the empty file system; tests check it against dumpe2fs.
package ext4
