package graph

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/atomicfile"
)

// statCache remembers host file digests across builds, keyed by what
// changes whenever a file's content can have changed: path, device,
// inode, size, mtime and ctime (which user space cannot set back). Like
// git's index it does not trust an entry whose file was modified within
// racyWindow of being hashed, since a later write in the same timestamp
// tick would go unnoticed. It lives in WorkDir/filehashes.json, is loaded
// on the first host file hashed and merged back at the end of a build.
type statCache struct {
	path string
	racy time.Duration // racyWindow; tests shorten it

	once    sync.Once
	mu      sync.Mutex
	entries map[string]statEntry
	dirty   map[string]statEntry
}

type statEntry struct {
	Dev    uint64        `json:"dev"`
	Ino    uint64        `json:"ino"`
	Size   int64         `json:"size"`
	Mtime  int64         `json:"mtime"`
	Ctime  int64         `json:"ctime"`
	Digest digest.Digest `json:"digest"`
	// Hashed is when the digest was computed (Unix nanoseconds); Used
	// when it was last used (Unix seconds): entries are dropped after
	// statCacheTTL without use.
	Hashed int64 `json:"hashed"`
	Used   int64 `json:"used"`
}

const (
	racyWindow   = 2 * time.Second
	statCacheTTL = 30 * 24 * time.Hour
)

func newStatCache(workDir string) *statCache {
	if workDir == "" {
		return nil
	}
	return &statCache{path: filepath.Join(workDir, "filehashes.json"), racy: racyWindow, dirty: map[string]statEntry{}}
}

func (c *statCache) load() {
	c.once.Do(func() {
		c.entries = map[string]statEntry{}
		if data, err := os.ReadFile(c.path); err == nil {
			_ = json.Unmarshal(data, &c.entries) // a damaged file is an empty cache
		}
	})
}

func statKey(fi fs.FileInfo) (statEntry, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return statEntry{}, false
	}
	return statEntry{Dev: uint64(st.Dev), Ino: st.Ino, Size: fi.Size(), Mtime: fi.ModTime().UnixNano(),
		Ctime: st.Ctim.Sec*1e9 + st.Ctim.Nsec}, true
}

// get returns the remembered digest of the file at abs, if still valid.
func (c *statCache) get(abs string, fi fs.FileInfo) (digest.Digest, bool) {
	if c == nil {
		return "", false
	}
	k, ok := statKey(fi)
	if !ok {
		return "", false
	}
	c.load()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[abs]
	if !ok || e.Dev != k.Dev || e.Ino != k.Ino || e.Size != k.Size || e.Mtime != k.Mtime || e.Ctime != k.Ctime {
		return "", false
	}
	if time.Unix(0, max(e.Mtime, e.Ctime)).Add(c.racy).After(time.Unix(0, e.Hashed)) {
		return "", false // modified too close to hashing: re-hash
	}
	if now := time.Now().Unix(); now-e.Used > 24*3600 {
		e.Used = now
		c.dirty[abs] = e
	}
	return e.Digest, true
}

// put remembers the digest of the file at abs, hashed at start.
func (c *statCache) put(abs string, fi fs.FileInfo, d digest.Digest, start time.Time) {
	if c == nil {
		return
	}
	k, ok := statKey(fi)
	if !ok {
		return
	}
	k.Digest, k.Hashed, k.Used = d, start.UnixNano(), start.Unix()
	c.load()
	c.mu.Lock()
	c.entries[abs] = k
	c.dirty[abs] = k
	c.mu.Unlock()
}

// save merges the changed entries into the file on disk (another process
// may have written it meanwhile), dropping expired entries. Failure only
// costs re-hashing next time.
func (c *statCache) save() {
	if c == nil {
		return
	}
	c.mu.Lock()
	dirty := c.dirty
	c.dirty = map[string]statEntry{}
	c.mu.Unlock()
	if len(dirty) == 0 {
		return
	}
	merged := map[string]statEntry{}
	if data, err := os.ReadFile(c.path); err == nil {
		_ = json.Unmarshal(data, &merged)
	}
	cutoff := time.Now().Add(-statCacheTTL).Unix()
	for p, e := range merged {
		if e.Used < cutoff {
			delete(merged, p)
		}
	}
	for p, e := range dirty {
		merged[p] = e
	}
	data, err := json.Marshal(merged)
	if err != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return
	}
	// Best effort and no fsync: a lost cache only costs re-hashing.
	_ = atomicfile.WriteFile(c.path, data, 0o644, atomicfile.NoSync())
}
