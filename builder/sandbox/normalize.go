package sandbox

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Normalize rewrites the metadata of everything under dir so that nothing
// but content and the executable bit can reach a digest: owners become 0:0
// (numeric), directories 0755, files 0755 when any execute bit is set and
// 0644 otherwise (setuid/setgid/sticky and umask effects dropped), and
// modification times later than epoch are clamped to epoch. Devices, fifos
// and sockets are refused: they are not build outputs.
func Normalize(dir string, epoch time.Time) error {
	var dirs []string
	root := os.Geteuid() == 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		// Owners are only fixable as root; a non-root build's outputs are
		// all the invoking user's anyway, and the manifest carries no owner.
		if root {
			if err := os.Lchown(p, 0, 0); err != nil {
				return fmt.Errorf("output %s: %w", rel, err)
			}
		}
		switch t := fi.Mode().Type(); {
		case t == fs.ModeSymlink:
			// Symlink modes and times do not reach the manifest; leave them.
			return nil
		case t == fs.ModeDir:
			if err := os.Chmod(p, 0o755); err != nil {
				return fmt.Errorf("output %s: %w", rel, err)
			}
			// Directory times change as their children are touched:
			// clamp them after the walk.
			dirs = append(dirs, p)
			return nil
		case t == 0:
			mode := fs.FileMode(0o644)
			if fi.Mode().Perm()&0o111 != 0 {
				mode = 0o755
			}
			if err := os.Chmod(p, mode); err != nil {
				return fmt.Errorf("output %s: %w", rel, err)
			}
			return clamp(p, fi, epoch)
		default:
			return fmt.Errorf("output %s: unsupported file type %s (only files, directories and symlinks)", rel, t)
		}
	})
	if err != nil {
		return fmt.Errorf("normalising outputs: %w", err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		fi, err := os.Lstat(dirs[i])
		if err != nil {
			return fmt.Errorf("normalising outputs: %w", err)
		}
		if err := clamp(dirs[i], fi, epoch); err != nil {
			return fmt.Errorf("normalising outputs: %w", err)
		}
	}
	return nil
}

func clamp(p string, fi fs.FileInfo, epoch time.Time) error {
	if !fi.ModTime().After(epoch) {
		return nil
	}
	return os.Chtimes(p, epoch, epoch)
}
