package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
)

// treeEntry is the canonical form of one file system object in a tree
// digest.
type treeEntry struct {
	Path   string        `json:"p"`
	Type   string        `json:"t"`
	Mode   uint32        `json:"m"`
	Digest digest.Digest `json:"d,omitempty"`
	Target string        `json:"l,omitempty"`
}

// TreeDigest is the canonical digest of a set of entries: the SHA-256 of a
// JSON array of (path, type, mode, digest, link target) sorted by path. A
// single file input is the one entry ".", a directory input "." plus its
// content. Sizes are implied by digests and timestamps never count.
func TreeDigest(entries []Entry) digest.Digest {
	te := make([]treeEntry, len(entries))
	for i, e := range entries {
		te[i] = treeEntry{Path: e.Path, Type: e.Type, Mode: uint32(e.Mode), Digest: e.Digest, Target: e.Target}
	}
	sort.Slice(te, func(i, j int) bool { return te[i].Path < te[j].Path })
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(te); err != nil {
		panic(fmt.Sprintf("graph: encoding tree: %v", err))
	}
	return digest.FromBytes(buf.Bytes())
}

// sub returns the part of n's outputs under output (see subManifest).
func (n *node) sub(output string) ([]Entry, bool) {
	return subManifest(n.manifest, output)
}

// subManifest returns the part of m under output, rebased so that output
// itself is "."; output "" selects the whole manifest with no "." entry. It
// reports false when output is not in m.
func subManifest(m *Manifest, output string) ([]Entry, bool) {
	if m == nil {
		return nil, false
	}
	if output == "" {
		return m.Entries, true
	}
	var out []Entry
	found := false
	prefix := output + "/"
	for _, e := range m.Entries {
		switch {
		case e.Path == output:
			found = true
			e.Path = "."
			out = append(out, e)
		case strings.HasPrefix(e.Path, prefix):
			e.Path = e.Path[len(prefix):]
			out = append(out, e)
		}
	}
	return out, found
}

// validOutputName reports whether name is a clean, relative slash path.
func validOutputName(name string) bool {
	return name != "" && name != "." && !strings.HasPrefix(name, "/") &&
		path.Clean(name) == name && name != ".." && !strings.HasPrefix(name, "../")
}
