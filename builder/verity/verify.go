package verity

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// ErrMismatch is returned by Verify when the hash device or the root hash do
// not match the data.
var ErrMismatch = errors.New("verity mismatch")

// Verify recomputes the hash device for data with p and checks it against
// hash byte for byte (superblock, every tree block and its padding), and the
// root hash against root when root is not nil.
func Verify(ctx context.Context, data io.Reader, dataSize int64, hash io.ReaderAt, p Params, root []byte) (*Result, error) {
	cw := &compareWriter{r: hash}
	res, err := Format(ctx, data, dataSize, cw, p)
	if err != nil {
		return nil, err
	}
	if root != nil && !bytes.Equal(root, res.RootHash) {
		return res, fmt.Errorf("%w: root hash is %s, want %s", ErrMismatch, hex.EncodeToString(res.RootHash), hex.EncodeToString(root))
	}
	return res, nil
}

// ReadSuperblock reads and decodes the superblock at the start of a hash
// device.
func ReadSuperblock(hash io.ReaderAt) (*Superblock, error) {
	b := make([]byte, SuperblockSize)
	if _, err := hash.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("reading verity superblock: %w", err)
	}
	return DecodeSuperblock(b)
}

// ParamsFromSuperblock returns the format parameters a superblock records.
func ParamsFromSuperblock(sb *Superblock) (Params, error) {
	if sb.HashType != 1 {
		return Params{}, fmt.Errorf("verity superblock: hash type %d not supported (only format 1)", sb.HashType)
	}
	return Params{Hash: sb.Algorithm, DataBlockSize: sb.DataBlockSize, HashBlockSize: sb.HashBlockSize,
		Salt: sb.Salt, UUID: sb.UUID}, nil
}

type compareWriter struct {
	r   io.ReaderAt
	buf []byte
}

func (c *compareWriter) WriteAt(b []byte, off int64) (int, error) {
	if cap(c.buf) < len(b) {
		c.buf = make([]byte, len(b))
	}
	got := c.buf[:len(b)]
	if _, err := c.r.ReadAt(got, off); err != nil {
		return 0, fmt.Errorf("%w: reading hash device at offset %d: %w", ErrMismatch, off, err)
	}
	if !bytes.Equal(got, b) {
		i := 0
		for i < len(b) && got[i] == b[i] {
			i++
		}
		return 0, fmt.Errorf("%w: hash device differs at offset %d", ErrMismatch, off+int64(i))
	}
	return len(b), nil
}
