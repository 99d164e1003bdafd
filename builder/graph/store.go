package graph

import (
	"context"
	"io/fs"

	"github.com/opencontainers/go-digest"
)

// Store is where the graph keeps step outputs: an action cache (step key →
// encoded Manifest) and content-addressed file blobs. builder/cache is the
// local implementation; it satisfies Store without importing this package,
// so the interface uses only go-digest and standard types.
type Store interface {
	// GetAction returns the manifest stored under key. A miss returns an
	// error matching ErrNotFound; an entry that fails its integrity check is
	// evicted and also reported as ErrNotFound (the store warns).
	GetAction(ctx context.Context, key digest.Digest) ([]byte, error)
	// PutAction records manifest under key. blobs are the file digests the
	// manifest references; they must already be in the store. The entry is
	// written last and atomically, so a reader sees all or nothing.
	PutAction(ctx context.Context, key digest.Digest, manifest []byte, blobs []digest.Digest) error
	// DeleteAction removes the entry for key (used when one of its blobs is
	// found corrupt, so that the step is rebuilt).
	DeleteAction(ctx context.Context, key digest.Digest) error
	// PutFile moves (or copies) the regular file at path into the store as
	// a blob with permission bits mode and returns its digest and size. The
	// caller must not use path afterwards.
	PutFile(ctx context.Context, path string, mode fs.FileMode) (digest.Digest, int64, error)
	// LinkFile makes dst a file with the blob's content and permission bits
	// mode, by hard link where possible, else by copy, atomically (a temp
	// file beside dst renamed over it). The blob is digest-checked first; a
	// corrupt blob is evicted (with a warning) and, being gone, reported as
	// ErrNotFound: the graph then rebuilds the step that produced it. If
	// dst already is the stored file (same inode) nothing is done.
	LinkFile(ctx context.Context, d digest.Digest, mode fs.FileMode, dst string) error
	// LockAction serialises work on key across processes sharing the store:
	// it blocks until the caller holds the lock or ctx is done.
	LockAction(ctx context.Context, key digest.Digest) (unlock func(), err error)
}

// ErrNotFound is what a Store's errors wrap for a missing (or evicted)
// entry or blob. It is fs.ErrNotExist so that stores need not import this
// package.
var ErrNotFound = fs.ErrNotExist
