package actions

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/uvmbuild/uvmbuild/builder/disk/image"
	"github.com/uvmbuild/uvmbuild/builder/ext4"
	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/rootfs"
)

// ImageKind is the Spec.Kind of disk image steps.
const ImageKind = "go/image"

// imageVersion is bumped when the bytes an image step writes could change
// for the same params, input and mke2fs (builder/disk, builder/verity,
// builder/rootfs output included).
const imageVersion = "1"

// ImageParams describe a kata-containers.img build from the step's "rootfs"
// input (a tar).
type ImageParams struct {
	Measured         bool     `json:"measured"`
	VeritySuperblock bool     `json:"verity_superblock,omitempty"`
	SourceDateEpoch  int64    `json:"source_date_epoch"`
	Seed             string   `json:"seed,omitempty"`      // label mixed into derived ids
	SizeMiB          int64    `json:"size_mib,omitempty"`  // 0 = size rule
	AlignMiB         int64    `json:"align_mib,omitempty"` // 0 = 2
	ReservedPercent  *int     `json:"reserved_percent,omitempty"`
	Salt             string   `json:"salt,omitempty"` // hex, "-" none, "" derived
	FSUUID           string   `json:"fs_uuid,omitempty"`
	HashSeed         string   `json:"hash_seed,omitempty"`
	Drop             []string `json:"drop,omitempty"`
	Empty            []string `json:"empty,omitempty"`
	SkipInitCheck    bool     `json:"skip_init_check,omitempty"`
}

// ImageSpec returns the Spec of an image step. Its Version names the
// mke2fs that will run (mkfs, "" = mkfs.ext4 in PATH), because the ext4
// bytes depend on it; the executor refuses to run with another one.
//
// The step's outputs: the image file (any name other than the ones below,
// e.g. "kata-containers.img"), and optionally "root_hash.txt",
// "verity.json" (measured images) and "image.json" (the build result).
func ImageSpec(ctx context.Context, p ImageParams, mkfs string) (graph.Spec, error) {
	v, err := ext4.CheckVersion(ctx, mkfs)
	if err != nil {
		return graph.Spec{}, err
	}
	return ImageSpecFor(p, v), nil
}

// ImageSpecFor is ImageSpec for a known mke2fs version (e.g. "1.47.2"), for
// planning without running mkfs.ext4.
func ImageSpecFor(p ImageParams, mke2fsVersion string) graph.Spec {
	params := map[string]any{"measured": p.Measured, "source_date_epoch": p.SourceDateEpoch}
	add := func(k string, v any, set bool) {
		if set {
			params[k] = v
		}
	}
	add("verity_superblock", p.VeritySuperblock, p.VeritySuperblock)
	add("seed", p.Seed, p.Seed != "")
	add("size_mib", p.SizeMiB, p.SizeMiB != 0)
	add("align_mib", p.AlignMiB, p.AlignMiB != 0)
	if p.ReservedPercent != nil {
		params["reserved_percent"] = *p.ReservedPercent
	}
	add("salt", p.Salt, p.Salt != "")
	add("fs_uuid", p.FSUUID, p.FSUUID != "")
	add("hash_seed", p.HashSeed, p.HashSeed != "")
	add("drop", slices.Clone(p.Drop), len(p.Drop) > 0)
	add("empty", slices.Clone(p.Empty), len(p.Empty) > 0)
	add("skip_init_check", p.SkipInitCheck, p.SkipInitCheck)
	return graph.Spec{Kind: ImageKind, Version: imageVersionString(mke2fsVersion), Params: params}
}

func imageVersionString(mke2fs string) string {
	return imageVersion + "+" + ext4.ConfVersion + "+mke2fs-" + mke2fs
}

// Image runs image steps. Mkfs is wiring (which mkfs.ext4 to run); its
// version is checked against the step's Spec.Version.
type Image struct {
	Mkfs string
}

var _ graph.Executor = Image{}

// Run implements graph.Executor.
func (im Image) Run(ctx context.Context, x *graph.Exec) error {
	var p ImageParams
	if err := decodeParams(x.Step.Spec, &p); err != nil {
		return err
	}
	in, ok := x.Inputs["rootfs"]
	if !ok {
		return errors.New(`image step: no input "rootfs"`)
	}
	v, err := ext4.CheckVersion(ctx, im.Mkfs)
	if err != nil {
		return fmt.Errorf("image step: %w", err)
	}
	if want := imageVersionString(v); strings.Contains(x.Step.Spec.Version, "+mke2fs-") && x.Step.Spec.Version != want {
		return fmt.Errorf("image step: spec version %q but the installed mkfs.ext4 gives %q: rebuild the step spec with actions.ImageSpec", x.Step.Spec.Version, want)
	}
	var imgName string
	for _, o := range x.Step.Outputs {
		switch o {
		case "root_hash.txt", "verity.json", "image.json":
		default:
			if imgName != "" {
				return fmt.Errorf("image step: two image outputs %q and %q", imgName, o)
			}
			imgName = o
		}
	}
	if imgName == "" || strings.Contains(imgName, "/") {
		return fmt.Errorf("image step: outputs %q: need one image file name", x.Step.Outputs)
	}
	o := image.Options{
		Rootfs: in, Output: filepath.Join(x.OutDir, imgName), Measured: p.Measured, VeritySuperblock: p.VeritySuperblock,
		SizeMiB: p.SizeMiB, AlignMiB: p.AlignMiB, SourceDateEpoch: p.SourceDateEpoch, Seed: p.Seed,
		FSUUID: p.FSUUID, HashSeed: p.HashSeed, Mkfs: im.Mkfs, Reserved: p.ReservedPercent,
		SkipInitCheck: p.SkipInitCheck, TempDir: x.TempDir,
	}
	if p.Salt == "-" {
		o.Salt = []byte{}
	} else if p.Salt != "" {
		if o.Salt, err = hex.DecodeString(p.Salt); err != nil {
			return fmt.Errorf("image step: salt %q: not hex: %w", p.Salt, err)
		}
	}
	if len(p.Drop) > 0 || len(p.Empty) > 0 {
		if o.Filter, err = rootfsRules(p.Drop, p.Empty); err != nil {
			return fmt.Errorf("image step: %w", err)
		}
	}
	if p.Measured {
		if declared(x.Step, "root_hash.txt") {
			o.RootHashFile = filepath.Join(x.OutDir, "root_hash.txt")
		}
		if declared(x.Step, "verity.json") {
			o.RootHashJSON = filepath.Join(x.OutDir, "verity.json")
		}
	} else if declared(x.Step, "root_hash.txt") || declared(x.Step, "verity.json") {
		return errors.New("image step: root_hash.txt and verity.json need measured: true")
	}
	res, err := image.Build(ctx, o)
	if err != nil {
		return fmt.Errorf("image step: %w", err)
	}
	if x.Log != nil {
		fmt.Fprintf(x.Log, "%s: %d MiB, rootfs sha256 %s, disk usage %d, ext4 UUID %s, mke2fs %s\n",
			imgName, res.Layout.Size>>20, res.RootfsSHA256, res.Rootfs.DiskUsage, res.FSUUID, res.Mke2fsVersion)
		if res.Verity != nil {
			fmt.Fprintf(x.Log, "%s\n", res.KernelArg)
		}
	}
	if declared(x.Step, "image.json") {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(x.OutDir, "image.json"), append(b, '\n'), 0o644)
	}
	return nil
}

func rootfsRules(drop, empty []string) (rootfs.Filter, error) {
	return rootfs.Rules{Drop: drop, Empty: empty}.Filter()
}
