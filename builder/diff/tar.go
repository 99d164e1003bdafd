package diff

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"time"

	"github.com/klauspost/compress/zstd"
)

// tarEntry is what the comparison keeps of one archive member: metadata
// and a content digest, never the content (memory stays bounded by the
// number of entries).
type tarEntry struct {
	Index    int
	Type     string
	Mode     int64
	UID, GID int
	Uname    string
	Gname    string
	ModTime  time.Time
	Size     int64
	Link     string
	Digest   string
	Xattrs   string
	Text     bool
}

// openTar opens a possibly compressed tar archive.
func openTar(name string) (*tar.Reader, func() error, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(f, 1<<16)
	magic, _ := br.Peek(4)
	var r io.Reader = br
	closer := f.Close
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%s: gzip header: %w", name, err)
		}
		r = zr
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%s: zstd header: %w", name, err)
		}
		r = zr
		closer = func() error { zr.Close(); return f.Close() }
	}
	return tar.NewReader(r), closer, nil
}

// isTarFile reports whether name holds a (possibly compressed) tar archive.
func isTarFile(name string) bool {
	tr, closeFn, err := openTar(name)
	if err != nil {
		return false
	}
	defer closeFn()
	h, err := tr.Next()
	return err == nil && h != nil && (h.Format != tar.FormatUnknown || h.Typeflag != 0)
}

func typeName(t byte) string {
	switch t {
	case tar.TypeReg, tar.TypeRegA:
		return "file"
	case tar.TypeDir:
		return "dir"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hardlink"
	case tar.TypeChar:
		return "char"
	case tar.TypeBlock:
		return "block"
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("type %q", t)
}

// indexTar reads an archive once and returns its entries by path.
func indexTar(ctx context.Context, name string) (map[string]*tarEntry, []string, error) {
	tr, closeFn, err := openTar(name)
	if err != nil {
		return nil, nil, err
	}
	defer closeFn()
	m := map[string]*tarEntry{}
	var order []string
	h := sha256.New()
	buf := make([]byte, 64<<10)
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: tar entry %d: %w", name, i, err)
		}
		e := &tarEntry{Index: i, Type: typeName(hdr.Typeflag), Mode: hdr.Mode, UID: hdr.Uid, GID: hdr.Gid,
			Uname: hdr.Uname, Gname: hdr.Gname, ModTime: hdr.ModTime, Size: hdr.Size, Link: hdr.Linkname}
		if len(hdr.PAXRecords) > 0 {
			var keys []string
			for k := range hdr.PAXRecords {
				if len(k) > 14 && k[:14] == "SCHILY.xattr." {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			for _, k := range keys {
				e.Xattrs += fmt.Sprintf("%s=%q ", k[14:], hdr.PAXRecords[k])
			}
		}
		if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeRegA {
			h.Reset()
			// The first bytes decide whether a text diff is possible.
			head := buf[:min(int64(len(buf)), hdr.Size)]
			n, err := io.ReadFull(tr, head)
			if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
				return nil, nil, fmt.Errorf("%s: reading %s: %w", name, hdr.Name, err)
			}
			h.Write(head[:n])
			e.Text = hdr.Size <= maxTextSize && isText(head[:n])
			if _, err := io.CopyBuffer(h, tr, buf); err != nil {
				return nil, nil, fmt.Errorf("%s: reading %s: %w", name, hdr.Name, err)
			}
			e.Digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
		}
		p := cleanTarPath(hdr.Name)
		if _, dup := m[p]; !dup {
			order = append(order, p)
		}
		m[p] = e
	}
	return m, order, nil
}

func cleanTarPath(p string) string {
	for len(p) > 2 && p[:2] == "./" {
		p = p[2:]
	}
	for len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p
}

// compareTar compares two archives entry by entry.
func compareTar(ctx context.Context, a, b string, r *Report, o *Options) error {
	ea, orderA, err := indexTar(ctx, a)
	if err != nil {
		return err
	}
	eb, orderB, err := indexTar(ctx, b)
	if err != nil {
		return err
	}
	var paths []string
	seen := map[string]bool{}
	for _, p := range append(orderA, orderB...) {
		if !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	wantText := map[string]bool{}
	type textItem struct {
		index int
		path  string
	}
	var textItems []textItem
	for _, p := range paths {
		x, y := ea[p], eb[p]
		switch {
		case y == nil:
			r.add(o.MaxItems, Item{Where: "entry " + p, A: describeEntry(x), B: ""})
			continue
		case x == nil:
			r.add(o.MaxItems, Item{Where: "entry " + p, A: "", B: describeEntry(y)})
			continue
		}
		field := func(f, va, vb string) {
			if va != vb {
				r.add(o.MaxItems, Item{Where: "entry " + p + ": " + f, A: va, B: vb})
			}
		}
		field("type", x.Type, y.Type)
		field("mode", fmt.Sprintf("%04o", x.Mode), fmt.Sprintf("%04o", y.Mode))
		field("owner", fmt.Sprintf("%d:%d", x.UID, x.GID), fmt.Sprintf("%d:%d", y.UID, y.GID))
		field("owner name", x.Uname+":"+x.Gname, y.Uname+":"+y.Gname)
		field("mtime", x.ModTime.UTC().Format(time.RFC3339Nano), y.ModTime.UTC().Format(time.RFC3339Nano))
		field("link target", x.Link, y.Link)
		field("xattrs", x.Xattrs, y.Xattrs)
		field("size", fmt.Sprint(x.Size), fmt.Sprint(y.Size))
		if x.Digest != y.Digest {
			n := len(r.Items)
			r.add(o.MaxItems, Item{Where: "entry " + p + ": content", A: x.Digest, B: y.Digest})
			if x.Text && y.Text && len(r.Items) > n {
				wantText[p] = true
				textItems = append(textItems, textItem{n, p})
			}
		}
	}
	if len(wantText) > 0 {
		// Second pass: pull only the small text files that differ.
		ta, err := tarTexts(ctx, a, wantText)
		if err != nil {
			return err
		}
		tb, err := tarTexts(ctx, b, wantText)
		if err != nil {
			return err
		}
		for _, t := range textItems {
			r.Items[t.index].Detail = unified("a/"+t.path, "b/"+t.path, ta[t.path], tb[t.path])
		}
	}
	return nil
}

func tarTexts(ctx context.Context, name string, want map[string]bool) (map[string][]byte, error) {
	tr, closeFn, err := openTar(name)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	out := map[string][]byte{}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		p := cleanTarPath(hdr.Name)
		if want[p] && hdr.Size <= maxTextSize {
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("%s: reading %s: %w", name, hdr.Name, err)
			}
			out[p] = b
		}
	}
}

func describeEntry(e *tarEntry) string {
	s := fmt.Sprintf("%s %s %d:%d", e.Type, fs.FileMode(e.Mode).Perm(), e.UID, e.GID)
	switch e.Type {
	case "file":
		s += fmt.Sprintf(" %d bytes %s", e.Size, e.Digest)
	case "symlink", "hardlink":
		s += " -> " + e.Link
	}
	return s
}
