package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ManifestPath is where, under the root, the record of installed files is
// kept (slash-separated, absolute within the root).
const ManifestPath = "/var/lib/uvmbuild/deploy.json"

const manifestSchema = "uvmbuild-deploy/1"

// Manifest records what deploy installed under one root, so that undeploy
// removes exactly that and a re-deploy can tell what it owns.
type Manifest struct {
	Schema string `json:"schema"`
	// Files are the installed files, sorted by Path.
	Files []Installed `json:"files"`
	// Dirs are the directories deploy created (they did not exist before),
	// sorted; undeploy removes each one that is empty.
	Dirs []string `json:"dirs"`
}

// Installed is one installed file.
type Installed struct {
	// Path is absolute and slash-separated, relative to the root.
	Path string `json:"path"`
	// Digest is "sha256:<hex>" of the content.
	Digest string `json:"digest"`
	// Mode is the permission bits, in octal ("0755").
	Mode string `json:"mode"`
	// Size is the content length in bytes.
	Size int64 `json:"size"`
	// Variant and Part say which deploy target installed the file.
	Variant Variant `json:"variant"`
	Part    Part    `json:"part"`
}

func (i Installed) mode() fs.FileMode {
	m, _ := strconv.ParseUint(i.Mode, 8, 32)
	return fs.FileMode(m)
}

func fmtMode(m fs.FileMode) string {
	return fmt.Sprintf("%04o", uint32(m.Perm()|m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)))
}

// ReadManifest reads the manifest under root; a missing manifest is an
// empty one.
func ReadManifest(root string) (*Manifest, error) {
	p := hostPath(root, ManifestPath)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &Manifest{Schema: manifestSchema}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading deploy manifest: %w", err)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("deploy manifest %s: %w", p, err)
	}
	if m.Schema != manifestSchema {
		return nil, fmt.Errorf("deploy manifest %s: schema %q, want %q", p, m.Schema, manifestSchema)
	}
	for _, f := range m.Files {
		if err := checkDest(f.Path); err != nil {
			return nil, fmt.Errorf("deploy manifest %s: %w", p, err)
		}
	}
	for _, d := range m.Dirs {
		if err := checkDest(d); err != nil {
			return nil, fmt.Errorf("deploy manifest %s: %w", p, err)
		}
	}
	return &m, nil
}

func (m *Manifest) encode() []byte {
	slices.SortFunc(m.Files, func(a, b Installed) int { return strings.Compare(a.Path, b.Path) })
	slices.Sort(m.Dirs)
	m.Dirs = slices.Compact(m.Dirs)
	if m.Files == nil {
		m.Files = []Installed{}
	}
	if m.Dirs == nil {
		m.Dirs = []string{}
	}
	data, _ := json.MarshalIndent(m, "", "  ")
	return append(data, '\n')
}

// writeManifest replaces the manifest atomically, unless it already has
// these bytes.
func writeManifest(root string, m *Manifest) error {
	p := hostPath(root, ManifestPath)
	data := m.encode()
	removeStaleTemps(p)
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return writeAtomic(p, 0o644, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// checkDest rejects destinations that are not absolute clean slash paths, so
// that nothing escapes the root.
func checkDest(dest string) error {
	if !path.IsAbs(dest) || path.Clean(dest) != dest || dest == "/" || strings.Contains(dest, "\\") {
		return fmt.Errorf("destination %q: want an absolute, clean path", dest)
	}
	return nil
}

// hostPath is dest under root ("" or "/" is the live system).
func hostPath(root, dest string) string {
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, filepath.FromSlash(dest))
}
