package actions

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/images"
	"github.com/uvmbuild/uvmbuild/builder/lockfile"
	"github.com/uvmbuild/uvmbuild/builder/sandbox"
)

// DebianImageKind is the Spec.Kind of Debian image steps.
const DebianImageKind = "debian-image"

// debianImageVersion is bumped when the bytes written for the same params
// could change (mmdebstrap options, layout writing).
const debianImageVersion = "2"

// DebianImageParams is the hashed description of a Debian image. The mirror
// is not part of it: it is read from the machine's apt configuration when
// the step runs.
type DebianImageParams struct {
	// Suite is the Debian release codename, e.g. "bookworm"; required.
	Suite string `json:"suite"`
	// Variant is mmdebstrap's --variant ("minbase" by default).
	Variant string `json:"variant,omitempty"`
	// Packages are installed from Suite.
	Packages []string `json:"packages,omitempty"`
	// Backports are installed from <Suite>-backports (e.g. "e2fsprogs" for
	// mkfs.ext4 ≥ 1.47.1); that suite is enabled only when this is set.
	Backports []string `json:"backports,omitempty"`
	// Components of the archive ("main" by default).
	Components []string `json:"components,omitempty"`
	// Architecture is the Debian architecture ("amd64" by default).
	Architecture string `json:"architecture,omitempty"`
	// SourceDateEpoch clamps every timestamp; also the image's created time.
	SourceDateEpoch int64 `json:"source_date_epoch"`
}

func (p *DebianImageParams) defaults() {
	if p.Variant == "" {
		p.Variant = "minbase"
	}
	if len(p.Components) == 0 {
		p.Components = []string{"main"}
	}
	if p.Architecture == "" {
		p.Architecture = "amd64"
	}
}

// DebianImageSpec returns the Spec of a Debian image step.
func DebianImageSpec(p DebianImageParams) graph.Spec {
	p.defaults()
	params := map[string]any{
		"suite":             p.Suite,
		"variant":           p.Variant,
		"components":        slices.Clone(p.Components),
		"architecture":      p.Architecture,
		"source_date_epoch": p.SourceDateEpoch,
	}
	if len(p.Packages) > 0 {
		params["packages"] = sortedUnique(p.Packages)
	}
	if len(p.Backports) > 0 {
		params["backports"] = sortedUnique(p.Backports)
	}
	return graph.Spec{Kind: DebianImageKind, Version: debianImageVersion, Params: params}
}

func sortedUnique(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// DebianImage builds Debian images with mmdebstrap on the host (it needs the
// network, like a fetch step, and root). Outputs: "image" (OCI layout),
// optionally "rootfs.tar" and "packages.txt".
type DebianImage struct {
	// Lock records the image digest (and the tar's digest) under LockName
	// (the step ID when empty).
	Lock     *lockfile.File
	LockName string
	// Mmdebstrap is the binary ("mmdebstrap" in PATH when empty).
	Mmdebstrap string
	// Mirror overrides the Debian archive URI; by default it is read from
	// the apt configuration (AptRoot + /etc/apt) at run time.
	Mirror string
	// AptRoot is where /etc/apt is read from ("/" when empty; tests).
	AptRoot string
}

var _ graph.Executor = (*DebianImage)(nil)

// Run implements graph.Executor.
func (d *DebianImage) Run(ctx context.Context, x *graph.Exec) error {
	var p DebianImageParams
	if err := decodeParams(x.Step.Spec, &p); err != nil {
		return err
	}
	p.defaults()
	if p.Suite == "" {
		return errors.New("debian image: suite is required")
	}
	bin := d.Mmdebstrap
	if bin == "" {
		bin = "mmdebstrap"
	}
	bin, err := exec.LookPath(bin)
	if err != nil {
		return fmt.Errorf(`debian image: mmdebstrap not found: install the Debian package "mmdebstrap": %w`, err)
	}
	if os.Geteuid() != 0 {
		return errors.New("debian image: mmdebstrap --mode=root needs root (run uvmbuild as root)")
	}
	mirror := d.Mirror
	if mirror == "" {
		root := d.AptRoot
		if root == "" {
			root = "/"
		}
		if mirror, err = AptMirror(root); err != nil {
			return fmt.Errorf("debian image: %w", err)
		}
	}
	tarPath := filepath.Join(x.TempDir, "rootfs.tar")
	pkgList := filepath.Join(x.TempDir, "packages.txt")
	args := mmdebstrapArgs(p, mirror, tarPath, pkgList)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"SOURCE_DATE_EPOCH=" + strconv.FormatInt(p.SourceDateEpoch, 10),
		"LC_ALL=C", "LANG=C", "TZ=UTC", "HOME=/root",
		"TMPDIR=" + x.TempDir,
	}
	cmd.Stdout, cmd.Stderr = x.Log, x.Log
	// mmdebstrap bind-mounts host /dev nodes, /sys and /proc into its
	// chroot. In a private mount namespace those mounts die with it, even
	// when it is killed, so removing the temporary directory can never
	// reach the host's /dev.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Unshareflags: syscall.CLONE_NEWNS}
	// Kill the whole group (apt, dpkg, hooks) on cancel.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	if x.Log != nil {
		fmt.Fprintf(x.Log, "mmdebstrap %s\n", strings.Join(args, " "))
	}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("debian image: mmdebstrap %s %s: %w", p.Suite, mirror, err)
	}

	tarDigest, err := fileDigest(tarPath)
	if err != nil {
		return err
	}
	imgDigest, err := images.WriteLayout(filepath.Join(x.OutDir, "image"), tarPath, images.ImageConfig{
		Created: time.Unix(p.SourceDateEpoch, 0),
		Env:     []string{"PATH=" + ContainerPath},
		RefName: p.Suite,
	})
	if err != nil {
		return fmt.Errorf("debian image: %w", err)
	}
	if x.Log != nil {
		fmt.Fprintf(x.Log, "image %s (rootfs.tar %s)\n", imgDigest, tarDigest)
	}
	if slices.Contains(x.Step.Outputs, "rootfs.tar") {
		if err := os.Rename(tarPath, filepath.Join(x.OutDir, "rootfs.tar")); err != nil {
			return err
		}
	}
	if slices.Contains(x.Step.Outputs, "packages.txt") {
		if err := os.Rename(pkgList, filepath.Join(x.OutDir, "packages.txt")); err != nil {
			return err
		}
	}
	// Modes of the files written here follow the host umask: normalise.
	if err := sandbox.Normalize(x.OutDir, time.Unix(p.SourceDateEpoch, 0)); err != nil {
		return err
	}
	if d.Lock == nil {
		return nil
	}
	name := d.LockName
	if name == "" {
		name = x.Step.ID
	}
	// The entry names the spec it was built from: the same spec giving
	// another digest means the mirror moved on (an error), while a changed
	// spec (new packages, another suite) is a deliberate change that
	// re-pins the entry.
	e := lockfile.Entry{
		Ref:       fmt.Sprintf("debian:%s spec=%s", p.Suite, specFingerprint(x.Step.Spec)),
		Digest:    imgDigest,
		Checksums: map[string]digest.Digest{"rootfs.tar": tarDigest},
	}
	old, ok, err := d.Lock.Lookup(name)
	if err != nil {
		return err
	}
	if ok && old.Ref != e.Ref {
		if x.Logger != nil {
			x.Logger.Warn("debian image spec changed; re-pinning lock entry", "entry", name, "old", old.Digest, "new", imgDigest)
		}
		return d.Lock.Set(name, e)
	}
	return d.Lock.Record(name, e)
}

// specFingerprint is a short digest of a spec's kind, version and params.
func specFingerprint(s graph.Spec) string {
	b, err := json.Marshal(struct {
		Kind, Version string
		Params        map[string]any
	}{s.Kind, s.Version, s.Params})
	if err != nil {
		return "unknown"
	}
	return digest.FromBytes(b).Encoded()[:16]
}

func mmdebstrapArgs(p DebianImageParams, mirror, tarPath, pkgList string) []string {
	comps := strings.Join(p.Components, " ")
	args := []string{
		"--mode=root",
		"--format=tar",
		"--variant=" + p.Variant,
		"--architectures=" + p.Architecture,
		"--components=" + strings.Join(p.Components, ","),
	}
	var inc []string
	inc = append(inc, sortedUnique(p.Packages)...)
	for _, b := range sortedUnique(p.Backports) {
		inc = append(inc, b+"/"+p.Suite+"-backports")
	}
	if len(inc) > 0 {
		args = append(args, "--include="+strings.Join(inc, ","))
	}
	args = append(args,
		`--customize-hook=chroot "$1" dpkg-query -W -f='${Package}=${Version}\n' > `+shellQuote(pkgList),
		// mmdebstrap writes the mirror into the image's apt sources; the
		// mirror is a property of the build machine, not of the image, so it
		// must not reach the output (another mirror, same image).
		removeSourcesHook,
		p.Suite, tarPath,
		fmt.Sprintf("deb %s %s %s", mirror, p.Suite, comps),
	)
	if len(p.Backports) > 0 {
		args = append(args, fmt.Sprintf("deb %s %s-backports %s", mirror, p.Suite, comps))
	}
	return args
}

// removeSourcesHook deletes the apt source lists mmdebstrap wrote from the
// build machine's mirror.
const removeSourcesHook = `--customize-hook=rm -f "$1/etc/apt/sources.list" "$1"/etc/apt/sources.list.d/*.list "$1"/etc/apt/sources.list.d/*.sources`

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func fileDigest(p string) (digest.Digest, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return digest.SHA256.FromReader(f)
}

// AptMirror returns the first Debian archive URI of the apt configuration
// under root (deb822 sources.list.d/*.sources first, then one-line
// sources.list files), skipping security archives — the same rule as
// scripts/install-deps.sh.
func AptMirror(root string) (string, error) {
	etc := filepath.Join(root, "etc", "apt")
	deb822, _ := filepath.Glob(filepath.Join(etc, "sources.list.d", "*.sources"))
	slices.Sort(deb822)
	for _, f := range deb822 {
		if u := scanSources(f, func(fields []string) []string {
			if len(fields) > 0 && fields[0] == "URIs:" {
				return fields[1:]
			}
			return nil
		}); u != "" {
			return u, nil
		}
	}
	lists, _ := filepath.Glob(filepath.Join(etc, "sources.list.d", "*.list"))
	slices.Sort(lists)
	for _, f := range append([]string{filepath.Join(etc, "sources.list")}, lists...) {
		if u := scanSources(f, func(fields []string) []string {
			if len(fields) < 2 || fields[0] != "deb" {
				return nil
			}
			for _, v := range fields[1:] {
				if strings.Contains(v, "://") {
					return []string{v}
				}
			}
			return nil
		}); u != "" {
			return u, nil
		}
	}
	return "", fmt.Errorf("no Debian archive URI in %s (sources.list or sources.list.d)", etc)
}

func scanSources(file string, uris func([]string) []string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		for _, u := range uris(strings.Fields(sc.Text())) {
			if !strings.Contains(u, "security") && strings.Contains(u, "://") {
				return u
			}
		}
	}
	return ""
}
