package cache

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/uvmbuild/uvmbuild/builder/atomicfile"
	"github.com/uvmbuild/uvmbuild/builder/filemode"
)

// Store is a cache directory opened for use by a build. It holds a shared
// lock on the directory until Close, so that prune waits for it.
type Store struct {
	dir  string
	lock *flock.Flock
	log  *slog.Logger

	mu       sync.Mutex
	verified map[verifyID]bool
	// unsynced are blob files PutFile renamed into place without an
	// fsync, by digest; PutAction flushes those its entry refers to.
	unsynced map[digest.Digest][]string
}

type verifyID struct {
	path  string
	ino   uint64
	size  int64
	mtime int64
}

// Option configures Open.
type Option func(*Store)

// WithLogger sends warnings (evicted entries) to l.
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) { s.log = l }
}

// lockPoll is how often a waiting lock is retried.
const lockPoll = 20 * time.Millisecond

// DefaultDir returns the cache directory: $UVMBUILD_CACHE, else
// $XDG_CACHE_HOME/uvmbuild, else $HOME/.cache/uvmbuild. getenv is usually
// os.Getenv.
func DefaultDir(getenv func(string) string) (string, error) {
	if d := getenv("UVMBUILD_CACHE"); d != "" {
		return d, nil
	}
	if d := getenv("XDG_CACHE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "uvmbuild"), nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", errors.New("cannot find a cache directory: set UVMBUILD_CACHE, XDG_CACHE_HOME or HOME, or pass --cache-dir")
	}
	return filepath.Join(home, ".cache", "uvmbuild"), nil
}

// Open creates (if needed) and opens the cache directory dir for a build.
// It fails with one clear error when the directory cannot be created or
// written.
func Open(ctx context.Context, dir string, opts ...Option) (*Store, error) {
	s, err := open(dir, opts)
	if err != nil {
		return nil, err
	}
	ok, err := s.lock.TryRLock()
	if err == nil && !ok {
		s.log.Warn("cache: waiting for 'uvmbuild cache prune' to finish", "dir", s.dir)
		_, err = s.lock.TryRLockContext(ctx, lockPoll)
	}
	if err != nil {
		return nil, fmt.Errorf("cache directory %s: locking: %w", dir, err)
	}
	return s, nil
}

func open(dir string, opts []Option) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("cache directory %s: %w", dir, err)
	}
	s := &Store{dir: abs, verified: map[verifyID]bool{}, unsynced: map[digest.Digest][]string{}}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, sub := range []string{"blobs/sha256", "ac", "locks", "tmp"} {
		if err := os.MkdirAll(filepath.Join(abs, sub), 0o755); err != nil {
			return nil, fmt.Errorf("cache directory %s: %w", dir, unwrapPath(err))
		}
	}
	probe, err := os.CreateTemp(filepath.Join(abs, "tmp"), "probe-")
	if err != nil {
		return nil, fmt.Errorf("cache directory %s is not writable: %w", dir, unwrapPath(err))
	}
	probe.Close()
	os.Remove(probe.Name())
	s.lock = flock.New(filepath.Join(abs, "lock"))
	return s, nil
}

// unwrapPath drops the *PathError wrapper so messages name the cache
// directory once.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Dir is the cache directory (absolute).
func (s *Store) Dir() string { return s.dir }

// Close releases the directory lock.
func (s *Store) Close() error {
	return s.lock.Close()
}

func (s *Store) blobPath(d digest.Digest, mode fs.FileMode) string {
	h := d.Encoded()
	return filepath.Join(s.dir, "blobs", string(d.Algorithm()), h[:2], fmt.Sprintf("%s.%04o", h, uint32(mode&0o7777)))
}

func (s *Store) actionPath(key digest.Digest) string {
	h := key.Encoded()
	return filepath.Join(s.dir, "ac", h[:2], h+".json")
}

func checkDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w", d, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("digest %s: only sha256 is supported", d)
	}
	return nil
}

// entryHeader is the first line of an action entry.
type entryHeader struct {
	// Sum is the digest of the manifest bytes that follow.
	Sum digest.Digest `json:"sum"`
	// Blobs are the file digests the manifest references (for prune).
	Blobs []digest.Digest `json:"blobs"`
}

// GetAction returns the manifest stored under key. A missing entry wraps
// fs.ErrNotExist; so does a corrupt one, after it is evicted with a
// warning. A hit refreshes the entry's use time for prune.
func (s *Store) GetAction(ctx context.Context, key digest.Digest) ([]byte, error) {
	if err := checkDigest(key); err != nil {
		return nil, err
	}
	p := s.actionPath(key)
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("action %s: %w", key, err)
	}
	fi, err := f.Stat()
	var data []byte
	if err == nil {
		data = make([]byte, fi.Size())
		_, err = io.ReadFull(f, data)
	}
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("action %s: %w", key, err)
	}
	_, manifest, err := parseEntry(data)
	if err != nil {
		s.evict(p, "action entry", key, err)
		return nil, fmt.Errorf("action %s: %w (evicted)", key, fs.ErrNotExist)
	}
	// Mark the entry used, for prune's least-recently-used order; at most
	// once an hour, so that no-op builds do not write.
	if now := time.Now(); now.Sub(fi.ModTime()) > time.Hour {
		_ = os.Chtimes(p, now, now)
	}
	return manifest, nil
}

func parseEntry(data []byte) (*entryHeader, []byte, error) {
	line, manifest, ok := bytes.Cut(data, []byte("\n"))
	if !ok {
		return nil, nil, errors.New("truncated entry")
	}
	var h entryHeader
	if err := json.Unmarshal(line, &h); err != nil {
		return nil, nil, fmt.Errorf("bad header: %w", err)
	}
	if err := h.Sum.Validate(); err != nil {
		return nil, nil, fmt.Errorf("bad header sum: %w", err)
	}
	if got := h.Sum.Algorithm().FromBytes(manifest); got != h.Sum {
		return nil, nil, fmt.Errorf("manifest digest %s, header says %s", got, h.Sum)
	}
	return &h, manifest, nil
}

func (s *Store) evict(p, what string, d digest.Digest, why error) {
	s.log.Warn("cache: evicting corrupt "+what, "digest", d, "reason", why)
	_ = os.Remove(p)
}

// PutAction stores manifest under key, after checking that every blob is
// present. The entry is written atomically.
func (s *Store) PutAction(ctx context.Context, key digest.Digest, manifest []byte, blobs []digest.Digest) error {
	if err := checkDigest(key); err != nil {
		return err
	}
	seen := map[digest.Digest]bool{}
	uniq := []digest.Digest{}
	for _, b := range blobs {
		if err := checkDigest(b); err != nil {
			return err
		}
		if seen[b] {
			continue
		}
		seen[b] = true
		if !s.hasBlob(b) {
			return fmt.Errorf("action %s references blob %s, which is not in the cache", key, b)
		}
		uniq = append(uniq, b)
	}
	// Durability barrier: the blobs this entry refers to reach the disk
	// before the entry does.
	if err := s.flush(uniq); err != nil {
		return fmt.Errorf("action %s: flushing blobs: %w", key, err)
	}
	hdr, err := json.Marshal(entryHeader{Sum: digest.FromBytes(manifest), Blobs: uniq})
	if err != nil {
		return err
	}
	data := append(append(hdr, '\n'), manifest...)
	p := s.actionPath(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(p, data, 0o644)
}

// flushJobs bounds concurrent fsyncs (parallel fsyncs share journal
// commits). Above syncfsOver files a single syncfs of the cache's file
// system is cheaper than an fsync per file; below it, fsyncs avoid
// flushing other processes' dirty data.
const (
	flushJobs  = 8
	syncfsOver = 64
)

// flush fsyncs the blob files of blobs that PutFile left unsynced.
func (s *Store) flush(blobs []digest.Digest) error {
	var paths []string
	s.mu.Lock()
	for _, b := range blobs {
		paths = append(paths, s.unsynced[b]...)
		delete(s.unsynced, b)
	}
	s.mu.Unlock()
	if len(paths) == 0 {
		return nil
	}
	if len(paths) > syncfsOver {
		// Many files (a tree output): one syncfs beats an fsync each.
		f, err := os.Open(s.dir)
		if err != nil {
			return err
		}
		defer f.Close()
		return unix.Syncfs(int(f.Fd()))
	}
	work := make(chan string)
	errs := make(chan error, flushJobs)
	var wg sync.WaitGroup
	for range min(flushJobs, len(paths)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var first error
			for p := range work {
				if err := fsyncPath(p); err != nil && first == nil {
					first = err
				}
			}
			errs <- first
		}()
	}
	for _, p := range paths {
		work <- p
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func fsyncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// DeleteAction removes the entry for key, if any.
func (s *Store) DeleteAction(ctx context.Context, key digest.Digest) error {
	if err := checkDigest(key); err != nil {
		return err
	}
	if err := os.Remove(s.actionPath(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (s *Store) hasBlob(d digest.Digest) bool {
	variants, _ := s.variants(d)
	return len(variants) > 0
}

// variants lists the stored files of blob d (one per mode).
func (s *Store) variants(d digest.Digest) ([]string, error) {
	h := d.Encoded()
	return filepath.Glob(filepath.Join(s.dir, "blobs", string(d.Algorithm()), h[:2], h+".*"))
}

// PutFile moves the regular file at path into the store (copying when it
// cannot be renamed, e.g. another file system or other hard links to it)
// and returns its digest and size.
func (s *Store) PutFile(ctx context.Context, path string, mode fs.FileMode) (digest.Digest, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	if !fi.Mode().IsRegular() {
		return "", 0, fmt.Errorf("%s: not a regular file", path)
	}
	hw := sha256.New()
	n, err := io.Copy(hw, ctxReader{ctx, f})
	if err != nil {
		return "", 0, fmt.Errorf("reading %s: %w", path, err)
	}
	d := digest.NewDigest(digest.SHA256, hw)
	dst := s.blobPath(d, mode)
	if _, err := os.Lstat(dst); err == nil {
		os.Remove(path)
		return d, n, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", 0, err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if st != nil && st.Nlink == 1 {
		// Sole owner of the inode: rename it into place. PutAction
		// fsyncs it (in parallel with the step's other outputs) before
		// any entry refers to it.
		if err := os.Chmod(path, filemode.FromUnix(mode)); err == nil {
			if err := os.Rename(path, dst); err == nil {
				s.mu.Lock()
				s.unsynced[d] = append(s.unsynced[d], dst)
				s.mu.Unlock()
				return d, n, nil
			}
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", 0, err
	}
	if err := copyAtomic(ctx, f, dst, mode); err != nil {
		return "", 0, err
	}
	os.Remove(path)
	return d, n, nil
}

// LinkFile places blob d with mode at dst (see graph.Store).
func (s *Store) LinkFile(ctx context.Context, d digest.Digest, mode fs.FileMode, dst string) error {
	if err := checkDigest(d); err != nil {
		return err
	}
	src, err := s.variant(ctx, d, mode)
	if err != nil {
		return err
	}
	if sameFile(src, dst) {
		return nil
	}
	// A new name is linked directly (the common case: filling a scratch
	// directory); an existing one is replaced through a temp name.
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	tmp := tempName(dst)
	if err := os.Link(src, tmp); err != nil {
		// Another file system, or links not allowed: copy.
		in, oerr := os.Open(src)
		if oerr != nil {
			return oerr
		}
		defer in.Close()
		if err := copyAtomic(ctx, in, dst, mode); err != nil {
			return err
		}
		return nil
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// variant returns the verified path of blob d with mode, creating that
// mode's copy from another mode's if needed.
func (s *Store) variant(ctx context.Context, d digest.Digest, mode fs.FileMode) (string, error) {
	p := s.blobPath(d, mode)
	err := s.verify(ctx, p, d)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return p, err
	}
	firstErr := err
	others, _ := s.variants(d)
	for _, o := range others {
		if s.verify(ctx, o, d) != nil {
			continue
		}
		in, err := os.Open(o)
		if err != nil {
			continue
		}
		err = copyAtomic(ctx, in, p, mode)
		in.Close()
		if err != nil {
			return "", err
		}
		return p, s.verify(ctx, p, d)
	}
	return "", firstErr
}

// verify checks that the file at p has digest d, once per process and
// file version. A mismatch evicts the file and reports it missing.
func (s *Store) verify(ctx context.Context, p string, d digest.Digest) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	id := verifyID{path: p, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.ino = st.Ino
	}
	s.mu.Lock()
	ok := s.verified[id]
	s.mu.Unlock()
	if ok {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	hw := d.Algorithm().Hash()
	_, err = io.Copy(hw, ctxReader{ctx, f})
	f.Close()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("reading blob %s: %w", d, err)
	}
	if got := digest.NewDigest(d.Algorithm(), hw); got != d {
		s.evict(p, "blob", d, fmt.Errorf("content digest is %s", got))
		return fmt.Errorf("blob %s was corrupt (content digest %s) and has been evicted: %w", d, got, fs.ErrNotExist)
	}
	s.mu.Lock()
	s.verified[id] = true
	s.mu.Unlock()
	return nil
}

// LockAction takes the per-key lock for key, waiting until it is free or
// ctx is done.
func (s *Store) LockAction(ctx context.Context, key digest.Digest) (func(), error) {
	if err := checkDigest(key); err != nil {
		return nil, err
	}
	h := key.Encoded()
	p := filepath.Join(s.dir, "locks", h[:2], h+".lock")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, err
	}
	l := flock.New(p)
	ok, err := l.TryLockContext(ctx, lockPoll)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("lock %s: not acquired", p)
	}
	return func() { _ = l.Close() }, nil
}

// ctxReader stops a long copy when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func tempName(dst string) string {
	return filepath.Join(filepath.Dir(dst), fmt.Sprintf(".%s.uvmbuild-%d-%d", filepath.Base(dst), os.Getpid(), time.Now().UnixNano()))
}

// copyAtomic copies r into dst with mode: temp file beside dst, fsync,
// rename.
func copyAtomic(ctx context.Context, r io.Reader, dst string, mode fs.FileMode) error {
	return atomicfile.Write(dst, filemode.FromUnix(mode), func(f *os.File) error {
		bw := bufio.NewWriterSize(f, 1<<20)
		if _, err := io.Copy(bw, ctxReader{ctx, r}); err != nil {
			return err
		}
		return bw.Flush()
	})
}

func sameFile(a, b string) bool {
	fa, err := os.Lstat(a)
	if err != nil {
		return false
	}
	fb, err := os.Lstat(b)
	if err != nil {
		return false
	}
	return os.SameFile(fa, fb)
}
