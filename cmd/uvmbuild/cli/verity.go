package cli

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/uvmbuild/uvmbuild/builder/atomicfile"
	"github.com/uvmbuild/uvmbuild/builder/verity"
)

type verityOptions struct {
	salt          string
	uuid          string
	hash          string
	noSuperblock  bool
	dataBlockSize uint32
	hashBlockSize uint32
	json          bool
	dataDev       string
	hashDev       string
}

func newVerityCmd() *cobra.Command {
	var o verityOptions
	cmd := &cobra.Command{
		Use:   "verity DATA HASH",
		Short: "Format a dm-verity hash device for DATA into HASH (like veritysetup format)",
		Long: `Writes the dm-verity hash tree (format 1) of DATA to the file HASH, byte for byte
what "veritysetup format" writes, and prints veritysetup's report (the node-builder's
root_hash.txt) on stdout.

Unless pinned with --salt and --uuid, the salt and the superblock UUID are derived
from DATA's content (an extra read of DATA), so the same data always gives the same
root hash. --salt - means no salt.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerity(cmd, args[0], args[1], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.salt, "salt", "", "salt as hex (at most 256 bytes), or - for none (default: derived from DATA)")
	f.StringVar(&o.uuid, "uuid", "", "superblock UUID (default: derived from DATA)")
	f.StringVar(&o.hash, "hash", verity.DefaultHash, "hash algorithm")
	f.BoolVar(&o.noSuperblock, "no-superblock", false, "write the tree only (hash start block 0, the kernelinit layout)")
	f.Uint32Var(&o.dataBlockSize, "data-block-size", verity.DefaultBlockSize, "data block size in bytes")
	f.Uint32Var(&o.hashBlockSize, "hash-block-size", verity.DefaultBlockSize, "hash block size in bytes")
	f.BoolVar(&o.json, "json", false, "print the report as JSON (with the dm-mod.create= kernel argument)")
	f.StringVar(&o.dataDev, "data-device", "/dev/vda1", "guest data device named in the JSON's dm_mod_create")
	f.StringVar(&o.hashDev, "hash-device", "/dev/vda2", "guest hash device named in the JSON's dm_mod_create")
	return cmd
}

func runVerity(cmd *cobra.Command, dataPath, hashPath string, o verityOptions) error {
	ctx := cmd.Context()
	p := verity.Params{Hash: o.hash, DataBlockSize: o.dataBlockSize, HashBlockSize: o.hashBlockSize, NoSuperblock: o.noSuperblock}
	switch o.salt {
	case "", "-":
	default:
		s, err := hex.DecodeString(o.salt)
		if err != nil {
			return fmt.Errorf("--salt %q: not hex: %w", o.salt, err)
		}
		if len(s) > verity.MaxSaltSize {
			return fmt.Errorf("--salt: %d bytes, at most %d allowed", len(s), verity.MaxSaltSize)
		}
		p.Salt = s
	}
	if o.uuid != "" {
		u, err := verity.ParseUUID(o.uuid)
		if err != nil {
			return fmt.Errorf("--uuid: %w", err)
		}
		p.UUID = u
	}
	data, err := os.Open(dataPath)
	if err != nil {
		return err
	}
	defer data.Close()
	// Seek, not Stat: a block device's Stat size is 0.
	size, err := data.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("%s: %w", dataPath, err)
	}
	// Check the parameters before the (possibly long) derivation pass.
	if _, _, _, err := verity.Size(p, size); err != nil {
		return fmt.Errorf("%s: %w", dataPath, err)
	}
	if p.DataBlockSize > 4096 {
		fmt.Fprintf(cmd.ErrOrStderr(), "WARNING: Kernel cannot activate device if data block size exceeds page size (4096).\n")
	}
	if o.salt == "" || (o.uuid == "" && !o.noSuperblock) {
		seed, err := verity.ContentSeed(ctx, data, size)
		if err != nil {
			return fmt.Errorf("%s: %w", dataPath, err)
		}
		if o.salt == "" {
			p.Salt = verity.DeriveSalt(seed)
		}
		if o.uuid == "" {
			p.UUID = verity.DeriveUUID(seed)
		}
	}
	var res *verity.Result
	format := func(f *os.File) error {
		var err error
		res, err = verity.FormatFile(ctx, data, 0, size, f, p)
		return err
	}
	if st, serr := os.Stat(hashPath); serr == nil && st.Mode()&os.ModeDevice != 0 {
		// A block device is written in place, as veritysetup does.
		f, err := os.OpenFile(hashPath, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		err = format(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	} else {
		err = atomicfile.Write(hashPath, 0o644, format)
	}
	if err != nil {
		return fmt.Errorf("verity %s: %w", dataPath, err)
	}
	info := res.Info(hashPath)
	if o.json {
		info.DMModCreate = info.KernelArg(o.dataDev, o.hashDev)
		b, err := info.JSON()
		if err != nil {
			return err
		}
		_, err = cmd.OutOrStdout().Write(b)
		return err
	}
	_, err = fmt.Fprint(cmd.OutOrStdout(), info.Text())
	return err
}
