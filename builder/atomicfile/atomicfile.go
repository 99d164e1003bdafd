package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Option changes how a file is written.
type Option func(*options)

type options struct {
	noSync bool
}

// NoSync skips the fsync before the rename: the result is still never
// partial, but it may be lost on a crash. For large outputs whose
// durability is ensured later (the build cache syncs what it stores) or
// that are cheap to rebuild (per-user caches).
func NoSync() Option { return func(o *options) { o.noSync = true } }

// Write creates or replaces path with what write puts into the file (a
// fresh, empty temporary file in path's directory), with permission bits
// perm. Every error, including write's, is returned wrapped and naming
// path; path is then unchanged and the temporary file gone.
func Write(path string, perm fs.FileMode, write func(f *os.File) error, opts ...Option) (err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("writing %s: %w", path, err)
		}
	}()
	if err = write(f); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if !o.noSync {
		if err = f.Sync(); err != nil {
			return err
		}
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// WriteFile is Write of data.
func WriteFile(path string, data []byte, perm fs.FileMode, opts ...Option) error {
	return Write(path, perm, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	}, opts...)
}
