// SPDX-License-Identifier: GPL-2.0
/*
 * tarfs stand-in for the uvmbuild demo: a real, loadable module that only
 * logs on load. The real tarfs mounts a tar layer (from tardev-snapshotter)
 * as a read-only file system inside the confidential guest.
 */
#include <linux/init.h>
#include <linux/module.h>

static int __init tarfs_init(void)
{
	pr_info("tarfs: demo stand-in loaded\n");
	return 0;
}

static void __exit tarfs_exit(void)
{
}

module_init(tarfs_init);
module_exit(tarfs_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("tarfs stand-in (uvmbuild demo)");
