package graph

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
)

// hasher digests host inputs. It memoises per build: a file is read once
// however many inputs or steps name it (keyed by path, size, mtime and
// inode, so a file rewritten mid-build is hashed again), and a directory
// input once per (path, ignore list).
type hasher struct {
	jobs  int        // files of one tree hashed at once
	stat  *statCache // across builds; nil disables
	mu    sync.Mutex
	files map[fileID]fileSum
	trees map[string]treeSum
	sf    singleflight.Group
}

type fileID struct {
	path  string
	size  int64
	mtime int64
	ino   uint64
}

type fileSum struct {
	d    digest.Digest
	size int64
}

type treeSum struct {
	d      digest.Digest
	source string
}

func newHasher(workDir string, jobs int) *hasher {
	return &hasher{jobs: max(jobs, 1), stat: newStatCache(workDir), files: map[fileID]fileSum{}, trees: map[string]treeSum{}}
}

// hostPerm normalises host permission bits to what a checkout preserves:
// the executable bit (0755 or 0644). Umask and ownership must not leak into
// keys.
func hostPerm(m fs.FileMode) fs.FileMode {
	if m.IsDir() || m&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

// input returns the digest of a host path input and its source ("file" or
// "dir").
func (h *hasher) input(ctx context.Context, p string, ignore []string) (digest.Digest, string, error) {
	k := p + "\x00" + strings.Join(ignore, "\x00")
	h.mu.Lock()
	if t, ok := h.trees[k]; ok {
		h.mu.Unlock()
		return t.d, t.source, nil
	}
	h.mu.Unlock()
	v, err, _ := h.sf.Do(k, func() (any, error) {
		d, src, err := h.hashPath(ctx, p, ignore)
		if err != nil {
			return nil, err
		}
		t := treeSum{d, src}
		h.mu.Lock()
		h.trees[k] = t
		h.mu.Unlock()
		return t, nil
	})
	if err != nil {
		return "", "", err
	}
	t := v.(treeSum)
	return t.d, t.source, nil
}

func (h *hasher) hashPath(ctx context.Context, root string, ignore []string) (digest.Digest, string, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return "", "", err
	}
	fi, err := os.Stat(root)
	if err != nil {
		return "", "", err
	}
	if fi.Mode().IsRegular() {
		s, err := h.file(root, fi)
		if err != nil {
			return "", "", err
		}
		return TreeDigest([]Entry{{Path: ".", Type: "file", Mode: hostPerm(fi.Mode()), Digest: s.d, Size: s.size}}), "file", nil
	}
	if !fi.IsDir() {
		return "", "", fmt.Errorf("%s: not a regular file or directory", root)
	}
	for _, pat := range ignore {
		if _, err := path.Match(pat, ""); err != nil {
			return "", "", fmt.Errorf("ignore pattern %q: %w", pat, err)
		}
	}
	entries := []Entry{{Path: ".", Type: "dir", Mode: 0o755}}
	type pending struct {
		i    int
		path string
		info fs.FileInfo
	}
	var files []pending
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if ignored(rel, ignore) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			entries = append(entries, Entry{Path: rel, Type: "dir", Mode: 0o755})
		case info.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			entries = append(entries, Entry{Path: rel, Type: "symlink", Mode: 0o777, Target: t})
		case info.Mode().IsRegular():
			// Hashed below, in parallel.
			files = append(files, pending{len(entries), p, info})
			entries = append(entries, Entry{Path: rel, Type: "file", Mode: hostPerm(info.Mode())})
		default:
			return fmt.Errorf("%s: unsupported file type %s", p, info.Mode().Type())
		}
		return nil
	})
	if err != nil {
		return "", "", err
	}
	var eg errgroup.Group
	eg.SetLimit(h.jobs)
	for _, f := range files {
		eg.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			s, err := h.file(f.path, f.info)
			if err != nil {
				return err
			}
			entries[f.i].Digest, entries[f.i].Size = s.d, s.size
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return "", "", err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	return TreeDigest(entries), "dir", nil
}

// ignored matches rel and its base name against the patterns.
func ignored(rel string, patterns []string) bool {
	base := path.Base(rel)
	for _, p := range patterns {
		if ok, _ := path.Match(p, rel); ok {
			return true
		}
		if ok, _ := path.Match(p, base); ok {
			return true
		}
	}
	return false
}

// file returns the content digest of a regular file, memoised.
func (h *hasher) file(p string, fi fs.FileInfo) (fileSum, error) {
	id := fileID{path: p, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.ino = st.Ino
	}
	h.mu.Lock()
	s, ok := h.files[id]
	h.mu.Unlock()
	if ok {
		return s, nil
	}
	if d, ok := h.stat.get(p, fi); ok {
		s = fileSum{d, fi.Size()}
	} else {
		start := time.Now()
		d, n, err := hashFile(p)
		if err != nil {
			return fileSum{}, err
		}
		s = fileSum{d, n}
		if n == fi.Size() {
			h.stat.put(p, fi, d, start)
		}
	}
	h.mu.Lock()
	h.files[id] = s
	h.mu.Unlock()
	return s, nil
}

// hashFile streams a file through SHA-256.
func hashFile(p string) (digest.Digest, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	hw := sha256.New()
	n, err := io.Copy(hw, f)
	if err != nil {
		return "", 0, fmt.Errorf("reading %s: %w", p, err)
	}
	return digest.NewDigest(digest.SHA256, hw), n, nil
}
