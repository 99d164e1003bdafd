package cli

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/uvmbuild/uvmbuild/builder/disk/image"
	"github.com/uvmbuild/uvmbuild/builder/rootfs"
)

type imageOptions struct {
	rootfs, output           string
	measured, superblock     bool
	rootHashFile, rootHashJS string
	salt, uuid, fsUUID, seed string
	diskID                   string
	sde                      int64
	sizeMiB, alignMiB        int64
	mkfs                     string
	reserved                 int
	drop, empty              []string
	skipInitCheck, json      bool
}

func newImageCmd() *cobra.Command {
	var o imageOptions
	cmd := &cobra.Command{
		Use:   "image --rootfs ROOTFS.tar -o kata-containers.img [--measured] [--root-hash-file F]",
		Short: "Build the guest disk image from a rootfs tar (reproducible, no root or loop devices)",
		Long: `Builds kata-containers.img as the node-builder's image_builder.sh lays it out: an MBR,
partition 1 = ext4 (mkfs.ext4 -d from the normalised rootfs tar, e2fsprogs >= 1.47.1),
and with --measured partition 2 = the dm-verity hash tree of partition 1 (no superblock,
the kernelinit layout). The size follows the node-builder's rule unless --size-mib is given.

The ext4 UUID and hash seed, the verity salt and the MBR disk id are derived from the
rootfs content unless pinned. SOURCE_DATE_EPOCH (or --source-date-epoch) sets all times.
For a measured image the root_hash.txt text is printed on stdout (and written to
--root-hash-file).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 {
				return usageError(fmt.Errorf("unexpected arguments %q", args))
			}
			if o.rootfs == "" || o.output == "" {
				return usageError(fmt.Errorf("--rootfs and -o are required"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return runImage(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.rootfs, "rootfs", "", "rootfs tar (any tar, optionally gzip or zstd)")
	f.StringVarP(&o.output, "output", "o", "", "image file to write")
	f.BoolVar(&o.measured, "measured", false, "add the dm-verity hash partition (MEASURED_ROOTFS=yes)")
	f.BoolVar(&o.superblock, "verity-superblock", false, "write a verity superblock (upstream layout; default: kernelinit, none)")
	f.StringVar(&o.rootHashFile, "root-hash-file", "", "write root_hash.txt (veritysetup text) here")
	f.StringVar(&o.rootHashJS, "root-hash-json", "", "write the root hash information as JSON here")
	f.StringVar(&o.salt, "salt", "", "verity salt as hex, or - for none (default: derived from the rootfs)")
	f.StringVar(&o.uuid, "uuid", "", "verity superblock UUID (default: derived)")
	f.StringVar(&o.fsUUID, "fs-uuid", "", "ext4 UUID (default: derived)")
	f.StringVar(&o.seed, "hash-seed", "", "ext4 htree hash seed UUID (default: derived)")
	f.StringVar(&o.diskID, "disk-id", "", "MBR disk identifier, hex (default: derived)")
	f.Int64Var(&o.sde, "source-date-epoch", -1, "time stamp for every file and the file system (default: $SOURCE_DATE_EPOCH, else 0)")
	f.Int64Var(&o.sizeMiB, "size-mib", 0, "image size in MiB (default: the node-builder's size rule)")
	f.Int64Var(&o.alignMiB, "align-mib", 0, "IMAGE_SIZE_ALIGNMENT_MB (default: $IMAGE_SIZE_ALIGNMENT_MB, else 2)")
	f.StringVar(&o.mkfs, "mkfs", "", "mkfs.ext4 binary (default: from PATH)")
	f.IntVar(&o.reserved, "reserved-percent", image.DefaultReservedPercent, "ext4 reserved blocks percent")
	f.StringArrayVar(&o.drop, "drop", nil, "leave out rootfs paths matching this pattern (path.Match; repeatable)")
	f.StringArrayVar(&o.empty, "empty", nil, "empty regular files matching this pattern (repeatable)")
	f.BoolVar(&o.skipInitCheck, "skip-init-check", false, "do not require /sbin/init and systemd in the rootfs")
	f.BoolVar(&o.json, "json", false, "print the build result as JSON")
	return cmd
}

func runImage(cmd *cobra.Command, o imageOptions) error {
	// The command line is the edge that reads the environment (style P6).
	if o.sde < 0 {
		o.sde = 0
		if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("SOURCE_DATE_EPOCH=%q: not a non-negative integer", v)
			}
			o.sde = n
		}
	}
	if o.alignMiB == 0 {
		if v := os.Getenv("IMAGE_SIZE_ALIGNMENT_MB"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return fmt.Errorf("IMAGE_SIZE_ALIGNMENT_MB=%q: not a positive integer", v)
			}
			o.alignMiB = n
		}
	}
	opts := image.Options{
		Rootfs: o.rootfs, Output: o.output, Measured: o.measured, VeritySuperblock: o.superblock,
		SizeMiB: o.sizeMiB, AlignMiB: o.alignMiB, SourceDateEpoch: o.sde,
		FSUUID: o.fsUUID, HashSeed: o.seed, VerityUUID: o.uuid, Mkfs: o.mkfs, Reserved: &o.reserved,
		SkipInitCheck: o.skipInitCheck, RootHashFile: o.rootHashFile, RootHashJSON: o.rootHashJS,
	}
	switch o.salt {
	case "":
	case "-":
		opts.Salt = []byte{}
	default:
		s, err := hex.DecodeString(o.salt)
		if err != nil {
			return fmt.Errorf("--salt %q: not hex: %w", o.salt, err)
		}
		opts.Salt = s
	}
	if o.diskID != "" {
		id, err := strconv.ParseUint(o.diskID, 16, 32)
		if err != nil {
			return fmt.Errorf("--disk-id %q: want up to 8 hex digits: %w", o.diskID, err)
		}
		v := uint32(id)
		opts.DiskID = &v
	}
	if len(o.drop) > 0 || len(o.empty) > 0 {
		flt, err := rootfs.Rules{Drop: o.drop, Empty: o.empty}.Filter()
		if err != nil {
			return err
		}
		opts.Filter = flt
	}
	res, err := image.Build(cmd.Context(), opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d MiB, rootfs %s (%d entries), ext4 UUID %s, mke2fs %s\n",
		o.output, res.Layout.Size>>20, res.RootfsSHA256, res.Rootfs.Entries, res.FSUUID, res.Mke2fsVersion)
	out := cmd.OutOrStdout()
	if o.json {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	}
	if res.Verity != nil {
		_, err = fmt.Fprint(out, res.Verity.Text())
	}
	return err
}
