package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// ErrNeedRoot is returned, before anything is touched, when a live deploy
// (no staging root) is attempted without root privileges.
var ErrNeedRoot = errors.New("deploying onto the live system needs root")

// Event reports one thing Install or Uninstall did.
type Event struct {
	// Dest is the destination path (relative to the root).
	Dest string
	// Action is one of "unchanged", "staged" (content written beside the
	// destination, not yet renamed), "installed", "removed", "missing"
	// (listed in the manifest, already gone), "modified" (removed, but its
	// content differed from the manifest).
	Action string
}

type options struct {
	observe     func(Event)
	expected    map[string]string
	recordedDir string
	euid        func() int
}

// Option configures Install and Uninstall.
type Option func(*options)

// WithObserver calls fn for every Event, synchronously and in order.
func WithObserver(fn func(Event)) Option { return func(o *options) { o.observe = fn } }

// WithExpectedDigests makes Install check, before touching anything, that
// each source (by File.Src) has the given "sha256:<hex>" digest, e.g. as
// recorded in the build's build.json, so a stale or altered output is never
// installed.
func WithExpectedDigests(m map[string]string) Option { return func(o *options) { o.expected = m } }

// WithRecordedOutputs is WithExpectedDigests for a build output directory:
// every source under outDir must be listed in digests (by host path) with
// its digest, so nothing unrecorded or stale from outDir is installed.
// Sources elsewhere (the kata source tree) are not constrained.
func WithRecordedOutputs(outDir string, digests map[string]string) Option {
	return func(o *options) { o.expected, o.recordedDir = digests, filepath.Clean(outDir) }
}

func makeOptions(opts []Option) options {
	o := options{observe: func(Event) {}, euid: os.Geteuid}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// IsLive reports whether root designates the running system.
func IsLive(root string) bool { return root == "" || filepath.Clean(root) == "/" }

// CheckPrivileges fails with ErrNeedRoot when root is the live system and the
// process is not root.
func CheckPrivileges(root string) error {
	if IsLive(root) && os.Geteuid() != 0 {
		return fmt.Errorf("%w: run as root, or stage into a directory with --root DIR", ErrNeedRoot)
	}
	return nil
}

// Result says what Install did.
type Result struct {
	// Installed lists destinations written (new or changed content/mode).
	Installed []string
	// Unchanged lists destinations that already had the content and mode.
	Unchanged []string
}

// source is a checked File with its content digest.
type source struct {
	File
	digest string
	size   int64
}

// Install copies files under root (a staging directory, or "" or "/" for the
// live system). Before anything is written it checks the privileges, that
// every source exists (and matches WithExpectedDigests) and that every
// destination is a clean absolute path. Each destination is replaced
// atomically: the content is written to a temporary file beside it, synced,
// given its mode, and renamed over it, so a reader (or a crash) sees the old
// file or the new one, never a mix. A destination that already has the
// content and mode is left alone, so a second deploy changes nothing. No
// backup files are made.
//
// The manifest under root (ManifestPath) records every installed file and
// every directory Install created. It is written before the first file (so a
// killed deploy can still be undeployed) and again at the end. Files
// installed by an earlier deploy that this one does not install stay
// installed and recorded.
func Install(ctx context.Context, root string, files []File, opts ...Option) (*Result, error) {
	o := makeOptions(opts)
	if IsLive(root) && o.euid() != 0 {
		return nil, fmt.Errorf("%w: run as root, or stage into a directory with --root DIR", ErrNeedRoot)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("nothing to install")
	}
	if !IsLive(root) {
		if st, err := os.Stat(root); err != nil {
			return nil, fmt.Errorf("staging root: %w", err)
		} else if !st.IsDir() {
			return nil, fmt.Errorf("staging root %s: not a directory", root)
		}
	}
	srcs, err := checkSources(ctx, files, o.expected, o.recordedDir)
	if err != nil {
		return nil, err
	}
	for _, s := range srcs {
		if err := checkInsideRoot(root, path.Dir(s.Dest)); err != nil {
			return nil, err
		}
	}
	if err := checkInsideRoot(root, path.Dir(ManifestPath)); err != nil {
		return nil, err
	}

	unlock, err := lockManifest(root)
	if err != nil {
		return nil, err
	}
	defer unlock()
	old, err := ReadManifest(root)
	if err != nil {
		return nil, err
	}

	// Record intent first: the union of what was installed and what is
	// about to be, and the directories about to be created.
	var created []string
	for _, s := range srcs {
		created = append(created, missingDirs(root, path.Dir(s.Dest))...)
	}
	next := &Manifest{Schema: manifestSchema, Dirs: append(slices.Clone(old.Dirs), created...)}
	byPath := map[string]Installed{}
	for _, f := range old.Files {
		byPath[f.Path] = f
	}
	for _, s := range srcs {
		byPath[s.Dest] = Installed{Path: s.Dest, Digest: s.digest, Mode: fmtMode(s.Mode), Size: s.size, Variant: s.Variant, Part: s.Part}
	}
	for _, f := range byPath {
		next.Files = append(next.Files, f)
	}
	// The manifest's own directories were recorded by lockManifest.
	if err := writeManifest(root, next); err != nil {
		return nil, err
	}

	res := &Result{}
	dirs := map[string]bool{}
	for _, s := range srcs {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		dest := hostPath(root, s.Dest)
		if err := mkdirs(root, path.Dir(s.Dest)); err != nil {
			return res, err
		}
		removeStaleTemps(dest)
		same, err := sameFile(dest, s.digest, s.size, s.Mode)
		if err != nil {
			return res, err
		}
		if same {
			res.Unchanged = append(res.Unchanged, s.Dest)
			o.observe(Event{Dest: s.Dest, Action: "unchanged"})
			continue
		}
		if err := installOne(ctx, dest, s, o.observe); err != nil {
			return res, err
		}
		dirs[filepath.Dir(dest)] = true
		res.Installed = append(res.Installed, s.Dest)
		o.observe(Event{Dest: s.Dest, Action: "installed"})
	}
	// Make the renames durable before recording them as done.
	for _, d := range slices.Sorted(maps.Keys(dirs)) {
		if err := syncDir(d); err != nil {
			return res, err
		}
	}
	final := &Manifest{Schema: manifestSchema, Dirs: next.Dirs}
	for _, f := range next.Files {
		if _, err := os.Lstat(hostPath(root, f.Path)); err == nil {
			final.Files = append(final.Files, f)
		}
	}
	if err := writeManifest(root, final); err != nil {
		return res, err
	}
	return res, nil
}

// checkSources validates destinations and hashes every source.
func checkSources(ctx context.Context, files []File, expected map[string]string, recordedDir string) ([]source, error) {
	seen := map[string]bool{}
	out := make([]source, 0, len(files))
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := checkDest(f.Dest); err != nil {
			return nil, err
		}
		if seen[f.Dest] {
			return nil, fmt.Errorf("destination %s listed twice", f.Dest)
		}
		seen[f.Dest] = true
		if f.Mode&^(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 || f.Mode == 0 {
			return nil, fmt.Errorf("%s: invalid mode %v", f.Dest, f.Mode)
		}
		s := source{File: f}
		if f.Src == "" {
			sum := sha256.Sum256(f.Content)
			s.digest, s.size = "sha256:"+hex.EncodeToString(sum[:]), int64(len(f.Content))
		} else {
			d, n, err := hashFile(f.Src)
			if err != nil {
				return nil, fmt.Errorf("source for %s: %w (build the target that produces it first)", f.Dest, err)
			}
			s.digest, s.size = d, n
			want, ok := expected[f.Src]
			if ok && want != d {
				return nil, fmt.Errorf("source %s: digest %s, but the build recorded %s: the output directory changed since the build; rebuild first", f.Src, d, want)
			}
			if !ok && recordedDir != "" && strings.HasPrefix(filepath.Clean(f.Src), recordedDir+string(filepath.Separator)) {
				return nil, fmt.Errorf("source %s is not recorded in the build record of %s: build the target that produces it first", f.Src, recordedDir)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func hashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	if !st.Mode().IsRegular() {
		return "", 0, fmt.Errorf("%s: not a regular file", p)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("reading %s: %w", p, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), n, nil
}

// sameFile reports whether dest is a regular file with this content and mode.
func sameFile(dest, digest string, size int64, mode fs.FileMode) (bool, error) {
	st, err := os.Lstat(dest)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if st.IsDir() {
		return false, fmt.Errorf("%s: is a directory, cannot install a file there", dest)
	}
	if !st.Mode().IsRegular() || st.Size() != size || fmtMode(st.Mode()) != fmtMode(mode) {
		return false, nil
	}
	d, _, err := hashFile(dest)
	if err != nil {
		return false, err
	}
	return d == digest, nil
}

const tempInfix = ".uvmbuild-"

// tempPattern names the temporary files written beside dest; a deploy that
// was killed leaves at most these behind, and the next one removes them.
func tempPattern(dest string) string {
	return "." + filepath.Base(dest) + tempInfix + "*"
}

func removeStaleTemps(dest string) {
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(dest), globEscape(tempPattern(dest))))
	for _, m := range matches {
		os.Remove(m)
	}
}

func globEscape(pattern string) string {
	// Escape glob metacharacters in the file name, keep the final '*'.
	name := strings.TrimSuffix(pattern, "*")
	var b strings.Builder
	for _, r := range name {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String() + "*"
}

func installOne(ctx context.Context, dest string, s source, observe func(Event)) error {
	return writeAtomicObserved(dest, s.Mode, func(f *os.File) error {
		h := sha256.New()
		w := io.MultiWriter(f, h)
		if s.Src == "" {
			if _, err := w.Write(s.Content); err != nil {
				return err
			}
		} else {
			in, err := os.Open(s.Src)
			if err != nil {
				return fmt.Errorf("source for %s: %w", s.Dest, err)
			}
			defer in.Close()
			if _, err := io.Copy(w, readerCtx{ctx, in}); err != nil {
				return fmt.Errorf("copying %s: %w", s.Src, err)
			}
		}
		// The source must not change between the check and the copy.
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != s.digest {
			return fmt.Errorf("source %s changed during deploy (digest %s, was %s)", s.Src, got, s.digest)
		}
		return nil
	}, func() { observe(Event{Dest: s.Dest, Action: "staged"}) })
}

type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func writeAtomic(dest string, mode fs.FileMode, write func(*os.File) error) error {
	return writeAtomicObserved(dest, mode, write, func() {})
}

// writeAtomicObserved writes dest through a synced temporary file in the
// same directory and a rename; staged runs between the sync and the rename.
func writeAtomicObserved(dest string, mode fs.FileMode, write func(*os.File) error, staged func()) (err error) {
	dir := filepath.Dir(dest)
	f, err := os.CreateTemp(dir, strings.TrimSuffix(tempPattern(dest), "*")+"*")
	if err != nil {
		return fmt.Errorf("installing %s: %w", dest, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = write(f); err != nil {
		return fmt.Errorf("installing %s: %w", dest, err)
	}
	// Chmod on the descriptor: the mode must not depend on the umask.
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("installing %s: %w", dest, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("installing %s: %w", dest, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("installing %s: %w", dest, err)
	}
	staged()
	if err = os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("installing %s: %w", dest, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// checkInsideRoot fails when, under a staging root, the deepest existing
// ancestor of dir resolves (through symbolic links) outside the root, so a
// staged deploy never writes outside its root. On the live system links
// such as /lib → usr/lib are followed as the node-builder's cp would.
func checkInsideRoot(root, dir string) error {
	if IsLive(root) {
		return nil
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return fmt.Errorf("staging root: %w", err)
	}
	d := dir
	for ; d != "/"; d = path.Dir(d) {
		if _, err := os.Lstat(hostPath(root, d)); err == nil {
			break
		}
	}
	real, err := filepath.EvalSymlinks(hostPath(root, d))
	if err != nil {
		return fmt.Errorf("%s: %w", hostPath(root, d), err)
	}
	if real != realRoot && !strings.HasPrefix(real, realRoot+string(filepath.Separator)) {
		return fmt.Errorf("%s resolves to %s, outside the staging root %s", hostPath(root, d), real, root)
	}
	return nil
}

// missingDirs lists dir and its ancestors (relative to root) that do not
// exist yet, shallowest first.
func missingDirs(root, dir string) []string {
	var out []string
	for d := dir; d != "/" && d != "."; d = path.Dir(d) {
		if _, err := os.Lstat(hostPath(root, d)); err == nil {
			break
		}
		out = append(out, d)
	}
	slices.Reverse(out)
	return out
}

// mkdirs creates dir and its missing ancestors with mode 0755 (not subject
// to the umask).
func mkdirs(root, dir string) error {
	for _, d := range missingDirs(root, dir) {
		p := hostPath(root, d)
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("creating %s: %w", p, err)
		}
		if err := os.Chmod(p, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", p, err)
		}
	}
	return nil
}

// lockManifest creates the manifest's directory (recording in the manifest
// the directories it created) and takes an exclusive lock on it for the
// duration of one deploy or undeploy.
func lockManifest(root string) (func(), error) {
	dir := path.Dir(ManifestPath)
	missing := missingDirs(root, dir)
	if err := mkdirs(root, dir); err != nil {
		return nil, err
	}
	d, err := os.Open(hostPath(root, dir))
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX); err != nil {
		d.Close()
		return nil, fmt.Errorf("locking %s: %w", d.Name(), err)
	}
	unlock := func() {
		syscall.Flock(int(d.Fd()), syscall.LOCK_UN)
		d.Close()
	}
	if len(missing) > 0 {
		// Record the directories just created for the manifest itself, so
		// undeploy removes them too.
		m, err := ReadManifest(root)
		if err != nil {
			unlock()
			return nil, err
		}
		m.Dirs = append(m.Dirs, missing...)
		if err := writeManifest(root, m); err != nil {
			unlock()
			return nil, err
		}
	}
	return unlock, nil
}
