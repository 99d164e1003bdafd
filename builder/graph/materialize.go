package graph

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/uvmbuild/uvmbuild/builder/filemode"
	"github.com/uvmbuild/uvmbuild/builder/record"
)

// Materialize places arts into outDir under their As names and returns
// their records, sorted by name. It works in two phases: every artifact is
// first staged beside its destination (files hard-linked or copied from the
// store and digest-checked, trees built complete), then each is renamed
// into place (a directory by atomic exchange). If staging fails nothing in
// outDir has changed; a destination is never half-written. An artifact
// whose stored blob is corrupt makes its step be rebuilt.
func (r *Result) Materialize(ctx context.Context, outDir string, arts []Artifact) ([]record.Artifact, error) {
	b := r.b
	type staged struct {
		tmp, dst string
		skip     bool
	}
	var stages []staged
	defer func() {
		for _, s := range stages {
			if s.tmp != "" {
				removeAll(s.tmp)
			}
		}
	}()
	names := map[string]bool{}
	var recs []record.Artifact
	for _, a := range arts {
		if !validOutputName(a.As) {
			return nil, fmt.Errorf("artifact name %q is not a clean relative path", a.As)
		}
		if names[a.As] {
			return nil, fmt.Errorf("two artifacts named %q", a.As)
		}
		for n := range names {
			if strings.HasPrefix(a.As, n+"/") || strings.HasPrefix(n, a.As+"/") {
				return nil, fmt.Errorf("artifact %q overlaps artifact %q", a.As, n)
			}
		}
		names[a.As] = true
		n := b.g.byStep[a.Step]
		if n == nil || n.manifest == nil {
			id := "<nil>"
			if a.Step != nil {
				id = a.Step.ID
			}
			return nil, fmt.Errorf("artifact %s: step %s has no outputs in this build", a.As, id)
		}
		entries, ok := n.sub(a.Output)
		if !ok {
			return nil, fmt.Errorf("artifact %s: step %s has no output %q", a.As, a.Step.ID, a.Output)
		}
		rec := record.Artifact{Name: a.As, Step: a.Step.ID, Output: a.Output, Type: "dir", Digest: TreeDigest(entries)}
		if a.Output == "" || len(entries) == 0 || entries[0].Path != "." {
			rec.Entries = entries
		} else {
			root := entries[0]
			rec.Type = root.Type
			switch root.Type {
			case "file":
				rec.Digest, rec.Size = root.Digest, root.Size
			case "dir":
				rec.Entries = entries[1:]
			}
		}
		recs = append(recs, rec)

		dst, err := filepath.Abs(filepath.Join(outDir, filepath.FromSlash(a.As)))
		if err != nil {
			return nil, err
		}
		if b.inPlace(dst, entries, a.Output == "") {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, fmt.Errorf("artifact %s: %w", a.As, err)
		}
		tmp, err := os.MkdirTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".uvmbuild-")
		if err != nil {
			return nil, fmt.Errorf("artifact %s: %w", a.As, err)
		}
		st := staged{tmp: tmp, dst: dst}
		stages = append(stages, st)
		obj := filepath.Join(tmp, "obj")
		if err := b.materialise(ctx, n, a.Output, obj); err != nil {
			return nil, fmt.Errorf("artifact %s: %w", a.As, err)
		}
		if rec.Type == "file" && sameFile(obj, dst) {
			stages[len(stages)-1].skip = true
		}
	}
	for _, s := range stages {
		if s.skip {
			continue
		}
		if err := replace(filepath.Join(s.tmp, "obj"), s.dst); err != nil {
			return nil, err
		}
	}
	b.hash.stat.save()
	sort.Slice(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	return recs, nil
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

// replace moves src to dst atomically. A directory, or anything replacing
// a directory, is swapped in with RENAME_EXCHANGE so that dst always names
// a complete object; the old one is then removed.
func replace(src, dst string) error {
	fi, err := os.Lstat(dst)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("placing %s: %w", dst, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("placing %s: %w", dst, err)
	}
	sfi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if !fi.IsDir() && !sfi.IsDir() {
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("placing %s: %w", dst, err)
		}
		return nil
	}
	if err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_EXCHANGE); err != nil {
		// File systems without RENAME_EXCHANGE: move the old one aside
		// first (a short window in which dst is absent, never partial).
		old := src + ".old"
		if err := os.Rename(dst, old); err != nil {
			return fmt.Errorf("placing %s: %w", dst, err)
		}
		if err := os.Rename(src, dst); err != nil {
			_ = os.Rename(old, dst)
			return fmt.Errorf("placing %s: %w", dst, err)
		}
		removeAll(old)
		return nil
	}
	removeAll(src) // now holds the old object
	return nil
}

// Clean removes the named slash paths under outDir (clean targets). Each
// is first renamed aside, so a name is either fully present or gone.
func Clean(outDir string, names []string) error {
	for _, name := range names {
		if !validOutputName(path.Clean(name)) {
			return fmt.Errorf("clean: %q is not a clean relative path", name)
		}
		p := filepath.Join(outDir, filepath.FromSlash(name))
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		aside, err := os.MkdirTemp(filepath.Dir(p), "."+filepath.Base(p)+".clean-")
		if err != nil {
			return fmt.Errorf("clean %s: %w", name, err)
		}
		if err := os.Rename(p, filepath.Join(aside, "obj")); err != nil {
			os.Remove(aside)
			return fmt.Errorf("clean %s: %w", name, err)
		}
		removeAll(aside)
	}
	return nil
}

// inPlace reports whether dst already holds exactly entries (files as the
// stored inodes, same directories, modes and symlinks, nothing else), so
// that a no-op build does not touch the output directory. bare means the
// entries have no "." root (a whole output directory).
//
// Files are compared by content digest, read through the remembered file
// digests (see statCache): after the first no-op build an unchanged
// artifact costs a stat, and one modified in place (through its hard link
// into the cache) is noticed by its new mtime and ctime.
func (b *builder) inPlace(dst string, entries []Entry, bare bool) bool {
	want := map[string]Entry{}
	for _, e := range entries {
		want[e.Path] = e
	}
	if bare {
		want["."] = Entry{Path: ".", Type: "dir", Mode: 0o755}
	}
	matches := func(rel, p string, fi os.FileInfo) bool {
		e, ok := want[rel]
		if !ok {
			return false
		}
		switch {
		case fi.Mode().IsRegular():
			if e.Type != "file" || filemode.ToUnix(fi.Mode()) != e.Mode || fi.Size() != e.Size {
				return false
			}
			s, err := b.hash.file(p, fi)
			return err == nil && s.d == e.Digest
		case fi.IsDir():
			return e.Type == "dir" && filemode.ToUnix(fi.Mode()) == e.Mode
		case fi.Mode()&os.ModeSymlink != 0:
			t, err := os.Readlink(p)
			return e.Type == "symlink" && err == nil && t == e.Target
		}
		return false
	}
	fi, err := os.Lstat(dst)
	if err != nil || !matches(".", dst, fi) {
		return false
	}
	if !fi.IsDir() {
		return len(want) == 1
	}
	seen := 1
	ok := true
	_ = filepath.Walk(dst, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			ok = false
			return err
		}
		if p == dst {
			return nil
		}
		rel, _ := filepath.Rel(dst, p)
		if !matches(filepath.ToSlash(rel), p, fi) {
			ok = false
			return filepath.SkipAll
		}
		seen++
		return nil
	})
	return ok && seen == len(want)
}
