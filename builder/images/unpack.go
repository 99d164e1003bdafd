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
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// mountPoints are created in every unpacked root so that runc never has to
// create them in the shared, cached root.
var mountPoints = []string{"in", "out", "tmp", "proc", "sys", "dev"}

// Unpack flattens img (whiteouts applied) into dir, which must not exist.
// See the package documentation for what is refused and what is kept. It
// does not verify digests; unpackVerified does.
func Unpack(ctx context.Context, img v1.Image, dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("unpacking image: %w", err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	if err := UnpackTar(ctx, rc, dir); err != nil {
		return err
	}
	return addMountPoints(dir)
}

// unpackVerified verifies img and unpacks it into dir. A one-layer image
// (what DebianImage writes, and most base images) is verified while it is
// unpacked, in a single pass; several layers are verified first, then
// flattened.
func unpackVerified(ctx context.Context, img v1.Image, dir string) error {
	m, cfg, layers, err := verifyMeta(img)
	if err != nil {
		return err
	}
	if len(layers) != 1 {
		if err := Verify(ctx, img); err != nil {
			return err
		}
		return Unpack(ctx, img, dir)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("unpacking image: %w", err)
	}
	unpack := func(r io.Reader) error { return UnpackTar(ctx, r, dir) }
	if err := verifyLayer(0, layers[0], m.Layers[0], cfg.RootFS.DiffIDs[0], unpack); err != nil {
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

type dirTimes struct {
	path  string
	mtime time.Time
}

// UnpackTar extracts a flattened root file system tar into the existing
// directory dir, safely: entries are refused when their path leaves dir or
// passes through a symlink, and when a link target escapes dir.
func UnpackTar(ctx context.Context, r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	buf := make([]byte, 1<<20)
	var dirs []dirTimes
	for n := 0; ; n++ {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("unpacking image: reading tar: %w", err)
		}
		if reason := checkEntry(hdr); reason != "" {
			return &UnsafeEntryError{Layer: -1, Name: hdr.Name, Reason: reason}
		}
		rel := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if strings.HasPrefix(path.Base(rel), ".wh.") {
			// Whiteouts only hide lower layers; in a flattened or single
			// layer there is nothing below them.
			continue
		}
		if rel == "" {
			// The root itself: only its metadata.
			if hdr.Typeflag == tar.TypeDir {
				if err := setMeta(dir, hdr); err != nil {
					return err
				}
				dirs = append(dirs, dirTimes{dir, hdr.ModTime})
			}
			continue
		}
		target := filepath.Join(dir, filepath.FromSlash(rel))
		if err := ensureParents(dir, rel); err != nil {
			return &UnsafeEntryError{Layer: -1, Name: hdr.Name, Reason: err.Error()}
		}
		if err := unpackEntry(tr, hdr, dir, target, buf); err != nil {
			return fmt.Errorf("unpacking %q: %w", hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeDir {
			dirs = append(dirs, dirTimes{target, hdr.ModTime})
		}
	}
	// Directory times last: creating children changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chtimes(dirs[i].path, dirs[i].mtime, dirs[i].mtime); err != nil {
			return fmt.Errorf("unpacking image: %w", err)
		}
	}
	return nil
}

// ensureParents makes sure every directory above rel exists under root and
// is a real directory, never a symlink (which could lead outside root).
func ensureParents(root, rel string) error {
	parts := strings.Split(rel, "/")
	cur := root
	for _, p := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, p)
		fi, err := os.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(cur, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("parent %q is a symlink", strings.TrimPrefix(cur, root))
		case !fi.IsDir():
			return fmt.Errorf("parent %q is not a directory", strings.TrimPrefix(cur, root))
		}
	}
	return nil
}

func unpackEntry(tr *tar.Reader, hdr *tar.Header, root, target string, buf []byte) error {
	// An existing non-directory is replaced; an existing directory is kept
	// when a directory arrives (upper layer's metadata came first).
	if fi, err := os.Lstat(target); err == nil {
		if fi.IsDir() && hdr.Typeflag == tar.TypeDir {
			return nil
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
