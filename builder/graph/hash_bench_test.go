package graph

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkHashTree digests a 64 MiB tree of 2048 files from scratch (no
// remembered digests), as the first build of a source tree does.
func BenchmarkHashTree(b *testing.B) {
	root := b.TempDir()
	buf := make([]byte, 32<<10)
	for i := range 2048 {
		for j := range buf {
			buf[j] = byte(i + j)
		}
		p := filepath.Join(root, fmt.Sprintf("d%02d", i%32), fmt.Sprintf("f%04d", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(2048 * int64(len(buf)))
	for b.Loop() {
		h := newHasher("", 2)
		if _, _, err := h.input(context.Background(), root, nil); err != nil {
			b.Fatal(err)
		}
	}
}
