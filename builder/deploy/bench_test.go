package deploy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkInstallImage installs a 64 MiB UVM image, against the reference
// the node-builder uses (cp -a --backup=numbered) measured in the same run:
// "new" replaces a different image (hash, copy, fsync, rename), "unchanged"
// is a re-deploy (hash source and destination, write nothing).
func BenchmarkInstallImage(b *testing.B) {
	const size = 64 << 20
	dir := b.TempDir()
	src := [2]string{filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")}
	for i, p := range src {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(j*7 + i)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	root := b.TempDir()
	file := func(i int) []File {
		return []File{{Src: src[i%2], Dest: "/usr/share/kata-containers/kata-containers.img", Mode: 0o644, Part: UVM, Variant: Kata}}
	}
	ctx := context.Background()
	b.Run("cp-a-backup", func(b *testing.B) {
		cp, err := exec.LookPath("cp")
		if err != nil {
			b.Skip("cp not installed")
		}
		dst := filepath.Join(b.TempDir(), "kata-containers.img")
		b.SetBytes(size)
		for i := 0; b.Loop(); i++ {
			if out, err := exec.Command(cp, "-a", "--backup=numbered", src[i%2], dst).CombinedOutput(); err != nil {
				b.Fatal(err, string(out))
			}
			// Keep the directory small: the backups are the reference's
			// behaviour, not what is measured.
			matches, _ := filepath.Glob(dst + ".~*~")
			for _, m := range matches {
				os.Remove(m)
			}
		}
	})
	b.Run("new", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; b.Loop(); i++ {
			if _, err := Install(ctx, root, file(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		if _, err := Install(ctx, root, file(0)); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(size)
		for b.Loop() {
			res, err := Install(ctx, root, file(0))
			if err != nil || len(res.Installed) != 0 {
				b.Fatal(err, fmt.Sprint(res))
			}
		}
	})
}
