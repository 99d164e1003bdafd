package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/uvmbuild/uvmbuild/builder/cache"
)

func newCacheCmd(o *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Inspect and prune the build cache",
		Args:  noArgs,
	}
	var maxSize string
	prune := &cobra.Command{
		Use:   "prune --max-size SIZE",
		Short: "Shrink the cache to SIZE (e.g. 10G, 500M) by dropping least recently used results",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if maxSize == "" {
				return usageError(errors.New("prune: --max-size is required"))
			}
			n, err := parseSize(maxSize)
			if err != nil {
				return usageError(err)
			}
			dir, err := o.cacheDir()
			if err != nil {
				return err
			}
			st, err := cache.Prune(cmd.Context(), dir, n, cache.WithLogger(newLogger(cmd.ErrOrStderr())))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pruned %s: %d actions, %d blobs removed; %s → %s\n",
				dir, st.Actions, st.Blobs, formatSize(st.Before), formatSize(st.After))
			return nil
		},
	}
	prune.Flags().StringVar(&maxSize, "max-size", "", "size to shrink the cache to (bytes, or with K, M, G, T suffix)")
	prune.Flags().StringVar(&o.CacheDir, "cache-dir", "", "cache directory (default $UVMBUILD_CACHE, else $XDG_CACHE_HOME/uvmbuild, else ~/.cache/uvmbuild)")
	info := &cobra.Command{
		Use:   "info",
		Short: "Print the cache directory and its size",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := o.cacheDir()
			if err != nil {
				return err
			}
			n, err := cache.Usage(dir)
			if err != nil {
				return fmt.Errorf("cache directory %s: %w", dir, unwrapPathErr(err))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", dir, formatSize(n))
			return nil
		},
	}
	info.Flags().StringVar(&o.CacheDir, "cache-dir", "", "cache directory")
	cmd.AddCommand(prune, info)
	return cmd
}

// parseSize reads 1024, 500K, 10M, 2G, 1T (powers of 1024; an optional
// trailing "B" or "iB").
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("--max-size %q: want a size such as 500M or 10G", s)
	}
	return int64(n * float64(mult)), nil
}

func formatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	v, u := float64(n), 0
	for v >= unit && u < 4 {
		v /= unit
		u++
	}
	return fmt.Sprintf("%.1f%ciB", v, " KMGT"[u])
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
