package ext4

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// conf is the pinned mke2fs.conf.
//
//go:embed mke2fs.conf
var conf string

// Conf returns the pinned mke2fs.conf.
func Conf() string { return conf }

// ConfVersion names the pinned configuration and flag set; it is part of
// the image step's version.
const ConfVersion = "ext4-conf-1"

// minVersion is the oldest e2fsprogs that builds reproducible images from a
// tar (SOURCE_DATE_EPOCH and sorted directory walk arrived in 1.47.1).
func minVersion() [3]int { return [3]int{1, 47, 1} }

// ErrTooOld is returned when mkfs.ext4 is older than 1.47.1.
var ErrTooOld = errors.New("e2fsprogs too old")

// ErrNoSpace is returned when the rootfs does not fit the file system.
var ErrNoSpace = errors.New("rootfs does not fit the file system")

// Options for Make.
type Options struct {
	// Mkfs is the mkfs.ext4 binary; "" looks up mkfs.ext4 in PATH.
	Mkfs string
	// Tar is the rootfs tar (normalised, see builder/rootfs).
	Tar string
	// Offset and Size place the file system in the output file (bytes,
	// multiples of 4096).
	Offset, Size int64
	// UUID and HashSeed are the file system UUID and the htree hash seed,
	// 8-4-4-4-12 hex.
	UUID, HashSeed string
	// SourceDateEpoch sets every time stamp (clamps inode times).
	SourceDateEpoch int64
	// ReservedPercent is mkfs -m (the node-builder uses 3).
	ReservedPercent int
	// TempDir receives the configuration file; "" means os.TempDir().
	TempDir string
}

var versionRE = regexp.MustCompile(`mke2fs (\d+)\.(\d+)(?:\.(\d+))?`)

// Version runs `mkfs -V` and returns the e2fsprogs version, e.g. "1.47.2".
func Version(ctx context.Context, mkfs string) (string, error) {
	path, err := lookMkfs(mkfs)
	if err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, path, "-V").CombinedOutput()
	m := versionRE.FindSubmatch(out)
	if m == nil {
		if err != nil {
			return "", fmt.Errorf("%s -V: %w: %s", path, err, bytes.TrimSpace(out))
		}
		return "", fmt.Errorf("%s -V: no version in output %q", path, bytes.TrimSpace(out))
	}
	v := string(m[1]) + "." + string(m[2])
	if len(m[3]) > 0 {
		v += "." + string(m[3])
	}
	return v, nil
}

// CheckVersion returns the version, or ErrTooOld with a way out.
func CheckVersion(ctx context.Context, mkfs string) (string, error) {
	v, err := Version(ctx, mkfs)
	if err != nil {
		return "", err
	}
	var got [3]int
	for i, s := range strings.SplitN(v, ".", 3) {
		got[i], _ = strconv.Atoi(s)
	}
	want := minVersion()
	for i := range got {
		if got[i] != want[i] {
			if got[i] < want[i] {
				p, _ := lookMkfs(mkfs)
				return v, fmt.Errorf("%w: %s is e2fsprogs %s, need 1.47.1 or newer for reproducible images (SOURCE_DATE_EPOCH, sorted -d walk); "+
					"on Debian 12 install it from bookworm-backports (apt-get install -t bookworm-backports e2fsprogs), "+
					"or point --mkfs at a newer mkfs.ext4", ErrTooOld, p, v)
			}
			break
		}
	}
	return v, nil
}

func lookMkfs(mkfs string) (string, error) {
	if mkfs == "" {
		mkfs = "mkfs.ext4"
	}
	p, err := exec.LookPath(mkfs)
	if err != nil {
		return "", fmt.Errorf("mkfs.ext4 not found (%w); install e2fsprogs ≥ 1.47.1 (Debian 12: apt-get install -t bookworm-backports e2fsprogs)", err)
	}
	return p, nil
}

// Make formats an ext4 file system populated from o.Tar into the existing
// file out, at o.Offset, o.Size bytes long. It does not change the file's
// size or any byte outside the file system. The caller owns out (normally a
// temp file renamed into place on success).
func Make(ctx context.Context, out string, o Options) error {
	if o.Offset%BlockSize != 0 || o.Size%BlockSize != 0 || o.Size <= 0 {
		return fmt.Errorf("ext4: offset %d and size %d must be positive multiples of %d", o.Offset, o.Size, BlockSize)
	}
	if _, err := Geometry(o.Size, o.ReservedPercent); err != nil {
		return err
	}
	if o.UUID == "" || o.HashSeed == "" {
		return fmt.Errorf("ext4: UUID and hash seed must be set (derived or pinned), got %q and %q", o.UUID, o.HashSeed)
	}
	if _, err := os.Stat(o.Tar); err != nil {
		return fmt.Errorf("ext4: rootfs tar: %w", err)
	}
	path, err := lookMkfs(o.Mkfs)
	if err != nil {
		return err
	}
	// mkfs runs in a scratch directory: make the paths absolute.
	if out, err = filepath.Abs(out); err != nil {
		return err
	}
	if o.Tar, err = filepath.Abs(o.Tar); err != nil {
		return err
	}
	if path, err = filepath.Abs(path); err != nil {
		return err
	}
	if _, err := CheckVersion(ctx, path); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(o.TempDir, "uvmbuild-mke2fs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	confPath := filepath.Join(dir, "mke2fs.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return err
	}
	args := []string{"-q", "-F", "-t", "ext4", "-T", "default", "-b", strconv.Itoa(BlockSize), "-I", strconv.Itoa(inodeSize),
		"-m", strconv.Itoa(o.ReservedPercent), "-U", o.UUID,
		"-E", fmt.Sprintf("hash_seed=%s,root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0,nodiscard,offset=%d", o.HashSeed, o.Offset),
		"-d", o.Tar, out, strconv.FormatInt(o.Size/BlockSize, 10)}
	cmd := exec.CommandContext(ctx, path, args...)
	// A clean environment: nothing of the host's e2fsprogs settings leaks in.
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"MKE2FS_CONFIG=" + confPath,
		"SOURCE_DATE_EPOCH=" + strconv.FormatInt(o.SourceDateEpoch, 10),
		// C.UTF-8, not C: libarchive must convert the tar's UTF-8 names
		// (PAX) to the locale's charset, and fails in plain C.
		"TZ=UTC", "LC_ALL=C.UTF-8", "LANG=C.UTF-8",
	}
	cmd.Dir = dir
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(log.String())
		if strings.Contains(msg, "Could not allocate block") || strings.Contains(msg, "No space left") ||
			strings.Contains(msg, "Could not allocate inode") || strings.Contains(msg, "No free space") {
			return fmt.Errorf("%w of %d bytes: %s: %s", ErrNoSpace, o.Size, o.Tar, lastLine(msg))
		}
		return fmt.Errorf("mkfs.ext4 %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return nil
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
