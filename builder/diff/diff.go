package diff

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// Options tune a comparison. The zero value is usable.
type Options struct {
	// MaxItems bounds the differences listed per report (0: 200).
	MaxItems int
	// Label, when set, names the two sides in the report instead of their
	// paths (e.g. "build 1" and "build 2").
	LabelA, LabelB string
	// Skip lists slash paths, relative to the roots of a directory
	// comparison, left out of it (e.g. build.json, which records
	// durations).
	Skip []string
}

func (o *Options) norm() *Options {
	c := Options{MaxItems: 200}
	if o != nil {
		c = *o
		if c.MaxItems <= 0 {
			c.MaxItems = 200
		}
	}
	return &c
}

// ErrIncomparable marks inputs that cannot be compared meaningfully
// (a file against a directory, records of different targets). Callers
// branch on it to tell bad input from "different".
var ErrIncomparable = errors.New("inputs are not comparable")

// smallLimit is the size up to which a file is read whole for the
// key/value, JSON and text comparisons.
const smallLimit = 1 << 20

// Files compares two files or two directory trees and explains their
// differences with the structured comparison their content calls for.
func Files(ctx context.Context, a, b string, opt *Options) (*Report, error) {
	o := opt.norm()
	sa, err := os.Stat(a)
	if err != nil {
		return nil, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return nil, err
	}
	r := &Report{A: label(o.LabelA, a), B: label(o.LabelB, b)}
	switch {
	case sa.IsDir() && sb.IsDir():
		r.Kind = "dir"
		return r, compareDirs(ctx, a, b, r, o)
	case sa.IsDir() != sb.IsDir():
		return nil, fmt.Errorf("%w: %s is a %s, %s is a %s", ErrIncomparable, a, kindOf(sa), b, kindOf(sb))
	}
	return r, compareFile(ctx, a, b, sa.Size(), sb.Size(), r, o)
}

func label(l, p string) string {
	if l != "" {
		return l
	}
	return p
}

func kindOf(fi fs.FileInfo) string {
	if fi.IsDir() {
		return "directory"
	}
	return "file"
}

// compareFile picks the comparison by content; the cheap equality check
// comes first so identical large files cost one streaming read.
func compareFile(ctx context.Context, a, b string, sizeA, sizeB int64, r *Report, o *Options) error {
	ha, err := readHead(a)
	if err != nil {
		return err
	}
	hb, err := readHead(b)
	if err != nil {
		return err
	}
	if sizeA == sizeB {
		same, err := sameContent(ctx, a, b)
		if err != nil {
			return err
		}
		if same {
			r.Kind = sniff(ha, a)
			return nil
		}
	}
	ka, kb := sniff(ha, a), sniff(hb, b)
	if ka == kb {
		r.Kind = ka
		switch ka {
		case "igvm":
			return compareIGVM(a, b, r, o)
		case "disk":
			return compareDisk(ctx, a, b, r, o)
		case "tar":
			return compareTar(ctx, a, b, r, o)
		}
	}
	if sizeA <= smallLimit && sizeB <= smallLimit {
		da, err := readSmall(a)
		if err != nil {
			return err
		}
		db, err := readSmall(b)
		if err != nil {
			return err
		}
		compareSmall(ctx, r, o, a, b, da, db)
		if ka != kb {
			r.Items = append([]Item{{Where: "format", A: ka, B: kb}}, r.Items...)
		}
		return nil
	}
	r.Kind = "binary"
	if ka != kb {
		r.add(o.MaxItems, Item{Where: "format", A: ka, B: kb})
	}
	return compareBinary(ctx, a, b, r, o)
}

func compareBinary(ctx context.Context, a, b string, r *Report, o *Options) error {
	fa, fb, err := openPair(a, b)
	if err != nil {
		return err
	}
	defer fa.Close()
	defer fb.Close()
	st, err := compareStreams(ctx, fa, fb)
	if err != nil {
		return fmt.Errorf("comparing %s and %s: %w", a, b, err)
	}
	for _, it := range binaryItems(st, fa, fb, nil) {
		r.add(o.MaxItems, it)
	}
	return nil
}

func readHead(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p := make([]byte, 4096)
	n, err := io.ReadFull(f, p)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return p[:n], nil
}

// sniff names a file's format from its first bytes.
func sniff(head []byte, name string) string {
	switch {
	case isIGVM(head):
		return "igvm"
	case isDiskImage(head):
		return "disk"
	case len(head) >= 262 && bytes.Equal(head[257:262], []byte("ustar")),
		len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b && isTarFile(name),
		len(head) >= 4 && bytes.Equal(head[:4], []byte{0x28, 0xb5, 0x2f, 0xfd}) && isTarFile(name):
		return "tar"
	}
	return "file"
}

// openPair opens the two files compared; on error neither stays open.
func openPair(a, b string) (*os.File, *os.File, error) {
	fa, err := os.Open(a)
	if err != nil {
		return nil, nil, err
	}
	fb, err := os.Open(b)
	if err != nil {
		fa.Close()
		return nil, nil, err
	}
	return fa, fb, nil
}

// sameContent compares two files of equal size in fixed-size chunks.
func sameContent(ctx context.Context, a, b string) (bool, error) {
	fa, fb, err := openPair(a, b)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	defer fb.Close()
	bufA, bufB := make([]byte, chunkSize), make([]byte, chunkSize)
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		na, errA := io.ReadFull(fa, bufA)
		nb, errB := io.ReadFull(fb, bufB)
		if na != nb || !bytes.Equal(bufA[:na], bufB[:nb]) {
			return false, nil
		}
		doneA := errA == io.EOF || errA == io.ErrUnexpectedEOF
		doneB := errB == io.EOF || errB == io.ErrUnexpectedEOF
		if errA != nil && !doneA {
			return false, fmt.Errorf("reading %s: %w", a, errA)
		}
		if errB != nil && !doneB {
			return false, fmt.Errorf("reading %s: %w", b, errB)
		}
		if doneA || doneB {
			return doneA == doneB, nil
		}
	}
}

// dirEntry is one object of a tree being compared.
type dirEntry struct {
	mode   fs.FileMode
	size   int64
	target string
}

func walkTree(root string, skip []string) (map[string]dirEntry, error) {
	m := map[string]dirEntry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		if slices.Contains(skip, filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := dirEntry{mode: fi.Mode(), size: fi.Size()}
		if fi.Mode()&fs.ModeSymlink != 0 {
			e.target, _ = os.Readlink(p)
		}
		m[filepath.ToSlash(rel)] = e
		return nil
	})
	return m, err
}

// compareDirs compares two trees: entries on one side only, type and mode
// differences, and a structured sub-report for each differing file.
func compareDirs(ctx context.Context, a, b string, r *Report, o *Options) error {
	ma, err := walkTree(a, o.Skip)
	if err != nil {
		return err
	}
	mb, err := walkTree(b, o.Skip)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var paths []string
	for p := range ma {
		seen[p] = true
		paths = append(paths, p)
	}
	for p := range mb {
		if !seen[p] {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		x, okA := ma[p]
		y, okB := mb[p]
		switch {
		case !okB:
			r.add(o.MaxItems, Item{Where: p + ": only in " + r.A, A: x.mode.String(), B: ""})
			continue
		case !okA:
			r.add(o.MaxItems, Item{Where: p + ": only in " + r.B, A: "", B: y.mode.String()})
			continue
		}
		if x.mode.Type() != y.mode.Type() || x.mode.Perm() != y.mode.Perm() {
			r.add(o.MaxItems, Item{Where: p + ": mode", A: x.mode.String(), B: y.mode.String()})
		}
		if x.mode.Type() != y.mode.Type() {
			continue
		}
		if x.target != y.target {
			r.add(o.MaxItems, Item{Where: p + ": symlink target", A: x.target, B: y.target})
		}
		if !x.mode.IsRegular() {
			continue
		}
		sub := &Report{A: filepath.Join(a, p), B: filepath.Join(b, p)}
		if err := compareFile(ctx, sub.A, sub.B, x.size, y.size, sub, o); err != nil {
			return err
		}
		if !sub.Same() {
			r.add(o.MaxItems, Item{Where: p, Sub: sub})
		}
	}
	return nil
}
