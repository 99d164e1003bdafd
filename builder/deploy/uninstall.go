package deploy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// Selector chooses the manifest entries Uninstall removes; nil selects all.
type Selector func(Variant, Part) bool

// Select returns a Selector for one variant's parts (no parts: all of the
// variant's parts).
func Select(v Variant, parts ...Part) Selector {
	return func(fv Variant, fp Part) bool {
		return fv == v && (len(parts) == 0 || slices.Contains(parts, fp))
	}
}

// UninstallResult says what Uninstall did.
type UninstallResult struct {
	// Removed lists the files removed.
	Removed []string
	// Modified lists removed files whose content or mode differed from what
	// deploy installed (edited on the host since).
	Modified []string
	// Missing lists recorded files that were already gone.
	Missing []string
	// Kept lists recorded files left alone (not selected).
	Kept []string
	// RemovedDirs lists directories deploy had created and that were
	// removed because they became empty.
	RemovedDirs []string
}

// Uninstall removes, under root, exactly the files the manifest records for
// the selected targets (sel nil: all), then every directory deploy created
// that is now empty, and finally the manifest itself when nothing remains
// recorded. Files are removed even if they were modified after deploy (they
// are reported in Modified): the manifest says deploy owns them. A missing
// manifest means nothing was deployed and is not an error.
func Uninstall(ctx context.Context, root string, sel Selector, opts ...Option) (*UninstallResult, error) {
	o := makeOptions(opts)
	if IsLive(root) && o.euid() != 0 {
		return nil, fmt.Errorf("%w: run as root, or give the staging directory with --root DIR", ErrNeedRoot)
	}
	res := &UninstallResult{}
	if _, err := os.Lstat(hostPath(root, ManifestPath)); errors.Is(err, fs.ErrNotExist) {
		return res, nil
	}
	unlock, err := lockManifest(root)
	if err != nil {
		return nil, err
	}
	defer unlock()
	m, err := ReadManifest(root)
	if err != nil {
		return nil, err
	}
	var keep []Installed
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if sel != nil && !sel(f.Variant, f.Part) {
			keep = append(keep, f)
			res.Kept = append(res.Kept, f.Path)
			continue
		}
		p := hostPath(root, f.Path)
		if err := checkInsideRoot(root, path.Dir(f.Path)); err != nil {
			return res, err
		}
		removeStaleTemps(p)
		st, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			res.Missing = append(res.Missing, f.Path)
			o.observe(Event{Dest: f.Path, Action: "missing"})
			continue
		case err != nil:
			return res, err
		case st.IsDir():
			// Something else took the path over; not ours to remove.
			return res, fmt.Errorf("%s: recorded as an installed file but is a directory; remove it by hand", p)
		}
		same, err := sameFile(p, f.Digest, f.Size, f.mode())
		if err != nil {
			return res, err
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return res, fmt.Errorf("removing %s: %w", p, err)
		}
		res.Removed = append(res.Removed, f.Path)
		action := "removed"
		if !same {
			res.Modified = append(res.Modified, f.Path)
			action = "modified"
		}
		o.observe(Event{Dest: f.Path, Action: action})
	}
	m.Files = keep
	// Save progress before touching directories, so an interrupted
	// undeploy can be re-run.
	if err := writeManifest(root, m); err != nil {
		return res, err
	}
	manifestDir := path.Dir(ManifestPath)
	removeDirs := func(skipManifestDirs bool) {
		dirs := slices.Clone(m.Dirs)
		// Deepest first.
		slices.SortFunc(dirs, func(a, b string) int {
			if c := strings.Count(b, "/") - strings.Count(a, "/"); c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
		var left []string
		for _, d := range dirs {
			if skipManifestDirs && (d == manifestDir || strings.HasPrefix(manifestDir, d+"/")) {
				left = append(left, d)
				continue
			}
			// os.Remove removes only empty directories.
			if err := os.Remove(hostPath(root, d)); err == nil || errors.Is(err, fs.ErrNotExist) {
				res.RemovedDirs = append(res.RemovedDirs, d)
				continue
			}
			left = append(left, d)
		}
		m.Dirs = left
	}
	if len(m.Files) > 0 {
		removeDirs(true)
		return res, writeManifest(root, m)
	}
	if err := os.Remove(hostPath(root, ManifestPath)); err != nil {
		return res, fmt.Errorf("removing the deploy manifest: %w", err)
	}
	removeDirs(false)
	return res, nil
}
