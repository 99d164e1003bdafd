package lockfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/atomicfile"
)

// Name is the lock file's conventional base name.
const Name = "uvmbuild.lock"

// formatVersion is the schema version written in the file.
const formatVersion = 1

// Lock is the content of a lock file.
type Lock struct {
	Version int              `json:"version"`
	Entries map[string]Entry `json:"entries"`
}

// Entry pins one external thing.
type Entry struct {
	// Ref is the reference the entry was resolved from, e.g. an image
	// reference without digest; informational.
	Ref string `json:"ref,omitempty"`
	// Digest is the pinned digest (an image manifest digest, or the digest
	// of a fetch step's whole result).
	Digest digest.Digest `json:"digest,omitempty"`
	// Checksums maps each fetched file (or package) to its content digest.
	Checksums map[string]digest.Digest `json:"checksums,omitempty"`
}

// Equal reports whether e and o pin the same content (Ref is ignored: the
// same digest reached through another reference is the same thing).
func (e Entry) Equal(o Entry) bool {
	return e.Digest == o.Digest && maps.Equal(e.Checksums, o.Checksums)
}

// MismatchError reports a lock entry that no longer matches what a build
// resolved or fetched.
type MismatchError struct {
	File  string // lock file path
	Name  string // entry name
	Field string // "digest" or "checksums[<file>]"
	Want  digest.Digest
	Got   digest.Digest
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s: entry %q: %s is locked to %s but the build got %s (update the lock deliberately if the change is expected)",
		e.File, e.Name, e.Field, e.Want, e.Got)
}

// ErrMismatch is matched by every *MismatchError (errors.Is).
var ErrMismatch = errors.New("lock entry mismatch")

// Is makes errors.Is(err, ErrMismatch) true.
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

// Parse decodes a lock file's bytes; name is used in errors.
func Parse(name string, b []byte) (*Lock, error) {
	var l Lock
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("lock file %s: %w", name, err)
	}
	if l.Version != formatVersion {
		return nil, fmt.Errorf("lock file %s: version %d not supported (want %d)", name, l.Version, formatVersion)
	}
	if l.Entries == nil {
		l.Entries = map[string]Entry{}
	}
	for n, e := range l.Entries {
		if e.Digest != "" {
			if err := e.Digest.Validate(); err != nil {
				return nil, fmt.Errorf("lock file %s: entry %q: digest: %w", name, n, err)
			}
		}
		for f, d := range e.Checksums {
			if err := d.Validate(); err != nil {
				return nil, fmt.Errorf("lock file %s: entry %q: checksum of %q: %w", name, n, f, err)
			}
		}
	}
	return &l, nil
}

// Read reads the lock file at path. A missing file is an empty lock.
func Read(path string) (*Lock, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &Lock{Version: formatVersion, Entries: map[string]Entry{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading lock file: %w", err)
	}
	return Parse(path, b)
}

// Marshal encodes l canonically (sorted keys, two-space indent, final
// newline), so the file diffs well under version control.
func (l *Lock) Marshal() ([]byte, error) {
	out := Lock{Version: formatVersion, Entries: l.Entries}
	if out.Entries == nil {
		out.Entries = map[string]Entry{}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Write writes l to path atomically: temporary file in the same directory,
// fsync, rename.
func (l *Lock) Write(path string) error {
	b, err := l.Marshal()
	if err != nil {
		return fmt.Errorf("encoding lock file %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("lock file: %w", err)
	}
	return nil
}

// Check compares got with the entry locked under name, if any. It returns a
// *MismatchError for the first difference (digest first, then checksums in
// sorted order) and nil when there is no entry or it matches.
func (l *Lock) Check(file, name string, got Entry) error {
	want, ok := l.Entries[name]
	if !ok {
		return nil
	}
	return compare(file, name, want, got)
}

func compare(file, name string, want, got Entry) error {
	if want.Digest != got.Digest {
		return &MismatchError{File: file, Name: name, Field: "digest", Want: want.Digest, Got: got.Digest}
	}
	keys := slices.Sorted(maps.Keys(want.Checksums))
	for k := range got.Checksums {
		if _, ok := want.Checksums[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if want.Checksums[k] != got.Checksums[k] {
			return &MismatchError{File: file, Name: name, Field: "checksums[" + k + "]", Want: want.Checksums[k], Got: got.Checksums[k]}
		}
	}
	return nil
}

// Change is one difference between two locks.
type Change struct {
	Name     string
	Old, New *Entry // nil when absent on that side
}

func (c Change) String() string {
	switch {
	case c.Old == nil:
		return fmt.Sprintf("+ %s %s", c.Name, c.New.Digest)
	case c.New == nil:
		return fmt.Sprintf("- %s %s", c.Name, c.Old.Digest)
	default:
		return fmt.Sprintf("~ %s %s -> %s", c.Name, c.Old.Digest, c.New.Digest)
	}
}

// Diff lists the entries added, removed or changed from a to b, sorted by
// name.
func Diff(a, b *Lock) []Change {
	names := map[string]bool{}
	for n := range a.Entries {
		names[n] = true
	}
	for n := range b.Entries {
		names[n] = true
	}
	var out []Change
	for _, n := range slices.Sorted(maps.Keys(names)) {
		oe, oo := a.Entries[n]
		ne, no := b.Entries[n]
		switch {
		case oo && no && oe.Equal(ne):
		case oo && no:
			out = append(out, Change{Name: n, Old: &oe, New: &ne})
		case oo:
			out = append(out, Change{Name: n, Old: &oe})
		default:
			out = append(out, Change{Name: n, New: &ne})
		}
	}
	return out
}

// File is a handle on one lock file shared by the steps of a build. Its
// methods are safe for concurrent use, within the process (a mutex) and
// between processes (flock on the file's directory); each call re-reads the
// file, so entries recorded by another build are seen.
type File struct {
	path string
	mu   sync.Mutex
}

// Open returns a handle on the lock file at path (which need not exist).
func Open(path string) *File { return &File{path: path} }

// Path returns the lock file's path.
func (f *File) Path() string { return f.path }

// Lookup returns the entry locked under name.
func (f *File) Lookup(name string) (Entry, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := Read(f.path)
	if err != nil {
		return Entry{}, false, err
	}
	e, ok := l.Entries[name]
	return e, ok, nil
}

// Record checks got against the entry locked under name: a mismatch is a
// *MismatchError and leaves the file untouched; a new name is added and the
// file rewritten atomically.
func (f *File) Record(name string, got Entry) error {
	return f.update(func(l *Lock) (bool, error) {
		if _, ok := l.Entries[name]; ok {
			return false, l.Check(f.path, name, got)
		}
		l.Entries[name] = got
		return true, nil
	})
}

// Set replaces (or adds) the entry under name: the deliberate update after
// an expected upstream change.
func (f *File) Set(name string, e Entry) error {
	return f.update(func(l *Lock) (bool, error) {
		if old, ok := l.Entries[name]; ok && old.Equal(e) && old.Ref == e.Ref {
			return false, nil
		}
		l.Entries[name] = e
		return true, nil
	})
}

// Remove deletes the entry under name, if present.
func (f *File) Remove(name string) error {
	return f.update(func(l *Lock) (bool, error) {
		if _, ok := l.Entries[name]; !ok {
			return false, nil
		}
		delete(l.Entries, name)
		return true, nil
	})
}

func (f *File) update(fn func(*Lock) (bool, error)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := filepath.Dir(f.path)
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("locking %s: %w", f.path, err)
	}
	defer d.Close()
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", f.path, err)
	}
	defer syscall.Flock(int(d.Fd()), syscall.LOCK_UN)
	l, err := Read(f.path)
	if err != nil {
		return err
	}
	changed, err := fn(l)
	if err != nil || !changed {
		return err
	}
	return l.Write(f.path)
}
