package images

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// mountPoints are created in every unpacked root so that runc never has to
// create them in the shared, cached root.
var mountPoints = []string{"in", "out", "tmp", "proc", "sys", "dev"}

// Unpack applies the layers of img, bottom first, to dir, which must not
// exist: whiteouts remove what lower layers created, opaque whiteouts empty
// a directory of lower-layer content. See the package documentation for
// what is refused and what is kept. It does not verify digests;
// unpackVerified does.
func Unpack(ctx context.Context, img v1.Image, dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("unpacking image: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("unpacking image: %w", err)
	}
	u := newUnpacker(ctx, dir)
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return fmt.Errorf("unpacking image: layer %d: %w", i, err)
		}
		err = u.layer(i, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	if err := u.finish(); err != nil {
		return err
	}
	return addMountPoints(dir)
}

// unpackVerified verifies img and unpacks it into dir in one pass: each
// layer is hashed (compressed and uncompressed) while it is applied, and a
// mismatch fails the whole unpack (the caller discards dir).
func unpackVerified(ctx context.Context, img v1.Image, dir string) error {
	m, cfg, layers, err := verifyMeta(img)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("unpacking image: %w", err)
	}
	u := newUnpacker(ctx, dir)
	for i, l := range layers {
		apply := func(r io.Reader) error { return u.layer(i, r) }
		if err := verifyLayer(i, l, m.Layers[i], cfg.RootFS.DiffIDs[i], apply); err != nil {
			return err
		}
	}
	if err := u.finish(); err != nil {
		return err
	}
	return addMountPoints(dir)
}

func addMountPoints(dir string) error {
	for _, m := range mountPoints {
		p := filepath.Join(dir, m)
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(p, 0o755); err != nil {
				return fmt.Errorf("unpacking image: mount point /%s: %w", m, err)
			}
		}
	}
	return nil
}

// UnpackTar extracts one layer (or a flattened root file system tar) into
// the existing directory dir, safely: entries are refused when their path
// leaves dir or passes through a symlink, and when a link target escapes
// dir. Whiteouts are applied against what dir already holds.
func UnpackTar(ctx context.Context, r io.Reader, dir string) error {
	u := newUnpacker(ctx, dir)
	if err := u.layer(-1, r); err != nil {
		return err
	}
	return u.finish()
}

// unpacker applies layers to one root.
type unpacker struct {
	ctx context.Context
	dir string
	buf []byte
	// dirs holds each directory's mtime, applied last: creating children
	// changes it. The last layer to mention a directory wins.
	dirs map[string]time.Time
}

func newUnpacker(ctx context.Context, dir string) *unpacker {
	return &unpacker{ctx: ctx, dir: dir, buf: make([]byte, 1<<20), dirs: map[string]time.Time{}}
}

// layer applies one layer tar (index i, -1 when unknown).
func (u *unpacker) layer(i int, r io.Reader) error {
	tr := tar.NewReader(r)
	// Paths this layer created: an opaque whiteout must keep them.
	mine := map[string]bool{}
	for n := 0; ; n++ {
		if n%256 == 0 {
			if err := u.ctx.Err(); err != nil {
				return err
			}
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("layer %d: reading tar: %w", i, err)
		}
		if reason := checkEntry(hdr); reason != "" {
			return &UnsafeEntryError{Layer: i, Name: hdr.Name, Reason: reason}
		}
		rel := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if rel == "" {
			// The root itself: only its metadata.
			if hdr.Typeflag == tar.TypeDir {
				if err := setMeta(u.dir, hdr); err != nil {
					return err
				}
				u.dirs[u.dir] = hdr.ModTime
			}
			continue
		}
		parent, base := path.Split(rel)
		if strings.HasPrefix(base, ".wh.") {
			// A whiteout never creates anything: nothing to hide when its
			// directory is missing. Never follow a symlink to delete.
			ok, err := parents(u.dir, rel, false)
			if err != nil {
				return &UnsafeEntryError{Layer: i, Name: hdr.Name, Reason: err.Error()}
			}
			if !ok {
				continue
			}
		} else if err := ensureParents(u.dir, rel); err != nil {
			return &UnsafeEntryError{Layer: i, Name: hdr.Name, Reason: err.Error()}
		}
		if base == ".wh..wh..opq" {
			if err := u.opaque(parent, mine); err != nil {
				return fmt.Errorf("layer %d: opaque whiteout %q: %w", i, hdr.Name, err)
			}
			continue
		}
		if name, ok := strings.CutPrefix(base, ".wh."); ok {
			victim := filepath.Join(u.dir, filepath.FromSlash(parent+name))
			if err := os.RemoveAll(victim); err != nil {
				return fmt.Errorf("layer %d: whiteout %q: %w", i, hdr.Name, err)
			}
			continue
		}
		target := filepath.Join(u.dir, filepath.FromSlash(rel))
		if err := unpackEntry(tr, hdr, u.dir, target, u.buf); err != nil {
			return fmt.Errorf("layer %d: unpacking %q: %w", i, hdr.Name, err)
		}
		// The entry and its ancestors belong to this layer now.
		for p := rel; p != "." && !mine[p]; p = path.Dir(p) {
			mine[p] = true
		}
		if hdr.Typeflag == tar.TypeDir {
			u.dirs[target] = hdr.ModTime
		}
	}
}

// opaque removes from directory parent (slash-terminated, relative) every
// child that this layer did not create.
func (u *unpacker) opaque(parent string, mine map[string]bool) error {
	d := filepath.Join(u.dir, filepath.FromSlash(parent))
	ents, err := os.ReadDir(d)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if mine[parent+e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(d, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// finish sets directory times.
func (u *unpacker) finish() error {
	for p, t := range u.dirs {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			continue // removed by a later whiteout
		}
		if err := os.Chtimes(p, t, t); err != nil {
			return fmt.Errorf("unpacking image: %w", err)
		}
	}
	return nil
}

// ensureParents makes sure every directory above rel exists under root and
// is a real directory, never a symlink (which could lead outside root).
func ensureParents(root, rel string) error {
	_, err := parents(root, rel, true)
	return err
}

// parents walks the directories above rel under root, refusing symlinks
// and non-directories; missing ones are created when create is set, and
// otherwise reported by ok == false.
func parents(root, rel string, create bool) (ok bool, err error) {
	parts := strings.Split(rel, "/")
	cur := root
	for _, p := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, p)
		fi, err := os.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist) && !create:
			return false, nil
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(cur, 0o755); err != nil {
				return false, err
			}
		case err != nil:
			return false, err
		case fi.Mode()&fs.ModeSymlink != 0:
			return false, fmt.Errorf("parent %q is a symlink", strings.TrimPrefix(cur, root))
		case !fi.IsDir():
			return false, fmt.Errorf("parent %q is not a directory", strings.TrimPrefix(cur, root))
		}
	}
	return true, nil
}

func unpackEntry(tr *tar.Reader, hdr *tar.Header, root, target string, buf []byte) error {
	// An existing non-directory is replaced; an existing directory is kept
	// when a directory arrives (upper layer's metadata came first).
	if fi, err := os.Lstat(target); err == nil {
		if fi.IsDir() && hdr.Typeflag == tar.TypeDir {
			// A directory again (from an upper layer): keep its content,
			// take the new metadata.
			return setMeta(target, hdr)
		}
		if err := os.RemoveAll(target); err != nil {
			return err
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(target, 0o700); err != nil {
			return err
		}
		return setMeta(target, hdr)
	case tar.TypeReg, tar.TypeRegA:
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		// A large buffer and no ReadFrom: fewer write calls than io.Copy's
		// 32 KiB fallback.
		if _, err := io.CopyBuffer(struct{ io.Writer }{f}, tr, buf); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := setMeta(target, hdr); err != nil {
			return err
		}
		return os.Chtimes(target, hdr.ModTime, hdr.ModTime)
	case tar.TypeSymlink:
		if err := os.Symlink(hdr.Linkname, target); err != nil {
			return err
		}
		return os.Lchown(target, hdr.Uid, hdr.Gid)
	case tar.TypeLink:
		rel := strings.TrimPrefix(path.Clean("/"+hdr.Linkname), "/")
		if err := ensureParents(root, rel); err != nil {
			return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
		}
		src := filepath.Join(root, filepath.FromSlash(rel))
		fi, err := os.Lstat(src)
		if err != nil {
			return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("hard link target %q is not a regular file", hdr.Linkname)
		}
		return os.Link(src, target)
	case tar.TypeFifo:
		if err := syscall.Mkfifo(target, 0o600); err != nil {
			return err
		}
		return setMeta(target, hdr)
	case tar.TypeChar, tar.TypeBlock:
		// The runtime provides /dev; device nodes in images are not needed.
		return nil
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
}

// setMeta applies owner, then mode (chown clears setuid/setgid, so chmod
// must come second), then file capabilities and other xattrs (chown clears
// security.capability too).
func setMeta(target string, hdr *tar.Header) error {
	if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	if err := os.Chmod(target, hdr.FileInfo().Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return err
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if err := syscall.Setxattr(target, name, []byte(v), 0); err != nil {
			return fmt.Errorf("xattr %s: %w", name, err)
		}
	}
	return nil
}
