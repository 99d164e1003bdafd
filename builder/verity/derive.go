package verity

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"runtime"

	"golang.org/x/sync/errgroup"
)

// Domain labels keep the derived values independent of each other.
const (
	saltLabel = "uvmbuild verity salt v1"
	uuidLabel = "uvmbuild verity uuid v1"
	seedLabel = "uvmbuild content seed v1"
	seedChunk = 4 << 20
)

// DeriveSalt returns the 32-byte salt for content identified by seed:
// SHA-256("uvmbuild verity salt v1" ‖ 0x00 ‖ seed).
func DeriveSalt(seed []byte) []byte {
	s := labelled(saltLabel, seed)
	return s[:]
}

// DeriveUUID returns the superblock UUID for content identified by seed: the
// first 16 bytes of SHA-256("uvmbuild verity uuid v1" ‖ 0x00 ‖ seed), marked
// as an RFC 9562 version 8 (custom) UUID.
func DeriveUUID(seed []byte) UUID {
	return labelledUUID(uuidLabel, seed)
}

func labelled(label string, seed []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(label))
	h.Write([]byte{0})
	h.Write(seed)
	var s [32]byte
	h.Sum(s[:0])
	return s
}

// labelledUUID is exported to sibling packages through DeriveUUIDWithLabel.
func labelledUUID(label string, seed []byte) UUID {
	s := labelled(label, seed)
	var u UUID
	copy(u[:], s[:16])
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // RFC 4122/9562 variant
	return u
}

// DeriveUUIDWithLabel derives a version 8 UUID from seed under a caller's
// domain label, with the same construction as DeriveUUID.
func DeriveUUIDWithLabel(label string, seed []byte) UUID { return labelledUUID(label, seed) }

// ContentSeed returns a seed identifying size bytes of r: SHA-256 over
// "uvmbuild content seed v1" ‖ 0x00 ‖ size (8 bytes LE) ‖ SHA-256 of each
// 4 MiB chunk in order. The chunks are hashed in parallel.
func ContentSeed(ctx context.Context, r io.ReaderAt, size int64) ([]byte, error) {
	chunks := (size + seedChunk - 1) / seedChunk
	sums := make([][32]byte, chunks)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for c := range chunks {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			n := min(seedChunk, size-c*seedChunk)
			h := sha256.New()
			if _, err := io.Copy(h, io.NewSectionReader(r, c*seedChunk, n)); err != nil {
				return fmt.Errorf("reading data at offset %d: %w", c*seedChunk, err)
			}
			h.Sum(sums[c][:0])
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write([]byte(seedLabel))
	h.Write([]byte{0})
	var sz [8]byte
	for i := range 8 {
		sz[i] = byte(size >> (8 * i))
	}
	h.Write(sz[:])
	for _, s := range sums {
		h.Write(s[:])
	}
	return h.Sum(nil), nil
}
