package images

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"
)

// staleWork is how old a work directory must be before Prune removes it: a
// younger one may belong to an import or unpack still running.
const staleWork = time.Hour

// Prune removes from the store every image (layout and unpacked root) whose
// digest is not in keep, and work directories left by crashed runs. It
// must not run while a build uses the store. It returns the digests
// removed.
func (s *Store) Prune(keep []digest.Digest, now time.Time) ([]digest.Digest, error) {
	kept := map[string]bool{}
	for _, d := range keep {
		kept[d.Encoded()] = true
	}
	removed := map[string]bool{}
	for _, sub := range []string{"oci", "rootfs"} {
		ents, err := os.ReadDir(s.dir(sub))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("pruning image store: %w", err)
		}
		for _, e := range ents {
			if kept[e.Name()] {
				continue
			}
			if err := os.RemoveAll(s.dir(sub, e.Name())); err != nil {
				return nil, fmt.Errorf("pruning image store: %w", err)
			}
			removed[e.Name()] = true
		}
	}
	if ents, err := os.ReadDir(s.dir("tmp")); err == nil {
		for _, e := range ents {
			fi, err := e.Info()
			if err == nil && now.Sub(fi.ModTime()) > staleWork {
				os.RemoveAll(filepath.Join(s.dir("tmp"), e.Name()))
			}
		}
	}
	var out []digest.Digest
	for h := range removed {
		out = append(out, digest.NewDigestFromEncoded(digest.SHA256, h))
	}
	slices.Sort(out)
	return out, nil
}
