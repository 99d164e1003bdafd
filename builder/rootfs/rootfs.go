package rootfs

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Action is a Filter's decision for one entry.
type Action int

const (
	// Keep writes the entry unchanged.
	Keep Action = iota
	// Drop omits the entry (and, for a directory, everything below it).
	Drop
	// Empty keeps a regular file with no content.
	Empty
)

// Filter decides what to do with an entry. name is the clean slash path
// without "./" (e.g. "etc/machine-id"); hdr is the normalised header and must
// not be modified.
type Filter func(name string, hdr *tar.Header) (Action, error)

// Rules is a declarative Filter: path.Match patterns matched against the
// clean path (e.g. "var/cache/*", "etc/machine-id").
type Rules struct {
	Drop  []string
	Empty []string
}

// Filter returns r as a Filter. Patterns are checked when it is built.
func (r Rules) Filter() (Filter, error) {
	for _, p := range append(slices.Clone(r.Drop), r.Empty...) {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("filter pattern %q: %w", p, err)
		}
	}
	return func(name string, hdr *tar.Header) (Action, error) {
		for _, p := range r.Drop {
			if ok, _ := path.Match(p, name); ok {
				return Drop, nil
			}
		}
		for _, p := range r.Empty {
			if ok, _ := path.Match(p, name); ok && hdr.Typeflag == tar.TypeReg {
				return Empty, nil
			}
		}
		return Keep, nil
	}, nil
}

// File is a small regular file added by Options.Add.
type File struct {
	Name    string // clean slash path, e.g. "etc/machine-id"
	Mode    int64  // permission bits
	Content []byte
	// IfMissing adds the file only when the input has no such path (like
	// `touch`, which keeps an existing file's content).
	IfMissing bool
}

// Options control normalisation.
type Options struct {
	// SourceDateEpoch clamps mtimes (seconds since 1970, UTC).
	SourceDateEpoch int64
	// Xattrs lists the extended attributes kept; nil means
	// {"security.capability"}, an empty non-nil slice keeps none.
	Xattrs []string
	// Filter, if set, is consulted for every entry.
	Filter Filter
	// Add inserts or replaces files after filtering.
	Add []File
	// TempDir holds the spool file used when the input cannot be read at
	// offsets (a pipe, compressed input); "" means os.TempDir().
	TempDir string
}

// Summary describes a written tar.
type Summary struct {
	Entries   int `json:"entries"`
	Files     int `json:"files"`
	Dirs      int `json:"dirs"`
	Symlinks  int `json:"symlinks"`
	Hardlinks int `json:"hardlinks"`
	Devices   int `json:"devices"`
	// ContentBytes is the sum of regular file sizes (each hardlink group once).
	ContentBytes int64 `json:"content_bytes"`
	// DiskUsage estimates `du -B1 -s` of the extracted tree on ext4 with
	// 4 KiB blocks: files rounded up to blocks (hardlinks once), directories
	// by their entries, one block per symlink target of 60 bytes or more.
	DiskUsage int64 `json:"disk_usage"`
	// Dropped and Emptied list what the filter changed.
	Dropped []string `json:"dropped,omitempty"`
	Emptied []string `json:"emptied,omitempty"`
	// Size and SHA256 describe the written tar.
	Size   int64    `json:"size"`
	SHA256 [32]byte `json:"-"`
}

// ErrUnsafe marks input rejected because it could escape the root.
var ErrUnsafe = errors.New("unsafe tar entry")

const blockSize = 4096

// entry is one path of the normalised tree.
type entry struct {
	name string // clean, no "./", "" for the root
	hdr  *tar.Header
	// content source for regular files
	src    io.ReaderAt
	off    int64
	data   []byte // inline content (Options.Add)
	link   string // hardlink target as given (clean), before resolution
	group  *entry // hardlink group root (the entry holding the content in the input)
	action Action
}

// cleanName validates and cleans a tar entry name.
func cleanName(raw string) (string, error) {
	n := raw
	if strings.HasPrefix(n, "/") {
		return "", fmt.Errorf("%w %q: absolute path", ErrUnsafe, raw)
	}
	for _, c := range strings.Split(n, "/") {
		if c == ".." {
			return "", fmt.Errorf("%w %q: \"..\" component", ErrUnsafe, raw)
		}
	}
	n = path.Clean("/" + n)[1:]
	return n, nil
}

// compareNames orders paths depth-first, names sorted bytewise within a
// directory (a parent precedes its children).
func compareNames(a, b string) int {
	for a != "" || b != "" {
		ai, bi := strings.IndexByte(a, '/'), strings.IndexByte(b, '/')
		ac, bc := a, b
		ar, br := "", ""
		if ai >= 0 {
			ac, ar = a[:ai], a[ai+1:]
		}
		if bi >= 0 {
			bc, br = b[:bi], b[bi+1:]
		}
		if a == "" {
			return -1
		}
		if b == "" {
			return 1
		}
		if c := strings.Compare(ac, bc); c != 0 {
			return c
		}
		a, b = ar, br
	}
	return 0
}

// normHeader builds the normalised header for an input header.
func normHeader(in *tar.Header, o *Options, keep map[string]bool) (*tar.Header, error) {
	h := &tar.Header{
		Typeflag: in.Typeflag,
		Mode:     in.Mode & 0o7777,
		Uid:      in.Uid,
		Gid:      in.Gid,
		ModTime:  clamp(in.ModTime, o.SourceDateEpoch),
		Format:   tar.FormatPAX,
	}
	switch in.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		h.Typeflag = tar.TypeReg
		h.Size = in.Size
	case tar.TypeDir:
	case tar.TypeSymlink, tar.TypeLink:
		h.Linkname = in.Linkname
	case tar.TypeChar, tar.TypeBlock:
		h.Devmajor, h.Devminor = in.Devmajor, in.Devminor
	case tar.TypeFifo:
	default:
		return nil, fmt.Errorf("tar entry %q: unsupported type %q", in.Name, in.Typeflag)
	}
	for k, v := range in.PAXRecords {
		if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok && keep[x] {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords[k] = v
		}
	}
	return h, nil
}

func clamp(t time.Time, sde int64) time.Time {
	s := t.Unix()
	if s > sde {
		s = sde
	}
	return time.Unix(s, 0).UTC()
}

func (o *Options) xattrSet() map[string]bool {
	keep := map[string]bool{}
	xs := o.Xattrs
	if xs == nil {
		xs = []string{"security.capability"}
	}
	for _, x := range xs {
		keep[x] = true
	}
	return keep
}

// Normalize reads the tar r and writes its normalised form to w. When r is
// an *os.File (any io.ReaderAt and io.Seeker at offset 0) with an
// uncompressed tar, file contents are read from it at their offsets in a
// second pass; otherwise they are spooled to an unlinked temp file.
func Normalize(ctx context.Context, r io.Reader, w io.Writer, o Options) (Summary, error) {
	var src io.Reader
	ra, seekable := r.(io.ReaderAt)
	sk, isSeeker := r.(io.Seeker)
	if seekable && isSeeker {
		if pos, err := sk.Seek(0, io.SeekCurrent); err != nil || pos != 0 {
			seekable = false
		}
	} else {
		seekable = false
	}
	var magic []byte
	if seekable {
		magic = make([]byte, 4)
		n, _ := ra.ReadAt(magic, 0)
		magic = magic[:n]
		src = &countReader{r: r, s: sk}
	} else {
		br := bufio.NewReaderSize(r, 1<<16)
		magic, _ = br.Peek(4)
		src = br
	}
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(bufio.NewReaderSize(src, 1<<16))
		if err != nil {
			return Summary{}, fmt.Errorf("gzip: %w", err)
		}
		src, seekable = zr, false
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(bufio.NewReaderSize(src, 1<<16), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return Summary{}, fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		src, seekable = zr, false
	}
	var spool *os.File
	var spoolOff int64
	defer func() {
		if spool != nil {
			spool.Close()
		}
	}()
	toSpool := func(name string, tr io.Reader, size int64) (io.ReaderAt, int64, error) {
		if spool == nil {
			f, err := os.CreateTemp(o.TempDir, "uvmbuild-rootfs-spool-*")
			if err != nil {
				return nil, 0, err
			}
			os.Remove(f.Name()) // unlinked: nothing is left behind whatever happens
			spool = f
		}
		n, err := io.Copy(spool, tr)
		if err != nil {
			return nil, 0, fmt.Errorf("tar entry %q: %w", name, err)
		}
		if n != size {
			return nil, 0, fmt.Errorf("tar entry %q: %d bytes, header says %d", name, n, size)
		}
		off := spoolOff
		spoolOff += n
		return spool, off, nil
	}
	keep := o.xattrSet()
	entries := map[string]*entry{}
	tr := tar.NewReader(src)
	for {
		if err := ctx.Err(); err != nil {
			return Summary{}, err
		}
		in, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Summary{}, fmt.Errorf("reading tar: %w", err)
		}
		if in.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name, err := cleanName(in.Name)
		if err != nil {
			return Summary{}, err
		}
		h, err := normHeader(in, &o, keep)
		if err != nil {
			return Summary{}, err
		}
		e := &entry{name: name, hdr: h}
		switch h.Typeflag {
		case tar.TypeReg:
			if seekable && !isSparse(in) {
				e.src, e.off = ra, src.(*countReader).n
			} else if e.src, e.off, err = toSpool(in.Name, tr, h.Size); err != nil {
				return Summary{}, err
			}
		case tar.TypeLink:
			ln, err := cleanName(in.Linkname)
			if err != nil {
				return Summary{}, fmt.Errorf("hardlink %q: target: %w", in.Name, err)
			}
			e.link = ln
		}
		entries[name] = e
	}
	return write(ctx, entries, w, &o)
}

func isSparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// countReader tracks the offset tar.Reader has reached in the input, and
// lets it skip file contents by seeking.
type countReader struct {
	r io.Reader
	s io.Seeker
	n int64
}

func (c *countReader) Seek(off int64, whence int) (int64, error) {
	pos, err := c.s.Seek(off, whence)
	if err == nil {
		c.n = pos
	}
	return pos, err
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// write resolves links, filters, sorts and writes the entries.
func write(ctx context.Context, entries map[string]*entry, w io.Writer, o *Options) (Summary, error) {
	var sum Summary
	// The root directory.
	if _, ok := entries[""]; !ok {
		entries[""] = &entry{hdr: &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(o.SourceDateEpoch, 0).UTC(), Format: tar.FormatPAX}}
	}
	if entries[""].hdr.Typeflag != tar.TypeDir {
		return sum, fmt.Errorf("tar entry \"./\": the root must be a directory")
	}
	// Added files replace input entries.
	for _, f := range o.Add {
		name, err := cleanName(f.Name)
		if err != nil || name == "" {
			return sum, fmt.Errorf("added file %q: invalid name: %w", f.Name, err)
		}
		if _, ok := entries[name]; ok && f.IfMissing {
			continue
		}
		entries[name] = &entry{name: name, data: f.Content, hdr: &tar.Header{Typeflag: tar.TypeReg, Mode: f.Mode & 0o7777,
			Size: int64(len(f.Content)), ModTime: time.Unix(o.SourceDateEpoch, 0).UTC(), Format: tar.FormatPAX}}
	}
	// Missing parents, and parents that are not directories.
	for name := range entries {
		for p := path.Dir(name); name != "" && p != "."; p = path.Dir(p) {
			pe, ok := entries[p]
			if !ok {
				entries[p] = &entry{name: p, hdr: &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(o.SourceDateEpoch, 0).UTC(), Format: tar.FormatPAX}}
				continue
			}
			if pe.hdr.Typeflag != tar.TypeDir {
				return sum, fmt.Errorf("%w %q: parent %q is not a directory", ErrUnsafe, name, p)
			}
		}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	slices.SortFunc(names, compareNames)
	// Filter; a dropped directory drops its subtree.
	if o.Filter != nil {
		dropped := ""
		hasDropped := false
		for _, n := range names {
			e := entries[n]
			if n == "" {
				continue
			}
			if hasDropped && strings.HasPrefix(n, dropped+"/") {
				e.action = Drop
				continue
			}
			a, err := o.Filter(n, e.hdr)
			if err != nil {
				return sum, fmt.Errorf("filter %q: %w", n, err)
			}
			e.action = a
			switch a {
			case Drop:
				sum.Dropped = append(sum.Dropped, n)
				if e.hdr.Typeflag == tar.TypeDir {
					dropped, hasDropped = n, true
				}
			case Empty:
				if e.hdr.Typeflag == tar.TypeReg || e.hdr.Typeflag == tar.TypeLink {
					sum.Emptied = append(sum.Emptied, n)
				}
			}
		}
	}
	// Symlink targets must stay inside the root.
	for _, n := range names {
		e := entries[n]
		if e.action == Drop || e.hdr.Typeflag != tar.TypeSymlink {
			continue
		}
		t := e.hdr.Linkname
		if t == "" {
			return sum, fmt.Errorf("symlink %q: empty target", n)
		}
		if !strings.HasPrefix(t, "/") {
			if j := path.Join(path.Dir(n), t); j == ".." || strings.HasPrefix(j, "../") {
				return sum, fmt.Errorf("%w: symlink %q -> %q escapes the root", ErrUnsafe, n, t)
			}
		}
	}
	// Hardlink groups: resolve each link to the entry holding content.
	for _, n := range names {
		e := entries[n]
		if e.hdr.Typeflag != tar.TypeLink {
			continue
		}
		t, seen := e, map[string]bool{}
		for t.hdr.Typeflag == tar.TypeLink {
			if seen[t.name] {
				return sum, fmt.Errorf("hardlink %q: loop", n)
			}
			seen[t.name] = true
			nt, ok := entries[t.link]
			if !ok {
				return sum, fmt.Errorf("%w: hardlink %q -> %q: target not in the archive", ErrUnsafe, n, e.link)
			}
			t = nt
		}
		if t.hdr.Typeflag != tar.TypeReg {
			return sum, fmt.Errorf("hardlink %q -> %q: target is not a regular file", n, e.link)
		}
		e.group = t
	}
	// The holder of a group is its first kept member in output order.
	holder := map[*entry]*entry{}
	for _, n := range names {
		e := entries[n]
		if e.action == Drop || (e.hdr.Typeflag != tar.TypeReg && e.hdr.Typeflag != tar.TypeLink) {
			continue
		}
		root := e
		if e.group != nil {
			root = e.group
		}
		if _, ok := holder[root]; !ok {
			holder[root] = e
		}
	}

	// Directory sizes as ext4 stores them: 12-byte "." and ".." entries, one
	// 8-byte header plus the name (padded to 4) per child, 12 bytes of
	// checksum tail per block, one extra block for the htree root of a
	// multi-block directory.
	dirBytes := map[string]int64{}
	for _, n := range names {
		if n != "" && entries[n].action != Drop {
			d := path.Dir(n)
			if d == "." {
				d = ""
			}
			dirBytes[d] += 8 + int64(len(path.Base(n))+3)/4*4
		}
	}
	dirUsage := func(n string) int64 {
		b := max(1, (24+dirBytes[n]+blockSize-13)/(blockSize-12))
		if b > 1 {
			b++
		}
		return b * blockSize
	}

	hw := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, hw)}
	tw := tar.NewWriter(cw)
	var buf []byte
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		e := entries[n]
		if e.action == Drop {
			continue
		}
		h := *e.hdr
		h.Name = "./" + n
		var content *entry
		switch h.Typeflag {
		case tar.TypeDir:
			if n != "" {
				h.Name += "/"
			}
			sum.Dirs++
			sum.DiskUsage += dirUsage(n)
		case tar.TypeSymlink:
			sum.Symlinks++
			if len(h.Linkname) >= 60 {
				sum.DiskUsage += blockSize
			}
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			sum.Devices++
		case tar.TypeReg, tar.TypeLink:
			root := e
			if e.group != nil {
				root = e.group
			}
			hold := holder[root]
			if hold != e {
				h = *root.hdr // a link carries its file's metadata
				h.Typeflag, h.Size, h.Linkname, h.Name = tar.TypeLink, 0, "./"+hold.name, "./"+n
				h.PAXRecords = nil
				sum.Hardlinks++
				break
			}
			// The holder takes metadata from the group root's header
			// (a link entry carries no content of its own).
			h = *root.hdr
			h.Name = "./" + n
			h.Typeflag = tar.TypeReg
			content = root
			if e.action == Empty || root.action == Empty {
				h.Size = 0
				content = nil
			}
			sum.Files++
			sum.ContentBytes += h.Size
			sum.DiskUsage += (h.Size + blockSize - 1) / blockSize * blockSize
		}
		if err := tw.WriteHeader(&h); err != nil {
			return sum, fmt.Errorf("writing tar entry %q: %w", h.Name, err)
		}
		if content != nil && h.Size > 0 {
			if content.data != nil {
				if _, err := tw.Write(content.data); err != nil {
					return sum, err
				}
			} else {
				if buf == nil {
					buf = make([]byte, 1<<20)
				}
				if _, err := io.CopyBuffer(tw, io.NewSectionReader(content.src, content.off, h.Size), buf); err != nil {
					return sum, fmt.Errorf("copying %q: %w", h.Name, err)
				}
			}
		}
		sum.Entries++
	}
	if err := tw.Close(); err != nil {
		return sum, err
	}
	sum.Size = cw.n
	hw.Sum(sum.SHA256[:0])
	return sum, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
