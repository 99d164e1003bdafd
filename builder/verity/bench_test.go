package verity

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
)

type discardAt struct{}

func (discardAt) WriteAt(b []byte, _ int64) (int, error) { return len(b), nil }

// BenchmarkFormat hashes 64 MiB from memory with 1 and 2 workers; bytes/s
// is the data rate. scripts/bench-verity.sh compares the command with
// veritysetup on a file.
func BenchmarkFormat(b *testing.B) {
	data := make([]byte, 64<<20)
	for i := range data {
		data[i] = byte(i * 31)
	}
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := run(context.Background(), bytes.NewReader(data), int64(len(data)), discardAt{}, Params{Salt: testSalt()}, w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

var _ io.WriterAt = discardAt{}
