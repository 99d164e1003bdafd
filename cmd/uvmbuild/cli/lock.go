package cli

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/uvmbuild/uvmbuild/builder/images"
	"github.com/uvmbuild/uvmbuild/builder/lockfile"
)

// newLockCmd is `uvmbuild lock`: show, compare and fill uvmbuild.lock.
func newLockCmd(o *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lock",
		Short: "Show uvmbuild.lock (image digests and fetch checksums pinned for the recipe)",
		Long: `Show uvmbuild.lock in the project directory: one line per entry with its
digest, the number of fetched files it pins and the reference it was resolved
from.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := lockfile.Read(filepath.Join(o.ProjectDir, lockfile.Name))
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, n := range slices.Sorted(maps.Keys(l.Entries)) {
				e := l.Entries[n]
				d := e.Digest.String()
				if d == "" {
					d = "-"
				}
				fmt.Fprintf(w, "%s\t%s\t%d files\t%s\n", n, d, len(e.Checksums), e.Ref)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&o.ProjectDir, "project-dir", "C", ".", "project directory holding uvmbuild.lock")

	diff := &cobra.Command{
		Use:   "diff OLD NEW",
		Short: "Compare two lock files; exit status 3 when they differ",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := lockfile.Read(args[0])
			if err != nil {
				return err
			}
			b, err := lockfile.Read(args[1])
			if err != nil {
				return err
			}
			ch := lockfile.Diff(a, b)
			for _, c := range ch {
				fmt.Fprintln(cmd.OutOrStdout(), c)
			}
			if len(ch) > 0 {
				return differsError(fmt.Errorf("%s and %s differ in %d entries", args[0], args[1], len(ch)))
			}
			return nil
		},
	}

	var insecure, update bool
	pull := &cobra.Command{
		Use:   "pull NAME REF",
		Short: "Resolve an image reference once, pin its digest under NAME and import it into the cache",
		Long: `Resolve REF (a registry reference, with or without @sha256:…) to a manifest
digest, record it in uvmbuild.lock under NAME (an existing, different entry is
an error unless --update), and import the image into the cache's image store,
verifying every blob. Afterwards builds need no network for this image.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, ref := args[0], args[1]
			if name == "" {
				return usageError(errors.New("pull: NAME is empty"))
			}
			dir, err := o.cacheDir()
			if err != nil {
				return err
			}
			lock := lockfile.Open(filepath.Join(o.ProjectDir, lockfile.Name))
			if update {
				if err := lock.Remove(name); err != nil {
					return err
				}
			}
			store := &images.Store{Dir: dir, Lock: lock}
			src := images.Source{Name: name, Ref: ref, Insecure: insecure}
			d, err := store.Resolve(cmd.Context(), src)
			if err != nil {
				return err
			}
			if _, err := store.Image(cmd.Context(), src, d); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", name, d)
			return nil
		},
	}
	pull.Flags().BoolVar(&insecure, "insecure", false, "allow a plain-HTTP registry")
	pull.Flags().BoolVar(&update, "update", false, "re-resolve REF and replace the locked digest (a deliberate update)")
	pull.Flags().StringVarP(&o.ProjectDir, "project-dir", "C", ".", "project directory holding uvmbuild.lock")
	pull.Flags().StringVar(&o.CacheDir, "cache-dir", "", "cache directory (default $UVMBUILD_CACHE, else $XDG_CACHE_HOME/uvmbuild, else ~/.cache/uvmbuild)")
	gc := &cobra.Command{
		Use:   "gc",
		Short: "Remove images the lock does not pin from the cache's image store",
		Long: `Remove from the cache's image store (layouts and unpacked roots) every image
whose digest no entry of uvmbuild.lock names, and work directories older than
an hour. Do not run it while a build uses the cache.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := o.cacheDir()
			if err != nil {
				return err
			}
			l, err := lockfile.Read(filepath.Join(o.ProjectDir, lockfile.Name))
			if err != nil {
				return err
			}
			var keep []digest.Digest
			for _, e := range l.Entries {
				if e.Digest != "" {
					keep = append(keep, e.Digest)
				}
			}
			removed, err := (&images.Store{Dir: dir}).Prune(keep, time.Now())
			if err != nil {
				return err
			}
			for _, d := range removed {
				fmt.Fprintf(cmd.OutOrStdout(), "removed\t%s\n", d)
			}
			return nil
		},
	}
	gc.Flags().StringVarP(&o.ProjectDir, "project-dir", "C", ".", "project directory holding uvmbuild.lock")
	gc.Flags().StringVar(&o.CacheDir, "cache-dir", "", "cache directory (default $UVMBUILD_CACHE, else $XDG_CACHE_HOME/uvmbuild, else ~/.cache/uvmbuild)")
	drop := &cobra.Command{
		Use:   "drop PATTERN...",
		Short: "Remove the entries whose names match the glob patterns, so the next build pins them afresh",
		Long: `Remove from uvmbuild.lock every entry whose name matches one of the
patterns (path.Match syntax, e.g. 'builder-image' or '*/packages@*'), so that
the next build resolves them again and records what it got. Use it to refresh
pins deliberately, e.g. after the Debian mirror moved on; review the new lock
with 'uvmbuild lock diff' before committing it. A pattern that matches no
entry is an error and nothing is removed.`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := filepath.Join(o.ProjectDir, lockfile.Name)
			l, err := lockfile.Read(file)
			if err != nil {
				return err
			}
			var names []string
			for _, p := range args {
				if _, err := path.Match(p, ""); err != nil {
					return usageError(fmt.Errorf("pattern %q: %w", p, err))
				}
				n := 0
				for _, name := range slices.Sorted(maps.Keys(l.Entries)) {
					if ok, _ := path.Match(p, name); ok {
						names = append(names, name)
						n++
					}
				}
				if n == 0 {
					return fmt.Errorf("%s: no entry matches %q", file, p)
				}
			}
			lf := lockfile.Open(file)
			for _, name := range slices.Compact(slices.Sorted(slices.Values(names))) {
				if err := lf.Remove(name); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "dropped %s\n", name)
			}
			return nil
		},
	}
	drop.Flags().StringVarP(&o.ProjectDir, "project-dir", "C", ".", "project directory holding uvmbuild.lock")
	cmd.AddCommand(diff, pull, gc, drop)
	return cmd
}
