package image

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/uvmbuild/uvmbuild/builder/disk"
	"github.com/uvmbuild/uvmbuild/builder/ext4"
	"github.com/uvmbuild/uvmbuild/builder/rootfs"
	"github.com/uvmbuild/uvmbuild/builder/verity"
)

// Defaults of the node-builder.
const (
	// DefaultAlignMiB is the IMAGE_SIZE_ALIGNMENT_MB the node-builder passes.
	DefaultAlignMiB = 2
	// DefaultReservedPercent is image_builder.sh's `tune2fs -m 3`.
	DefaultReservedPercent = 3
	// DataDevice and HashDevice are the guest's view of the partitions.
	DataDevice = "/dev/vda1"
	HashDevice = "/dev/vda2"
)

// ErrTooSmall is returned when a given image size cannot hold the rootfs.
var ErrTooSmall = errors.New("image too small for the rootfs")

// Options describe one image.
type Options struct {
	// Rootfs is the input tar (any tar; normalised first).
	Rootfs string
	// Output is the image file.
	Output string
	// Measured adds the dm-verity hash partition.
	Measured bool
	// VeritySuperblock writes a verity superblock (upstream image_builder.sh
	// HEAD); the default is the kernelinit layout without one.
	VeritySuperblock bool
	// SizeMiB fixes the image size; 0 applies the node-builder's size rule.
	SizeMiB int64
	// AlignMiB is IMAGE_SIZE_ALIGNMENT_MB (0 means DefaultAlignMiB).
	AlignMiB int64
	// SourceDateEpoch sets file system and tar times.
	SourceDateEpoch int64
	// Pins; nil or "" means derived from the content.
	Salt          []byte // a non-nil empty salt means no salt
	FSUUID        string
	HashSeed      string
	VerityUUID    string
	DiskID        *uint32
	Mkfs          string // mkfs.ext4 binary; "" = PATH
	Reserved      *int   // ext4 reserved blocks percent; nil = 3
	Filter        rootfs.Filter
	SkipInitCheck bool // skip image_builder.sh's /sbin/init + systemd check
	// RootHashFile and RootHashJSON, if set, receive the root_hash.txt text
	// and its JSON form (measured images only).
	RootHashFile string
	RootHashJSON string
	// TempDir holds scratch files (normalised tar); "" means beside Output.
	TempDir string
	// Seed, if set, is mixed into every derived value (a recipe's fixed
	// label): seed = SHA-256(Seed ‖ 0x00 ‖ sha256(normalised tar)).
	Seed string
}

// Result describes a built image.
type Result struct {
	Layout        disk.Layout    `json:"layout"`
	DiskID        uint32         `json:"disk_id"`
	FSUUID        string         `json:"fs_uuid"`
	HashSeed      string         `json:"hash_seed"`
	Rootfs        rootfs.Summary `json:"rootfs"`
	RootfsSHA256  string         `json:"rootfs_sha256"`
	Mke2fsVersion string         `json:"mke2fs_version"`
	Verity        *verity.Info   `json:"verity,omitempty"`
	KernelArg     string         `json:"kernel_arg,omitempty"`
}

// Build makes the image described by o.
func Build(ctx context.Context, o Options) (res *Result, err error) {
	if o.Rootfs == "" || o.Output == "" {
		return nil, fmt.Errorf("image: rootfs tar and output are required")
	}
	if o.AlignMiB == 0 {
		o.AlignMiB = DefaultAlignMiB
	}
	reserved := DefaultReservedPercent
	if o.Reserved != nil {
		reserved = *o.Reserved
	}
	if reserved < 0 || reserved > 50 {
		return nil, fmt.Errorf("image: reserved blocks %d%%: must be 0..50", reserved)
	}
	if o.Salt != nil && len(o.Salt) > verity.MaxSaltSize {
		return nil, fmt.Errorf("image: salt is %d bytes, at most %d allowed", len(o.Salt), verity.MaxSaltSize)
	}
	for _, u := range []struct{ name, v string }{{"fs UUID", o.FSUUID}, {"hash seed", o.HashSeed}, {"verity UUID", o.VerityUUID}} {
		if u.v != "" {
			if _, err := verity.ParseUUID(u.v); err != nil {
				return nil, fmt.Errorf("image: %s: %w", u.name, err)
			}
		}
	}
	mkfsVersion, err := ext4.CheckVersion(ctx, o.Mkfs)
	if err != nil {
		return nil, err
	}
	res = &Result{Mke2fsVersion: mkfsVersion}

	outDir := filepath.Dir(o.Output)
	tmpDir := o.TempDir
	if tmpDir == "" {
		tmpDir = outDir
	}
	var temps []string
	defer func() {
		for _, t := range temps {
			os.Remove(t)
		}
	}()
	newTemp := func(dir, base string) (*os.File, error) {
		f, err := os.CreateTemp(dir, "."+base+".tmp-*")
		if err == nil {
			temps = append(temps, f.Name())
		}
		return f, err
	}

	// 1. Normalise the rootfs.
	in, err := os.Open(o.Rootfs)
	if err != nil {
		return nil, fmt.Errorf("image: rootfs: %w", err)
	}
	defer in.Close()
	tarFile, err := newTemp(tmpDir, filepath.Base(o.Output)+".rootfs")
	if err != nil {
		return nil, err
	}
	defer tarFile.Close()
	check := &initCheck{}
	filter := func(name string, hdr *tar.Header) (rootfs.Action, error) {
		a := rootfs.Keep
		if o.Filter != nil {
			var err error
			if a, err = o.Filter(name, hdr); err != nil {
				return a, err
			}
		}
		if a != rootfs.Drop {
			check.see(name)
		}
		return a, nil
	}
	sum, err := rootfs.Normalize(ctx, in, tarFile, rootfs.Options{
		SourceDateEpoch: o.SourceDateEpoch,
		Filter:          filter,
		// image_builder.sh touches etc/machine-id in the image.
		Add:     []rootfs.File{{Name: "etc/machine-id", Mode: 0o644, IfMissing: true}}, // as touch under umask 022
		TempDir: tmpDir,
	})
	if err != nil {
		return nil, fmt.Errorf("image: rootfs %s: %w", o.Rootfs, err)
	}
	if err := tarFile.Close(); err != nil {
		return nil, err
	}
	if !o.SkipInitCheck {
		if err := check.err(); err != nil {
			return nil, fmt.Errorf("image: rootfs %s: %w", o.Rootfs, err)
		}
	}
	res.Rootfs = sum
	res.RootfsSHA256 = hex.EncodeToString(sum.SHA256[:])
	seed := sum.SHA256[:]
	if o.Seed != "" {
		h := sha256.New()
		h.Write([]byte(o.Seed))
		h.Write([]byte{0})
		h.Write(seed)
		seed = h.Sum(nil)
	}

	// 2. Identifiers.
	res.FSUUID = o.FSUUID
	if res.FSUUID == "" {
		res.FSUUID = verity.DeriveUUIDWithLabel("uvmbuild ext4 uuid v1", seed).String()
	}
	res.HashSeed = o.HashSeed
	if res.HashSeed == "" {
		res.HashSeed = verity.DeriveUUIDWithLabel("uvmbuild ext4 hash seed v1", seed).String()
	}
	res.DiskID = disk.DeriveDiskID(seed)
	if o.DiskID != nil {
		res.DiskID = *o.DiskID
	}

	// 3. Size.
	avail := func(part int64) (int64, error) {
		g, err := ext4.Geometry(part, reserved)
		return int64(g.AvailableBlocks) * ext4.BlockSize, err
	}
	sizeMiB := o.SizeMiB
	if sizeMiB == 0 {
		if sizeMiB, err = disk.ImageSizeMiB(sum.DiskUsage, o.Measured, o.AlignMiB, avail); err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
	}
	layout, err := disk.NewLayout(sizeMiB, o.Measured)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	res.Layout = layout
	p1 := layout.Partitions[0]
	if a, err := avail(p1.Size); err != nil || a < sum.DiskUsage {
		return nil, fmt.Errorf("image: %w: %d MiB image, partition 1 of %d MiB has %d MiB available, the rootfs needs about %d MiB",
			ErrTooSmall, sizeMiB, p1.Size/disk.MiB, max(a, 0)/disk.MiB, (sum.DiskUsage+disk.MiB-1)/disk.MiB)
	}
	vp := verity.Params{NoSuperblock: !o.VeritySuperblock}
	if o.Measured {
		vp.Salt = o.Salt
		if o.Salt == nil {
			vp.Salt = verity.DeriveSalt(seed)
		}
		vp.UUID = verity.DeriveUUID(seed)
		if o.VerityUUID != "" {
			vp.UUID, _ = verity.ParseUUID(o.VerityUUID)
		}
		_, _, hsize, err := verity.Size(vp, p1.Size)
		if err != nil {
			return nil, err
		}
		if p2 := layout.Partitions[1]; hsize > p2.Size {
			return nil, fmt.Errorf("image: %w: the hash tree needs %d bytes, partition 2 has %d", ErrTooSmall, hsize, p2.Size)
		}
	}

	// 4. Write the image.
	img, err := newTemp(outDir, filepath.Base(o.Output))
	if err != nil {
		return nil, err
	}
	defer img.Close()
	if err := img.Truncate(layout.Size); err != nil {
		return nil, err
	}
	mbr, err := layout.MBR(res.DiskID)
	if err != nil {
		return nil, err
	}
	if _, err := img.WriteAt(mbr, 0); err != nil {
		return nil, err
	}
	err = ext4.Make(ctx, img.Name(), ext4.Options{Mkfs: o.Mkfs, Tar: tarFile.Name(), Offset: p1.Start, Size: p1.Size,
		UUID: res.FSUUID, HashSeed: res.HashSeed, SourceDateEpoch: o.SourceDateEpoch, ReservedPercent: reserved, TempDir: tmpDir})
	if errors.Is(err, ext4.ErrNoSpace) {
		return nil, fmt.Errorf("image: %w: %w", ErrTooSmall, err)
	}
	if err != nil {
		return nil, err
	}
	var finals [][2]string // temp → destination
	if o.Measured {
		p2 := layout.Partitions[1]
		vr, err := verity.FormatFile(ctx, img, p1.Start, p1.Size, io.NewOffsetWriter(img, p2.Start), vp)
		if err != nil {
			return nil, fmt.Errorf("image: verity: %w", err)
		}
		info := vr.Info(HashDevice)
		info.DMModCreate = info.KernelArg(DataDevice, HashDevice)
		res.Verity = &info
		res.KernelArg = info.DMModCreate
		for _, f := range []struct {
			dst  string
			data func() ([]byte, error)
		}{
			{o.RootHashFile, func() ([]byte, error) { return []byte(info.Text()), nil }},
			{o.RootHashJSON, info.JSON},
		} {
			if f.dst == "" {
				continue
			}
			b, err := f.data()
			if err != nil {
				return nil, err
			}
			t, err := newTemp(filepath.Dir(f.dst), filepath.Base(f.dst))
			if err != nil {
				return nil, err
			}
			_, err = t.Write(b)
			if err == nil {
				err = t.Chmod(0o644)
			}
			if cerr := t.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, err
			}
			finals = append(finals, [2]string{t.Name(), f.dst})
		}
	}
	if err := img.Chmod(0o644); err != nil {
		return nil, err
	}
	if err := img.Sync(); err != nil {
		return nil, err
	}
	if err := img.Close(); err != nil {
		return nil, err
	}
	// The image last: a present image implies its root hash files are current.
	finals = append(finals, [2]string{img.Name(), o.Output})
	for _, f := range finals {
		if err := os.Rename(f[0], f[1]); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// initCheck is image_builder.sh's sanity check: /sbin/init (a file or a
// symlink) and systemd in /usr/lib/systemd or /lib/systemd.
type initCheck struct{ init, systemd bool }

func (c *initCheck) see(name string) {
	switch name {
	case "sbin/init", "usr/sbin/init":
		c.init = true
	case "usr/lib/systemd/systemd", "lib/systemd/systemd":
		c.systemd = true
	}
}

func (c *initCheck) err() error {
	switch {
	case !c.init:
		return fmt.Errorf("no /sbin/init in the rootfs (image_builder.sh requires it; skip with --skip-init-check)")
	case !c.systemd:
		return fmt.Errorf("no systemd at /usr/lib/systemd/systemd or /lib/systemd/systemd (skip with --skip-init-check)")
	}
	return nil
}
