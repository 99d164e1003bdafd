package rootfs

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvmbuild/uvmbuild/builder/filemode"
)

// WriteDir writes the tree under root as a normalised tar to w, with the same
// rules and output as Normalize of a tar of that tree. Owners are the numeric
// ids of the files; hardlinks are detected by device and inode; only the
// extended attributes in o.Xattrs are read. Sockets are rejected.
func WriteDir(ctx context.Context, root string, w io.Writer, o Options) (Summary, error) {
	keep := o.xattrSet()
	entries := map[string]*entry{}
	type ino struct{ dev, ino uint64 }
	firstLink := map[ino]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if name == "." {
			name = ""
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat information", p)
		}
		in := &tar.Header{Name: name, Mode: int64(filemode.ToUnix(fi.Mode())), Uid: int(st.Uid), Gid: int(st.Gid),
			ModTime: time.Unix(st.Mtim.Sec, 0)}
		e := &entry{name: name}
		switch m := fi.Mode(); {
		case m.IsRegular():
			in.Typeflag, in.Size = tar.TypeReg, fi.Size()
			if st.Nlink > 1 {
				k := ino{uint64(st.Dev), st.Ino}
				if first, ok := firstLink[k]; ok {
					in.Typeflag, in.Size, in.Linkname = tar.TypeLink, 0, first
					e.link = first
				} else {
					firstLink[k] = name
				}
			}
			if in.Typeflag == tar.TypeReg {
				e.src, e.off = &lazyFile{path: p}, 0
			}
		case m.IsDir():
			in.Typeflag = tar.TypeDir
		case m&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			in.Typeflag, in.Linkname = tar.TypeSymlink, t
		case m&fs.ModeCharDevice != 0:
			in.Typeflag = tar.TypeChar
			in.Devmajor, in.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		case m&fs.ModeDevice != 0:
			in.Typeflag = tar.TypeBlock
			in.Devmajor, in.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		case m&fs.ModeNamedPipe != 0:
			in.Typeflag = tar.TypeFifo
		default:
			return fmt.Errorf("%s: unsupported file type %v", p, m.Type())
		}
		for x := range keep {
			if v, ok := getxattr(p, x); ok {
				if in.PAXRecords == nil {
					in.PAXRecords = map[string]string{}
				}
				in.PAXRecords["SCHILY.xattr."+x] = v
			}
		}
		h, err := normHeader(in, &o, keep)
		if err != nil {
			return err
		}
		e.hdr = h
		entries[name] = e
		return nil
	})
	if err != nil {
		return Summary{}, fmt.Errorf("reading tree %s: %w", root, err)
	}
	return write(ctx, entries, w, &o)
}

func getxattr(p, name string) (string, bool) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		if err == unix.ERANGE {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if err != nil {
			return "", false
		}
		return string(buf[:n]), true
	}
}

// lazyFile opens a host file for each read, so a walk of a large tree does
// not hold one descriptor per file.
type lazyFile struct{ path string }

func (l *lazyFile) ReadAt(b []byte, off int64) (int, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.ReadAt(b, off)
}
