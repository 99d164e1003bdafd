package pagehash

import (
	"crypto/sha512"
	"math/rand/v2"
	"testing"
)

func randomPages(r *rand.Rand, n int) [][]byte {
	pages := make([][]byte, n)
	for i := range pages {
		pages[i] = make([]byte, PageSize)
		switch i % 4 {
		case 0: // random
			for j := range pages[i] {
				pages[i][j] = byte(r.Uint32())
			}
		case 1: // zero
		case 2: // all ones
			for j := range pages[i] {
				pages[i][j] = 0xFF
			}
		default: // sparse
			pages[i][r.IntN(PageSize)] = byte(r.Uint32())
		}
	}
	return pages
}

func TestSum384MatchesStdlib(t *testing.T) {
	t.Logf("multi-lane AVX-512 path: %v", multiLane())
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 27; n++ {
		pages := randomPages(r, n)
		out := make([][Size]byte, n)
		Sum384(pages, out)
		for i := range pages {
			if out[i] != sha512.Sum384(pages[i]) {
				t.Fatalf("n=%d page %d: %x, want %x", n, i, out[i], sha512.Sum384(pages[i]))
			}
		}
	}
}

func FuzzSum384(f *testing.F) {
	f.Add([]byte("seed"), uint8(8))
	f.Fuzz(func(t *testing.T, seed []byte, n uint8) {
		pages := make([][]byte, int(n%20))
		for i := range pages {
			pages[i] = make([]byte, PageSize)
			for j := range pages[i] {
				if len(seed) > 0 {
					pages[i][j] = seed[(i*31+j)%len(seed)] ^ byte(j>>i)
				}
			}
		}
		out := make([][Size]byte, len(pages))
		Sum384(pages, out)
		for i := range pages {
			if out[i] != sha512.Sum384(pages[i]) {
				t.Fatalf("page %d differs", i)
			}
		}
	})
}

func BenchmarkSum384(b *testing.B) {
	pages := randomPages(rand.New(rand.NewPCG(3, 4)), 256)
	for i := range pages {
		for j := range pages[i] {
			pages[i][j] = byte(i + j*7)
		}
	}
	out := make([][Size]byte, len(pages))
	b.SetBytes(int64(len(pages) * PageSize))
	b.Run("pagehash", func(b *testing.B) {
		b.SetBytes(int64(len(pages) * PageSize))
		for b.Loop() {
			Sum384(pages, out)
		}
	})
	b.Run("stdlib", func(b *testing.B) {
		b.SetBytes(int64(len(pages) * PageSize))
		for b.Loop() {
			for i := range pages {
				out[i] = sha512.Sum384(pages[i])
			}
		}
	})
}
