package igvmgen

import (
	"context"
	"crypto/sha512"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/uvmbuild/uvmbuild/builder/kernel"
)

// benchKernel is $UVMBUILD_BENCH_KERNEL (e.g. Debian's
// linux-image-*-cloud-amd64 vmlinuz, 14 MB) or a synthetic bzImage of the
// same size with an incompressible payload.
func benchKernel(b *testing.B) []byte {
	if p := os.Getenv("UVMBUILD_BENCH_KERNEL"); p != "" {
		k, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		return k
	}
	const size = 14 << 20
	payload := stream("bench-kernel", size-28*512)
	return fakeKernel(0x1000000, 0x3000000, payload)
}

// sha384Floor is the time of one core hashing the measured kernel pages:
// the work no implementation can avoid.
func sha384Floor(k []byte) time.Duration {
	bz, err := kernel.Parse("k", k)
	if err != nil {
		panic(err)
	}
	t0 := time.Now()
	for off := 0; off+pageSize <= len(bz.Payload); off += pageSize {
		sha512.Sum384(bz.Payload[off : off+pageSize])
	}
	return time.Since(t0)
}

// floorMeter times the floor between iterations (timer stopped), so the
// reported ratio compares runs made under the same machine load.
type floorMeter struct {
	k     []byte
	total time.Duration
	n     int
}

func (f *floorMeter) sample(b *testing.B) {
	b.StopTimer()
	f.total += sha384Floor(f.k)
	f.n++
	b.StartTimer()
}

func (f *floorMeter) report(b *testing.B) {
	per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	fl := float64(f.total.Nanoseconds()) / float64(f.n)
	b.ReportMetric(per/fl, "x-sha384-floor")
	b.ReportMetric(fl/1e6, "floor-ms")
}

func benchParams(b *testing.B) Params {
	p := DefaultParams()
	p.Kernel, p.KernelName = benchKernel(b), "bench"
	p.Cmdline = []byte("console=ttyS0 root=/dev/vda1 rw")
	p.ACPI = fakeACPI() // tables already compiled, as in the target
	return p
}

// BenchmarkGenerate builds the IGVM and writes it to a file (GenerateFile:
// temp + rename, data written while hashing), reporting the ratio to the single-core SHA-384 floor and the heap
// allocated per build relative to the kernel size.
func BenchmarkGenerate(b *testing.B) {
	p := benchParams(b)
	fm := floorMeter{k: p.Kernel}
	out := filepath.Join(b.TempDir(), "out.igvm")
	ctx := context.Background()
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	b.SetBytes(int64(len(p.Kernel)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := GenerateFile(ctx, p, out); err != nil {
			b.Fatal(err)
		}
		fm.sample(b)
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	fm.report(b)
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(b.N)/float64(len(p.Kernel)), "alloc/kernel")
}

// BenchmarkGenerateNoWrite is Generate plus writing to io.Discard.
func BenchmarkGenerateNoWrite(b *testing.B) {
	p := benchParams(b)
	fm := floorMeter{k: p.Kernel}
	b.SetBytes(int64(len(p.Kernel)))
	for b.Loop() {
		im, err := Generate(context.Background(), p)
		if err != nil {
			b.Fatal(err)
		}
		im.WriteTo(io.Discard)
		fm.sample(b)
	}
	fm.report(b)
}

// BenchmarkMeasure recomputes the digest of a generated file.
func BenchmarkMeasure(b *testing.B) {
	p := benchParams(b)
	im, err := Generate(context.Background(), p)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "m.igvm")
	if err := im.WriteFile(path); err != nil {
		b.Fatal(err)
	}
	fm := floorMeter{k: p.Kernel}
	f, _ := os.Open(path)
	defer f.Close()
	b.SetBytes(im.Size())
	for b.Loop() {
		m, err := Measure(context.Background(), f, im.Size())
		if err != nil || m.Digest != im.Digest {
			b.Fatal(err)
		}
		fm.sample(b)
	}
	fm.report(b)
}
