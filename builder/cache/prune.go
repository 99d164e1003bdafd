package cache

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gofrs/flock"
	"github.com/opencontainers/go-digest"
)

// PruneStats reports what Prune did.
type PruneStats struct {
	// Before and After are the cache's sizes in bytes.
	Before, After int64
	// Actions and Blobs count the removed action entries and blob files.
	Actions, Blobs int
}

// Usage is the size of the cache directory in bytes (files counted once
// per inode).
func Usage(dir string) (int64, error) {
	var total int64
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if ino := inode(fi); ino != 0 {
				if seen[ino] {
					return nil
				}
				seen[ino] = true
			}
			total += fi.Size()
		}
		return nil
	})
	return total, err
}

// Prune shrinks the cache directory dir to at most maxSize bytes, removing
// the least recently used action entries with their logs, then every blob
// no remaining entry references, and leftovers of interrupted runs. It
// waits (until ctx is done) for builds using the cache to finish, and holds
// them off while it runs.
func Prune(ctx context.Context, dir string, maxSize int64, opts ...Option) (*PruneStats, error) {
	if maxSize < 0 {
		return nil, fmt.Errorf("prune: --max-size %d is negative", maxSize)
	}
	s, err := open(dir, opts)
	if err != nil {
		return nil, err
	}
	l := flock.New(filepath.Join(s.dir, "lock"))
	if _, err := l.TryLockContext(ctx, lockPoll); err != nil {
		return nil, fmt.Errorf("prune: waiting for builds using %s: %w", dir, err)
	}
	defer l.Close()

	st := &PruneStats{}
	if st.Before, err = Usage(s.dir); err != nil {
		return nil, err
	}
	// No build runs: scratch directories are leftovers.
	if ents, err := os.ReadDir(filepath.Join(s.dir, "tmp")); err == nil {
		for _, e := range ents {
			os.RemoveAll(filepath.Join(s.dir, "tmp", e.Name()))
		}
	}

	type action struct {
		path  string
		key   string
		used  time.Time
		blobs []digest.Digest
		size  int64
	}
	var actions []*action
	refs := map[digest.Digest]int{}
	err = filepath.WalkDir(filepath.Join(s.dir, "ac"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !strings.HasSuffix(p, ".json") {
			os.Remove(p) // temp leftover
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h, _, perr := parseEntry(data)
		key := strings.TrimSuffix(filepath.Base(p), ".json")
		if perr != nil {
			os.Remove(p)
			st.Actions++
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		a := &action{path: p, key: key, used: fi.ModTime(), blobs: h.Blobs, size: fi.Size()}
		if lfi, err := os.Stat(s.logPath(key)); err == nil {
			a.size += lfi.Size()
		}
		actions = append(actions, a)
		for _, b := range h.Blobs {
			refs[b]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	blobSize := map[digest.Digest]int64{}
	var blobFiles []string
	err = filepath.WalkDir(filepath.Join(s.dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		blobFiles = append(blobFiles, p)
		blobSize[blobDigest(p)] += fi.Size()
		return nil
	})
	if err != nil {
		return nil, err
	}

	var total int64
	for _, a := range actions {
		total += a.size
	}
	for d, n := range blobSize {
		if refs[d] > 0 {
			total += n
		}
	}
	// Oldest first; drop until what remains fits.
	sort.Slice(actions, func(i, j int) bool { return actions[i].used.Before(actions[j].used) })
	for _, a := range actions {
		if total <= maxSize {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		os.Remove(a.path)
		os.Remove(s.logPath(a.key))
		os.Remove(filepath.Join(s.dir, "locks", a.key[:2], a.key+".lock"))
		st.Actions++
		total -= a.size
		for _, b := range a.blobs {
			refs[b]--
			if refs[b] == 0 {
				total -= blobSize[b]
			}
		}
	}
	for _, p := range blobFiles {
		if refs[blobDigest(p)] <= 0 {
			os.Remove(p)
			st.Blobs++
		}
	}
	// Logs of runs that left no entry (failed or pruned) go too.
	kept := map[string]bool{}
	for _, a := range actions {
		if _, err := os.Stat(a.path); err == nil {
			kept[a.key] = true
		}
	}
	_ = filepath.WalkDir(filepath.Join(s.dir, "logs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !kept[strings.TrimSuffix(d.Name(), ".log")] {
			os.Remove(p)
		}
		return nil
	})
	// The graph's small bookkeeping (per-step key history for `plan`,
	// remembered file digests) goes only when nothing else is left to cut.
	if u, err := Usage(s.dir); err == nil && u > maxSize {
		os.RemoveAll(filepath.Join(s.dir, "history"))
		os.Remove(filepath.Join(s.dir, "filehashes.json"))
	}
	if st.After, err = Usage(s.dir); err != nil {
		return nil, err
	}
	return st, nil
}

func (s *Store) logPath(keyHex string) string {
	if len(keyHex) < 2 {
		return filepath.Join(s.dir, "logs", keyHex+".log")
	}
	return filepath.Join(s.dir, "logs", keyHex[:2], keyHex+".log")
}

// blobDigest recovers the digest from a blob file path
// (blobs/sha256/ab/<hex>.<mode>).
func blobDigest(p string) digest.Digest {
	base := filepath.Base(p)
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	return digest.NewDigestFromEncoded(digest.Algorithm(filepath.Base(filepath.Dir(filepath.Dir(p)))), base)
}

func inode(fi fs.FileInfo) uint64 { return statIno(fi) }
