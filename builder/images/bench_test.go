package images_test

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/uvmbuild/uvmbuild/builder/images"
)

// bigTar writes a ~150 MiB root-like tar: 6000 files in 60 directories,
// sizes spread like a distribution's (many small, some large), content
// half compressible.
func bigTar(b *testing.B) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "big.tar")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(w)
	rng := rand.New(rand.NewPCG(1, 2))
	mt := time.Unix(1700000000, 0)
	var total int64
	buf := make([]byte, 4<<20)
	for i := range buf {
		if i%2 == 0 {
			buf[i] = byte(rng.Uint32())
		} else {
			buf[i] = 'a'
		}
	}
	for d := 0; d < 60; d++ {
		dir := fmt.Sprintf("usr/lib/pkg%02d/", d)
		tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt})
		for i := 0; i < 100; i++ {
			size := int64(rng.ExpFloat64() * 25000)
			if size > int64(len(buf)) {
				size = int64(len(buf))
			}
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%sf%03d", dir, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: mt})
			off := rng.IntN(len(buf) - int(size) + 1)
			tw.Write(buf[off : off+int(size)])
			total += size
		}
	}
	// Fill up to ~150 MiB with a few large files (libraries, locales).
	for i := 0; total < 150<<20; i++ {
		size := int64(len(buf))
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("usr/lib/big%03d.so", i), Typeflag: tar.TypeReg, Mode: 0o755, Size: size, ModTime: mt})
		tw.Write(buf)
		total += size
	}
	tw.Close()
	w.Flush()
	f.Close()
	return p
}

// BenchmarkUnpack150MiB measures verify + unpack of a ~150 MiB image into
// a fresh store, for an uncompressed layer (what DebianImage writes) and a
// gzip and a zstd layer (what registries serve).
func BenchmarkUnpack150MiB(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("unpacking keeps owners; needs root")
	}
	tarPath := bigTar(b)
	fi, _ := os.Stat(tarPath)
	// The reference: GNU tar extracting the same uncompressed tar (no
	// digest checks).
	b.Run("gnu-tar", func(b *testing.B) {
		if _, err := exec.LookPath("tar"); err != nil {
			b.Skip("tar not installed")
		}
		b.SetBytes(fi.Size())
		reportMedian(b, func() error {
			dir := b.TempDir()
			out, err := exec.Command("tar", "-xpf", tarPath, "-C", dir).CombinedOutput()
			if err != nil {
				return fmt.Errorf("tar: %v: %s", err, out)
			}
			return nil
		})
	})
	for _, comp := range []compression.Compression{compression.None, compression.GZip, compression.ZStd} {
		b.Run(string(comp), func(b *testing.B) {
			b.StopTimer()
			dir := filepath.Join(b.TempDir(), "image")
			if comp == compression.None {
				if _, err := images.WriteLayout(dir, tarPath, images.ImageConfig{Created: time.Unix(1700000000, 0)}); err != nil {
					b.Fatal(err)
				}
			} else {
				mt := types.OCILayer
				if comp == compression.ZStd {
					mt = types.OCILayerZStd
				}
				l, err := tarball.LayerFromFile(tarPath, tarball.WithCompression(comp), tarball.WithMediaType(mt))
				if err != nil {
					b.Fatal(err)
				}
				img := layerImageFrom(b, l)
				p, _ := layout.Write(dir, empty.Index)
				if err := p.AppendImage(img); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(fi.Size())
			reportMedian(b, func() error {
				s := &images.Store{Dir: b.TempDir()}
				_, _, err := s.RootfsFromLayout(context.Background(), dir, "")
				return err
			})
		})
	}
}
