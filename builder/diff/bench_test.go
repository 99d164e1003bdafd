package diff

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// writeImage writes an MBR disk image of size bytes (partition 1 ext4-like,
// partition 2 a verity superblock) with the byte at flip changed when
// flip > 0, in 1 MiB writes.
func writeImage(b testing.TB, path string, size int64, flip int64) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	head := synthDisk(4<<20, 1, 0)
	// Stretch partition 1 to the whole image.
	p1n := uint32(size/512 - 2048 - 64)
	put32 := func(p []byte, v uint32) { p[0], p[1], p[2], p[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24) }
	put32(head[446+12:], p1n)
	put32(head[446+16+8:], 2048+p1n)
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		clear(buf)
		if off < int64(len(head)) {
			copy(buf, head[off:])
		}
		for i := range buf {
			if i%4096 == 7 {
				buf[i] = byte(off >> 20)
			}
		}
		if flip >= off && flip < off+int64(len(buf)) {
			buf[flip-off] ^= 0x5a
		}
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiffImages compares two disk images that differ in one 4 KiB
// block (size from UVMBUILD_BENCH_DIFF_MIB, default 500). The reference,
// cmp(1), is measured in the same run by scripts/bench-diff.sh.
func BenchmarkDiffImages(b *testing.B) {
	mib, _ := strconv.Atoi(os.Getenv("UVMBUILD_BENCH_DIFF_MIB"))
	if mib <= 0 {
		mib = 500
	}
	size := int64(mib) << 20
	dir := b.TempDir()
	pa, pb := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	writeImage(b, pa, size, 0)
	writeImage(b, pb, size, size/3)
	b.SetBytes(2 * size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := Files(context.Background(), pa, pb, nil)
		if err != nil {
			b.Fatal(err)
		}
		if r.Kind != "disk" || r.Same() {
			b.Fatalf("kind %s same %v", r.Kind, r.Same())
		}
		if i == 0 {
			r.WriteText(io.Discard)
		}
	}
}
