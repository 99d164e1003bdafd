package verity

import (
	"context"
	"fmt"
	"hash"
	"io"
	"runtime"
	"runtime/debug"

	"golang.org/x/sync/errgroup"
)

// jobBytes is the amount of data one worker hashes per job. With W workers
// at most 2W+2 job buffers exist; W is capped at maxWorkers, so buffers never
// exceed 34 MiB whatever the data size or the machine.
const (
	jobBytes   = 1 << 20
	maxWorkers = 16
)

// Result describes a formatted hash device.
type Result struct {
	Params     Params // with defaults applied
	DataBlocks uint64
	HashBlocks uint64 // tree blocks, without the superblock
	Levels     int
	RootHash   []byte
	// HashDeviceSize is the number of bytes written to the hash device.
	HashDeviceSize int64
}

// HashStartBlock is the kernel table's hash_start_block: 1 with a
// superblock, 0 without.
func (r *Result) HashStartBlock() uint64 {
	if r.Params.NoSuperblock {
		return 0
	}
	return 1
}

// Format reads dataSize bytes of data and writes the hash device (superblock
// if requested, then the tree) to hash at offsets 0..HashDeviceSize. The data
// is read once, sequentially. dataSize must be a positive multiple of the
// data block size. Writes go only to hash; the caller decides what it is (a
// temp file, a region of a disk image).
func Format(ctx context.Context, data io.Reader, dataSize int64, hash io.WriterAt, p Params) (*Result, error) {
	return run(ctx, data, dataSize, hash, p, 0)
}

// run is Format with a worker count (0 = GOMAXPROCS), for tests.
func run(ctx context.Context, data io.Reader, dataSize int64, out io.WriterAt, p Params, workers int) (*Result, error) {
	return runSource(ctx, data, nil, dataSize, out, p, workers)
}

// runSource hashes from data, or, when m is set, from memory maps of the
// data file (data is then unused).
func runSource(ctx context.Context, data io.Reader, m *mapper, dataSize int64, out io.WriterAt, p Params, workers int) (*Result, error) {
	p = p.withDefaults()
	nh, err := p.validate()
	if err != nil {
		return nil, err
	}
	n, err := dataBlockCount(p, dataSize)
	if err != nil {
		return nil, err
	}
	l, err := computeLayout(p, nh().Size(), n)
	if err != nil {
		return nil, err
	}
	res := &Result{
		Params: p, DataBlocks: n, HashBlocks: l.hashBlocks, Levels: l.levels,
		HashDeviceSize: int64(l.sbBlocks+l.hashBlocks) * int64(p.HashBlockSize),
	}
	if !p.NoSuperblock {
		sb := Superblock{HashType: 1, UUID: p.UUID, Algorithm: p.Hash, DataBlockSize: p.DataBlockSize,
			HashBlockSize: p.HashBlockSize, DataBlocks: n, Salt: p.Salt}
		b, err := sb.MarshalBinary()
		if err != nil {
			return nil, err
		}
		blk := make([]byte, p.HashBlockSize)
		copy(blk, b)
		if _, err := out.WriteAt(blk, 0); err != nil {
			return nil, fmt.Errorf("writing verity superblock: %w", err)
		}
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, maxWorkers)
	digests, err := hashData(ctx, data, m, n, p, nh, workers, l.digestSize)
	if err != nil {
		return nil, err
	}
	t := newTree(l, p, nh, out)
	for d := range digests.seq {
		if err := t.add(0, d); err != nil {
			digests.stop()
			_ = digests.wait()
			return nil, err
		}
	}
	if err := digests.wait(); err != nil {
		return nil, err
	}
	root, err := t.finish()
	if err != nil {
		return nil, err
	}
	res.RootHash = root
	return res, nil
}

// tree packs digests into one partial block per level and writes each block
// at its place once full.
type tree struct {
	l       layout
	hbs     int
	out     io.WriterAt
	h       hash.Hash
	salt    []byte
	buf     [][]byte // partial block per level
	fill    []uint64 // digests in buf
	written []uint64 // blocks written per level
	root    []byte
}

func newTree(l layout, p Params, nh func() hash.Hash, out io.WriterAt) *tree {
	t := &tree{l: l, hbs: int(p.HashBlockSize), out: out, h: nh(), salt: p.Salt,
		fill: make([]uint64, l.levels), written: make([]uint64, l.levels)}
	for range l.levels {
		t.buf = append(t.buf, make([]byte, p.HashBlockSize))
	}
	return t
}

// add appends digest d to level k (level == l.levels means it is the root).
func (t *tree) add(k int, d []byte) error {
	if k == t.l.levels {
		if t.root != nil {
			return fmt.Errorf("verity: internal error: second root digest")
		}
		t.root = append([]byte(nil), d...)
		return nil
	}
	copy(t.buf[k][int(t.fill[k])*t.l.slot:], d)
	t.fill[k]++
	if t.fill[k] == t.l.perBlock {
		return t.flush(k)
	}
	return nil
}

// flush writes level k's partial block (zero padded), hashes it into level k+1.
func (t *tree) flush(k int) error {
	if t.written[k] >= t.l.levelSize[k] {
		return fmt.Errorf("verity: internal error: level %d overflows %d blocks", k, t.l.levelSize[k])
	}
	off := int64(t.l.levelStart[k]+t.written[k]) * int64(t.hbs)
	if _, err := t.out.WriteAt(t.buf[k], off); err != nil {
		return fmt.Errorf("writing verity hash block at offset %d: %w", off, err)
	}
	t.written[k]++
	t.h.Reset()
	t.h.Write(t.salt)
	t.h.Write(t.buf[k])
	d := t.h.Sum(nil)
	clear(t.buf[k])
	t.fill[k] = 0
	return t.add(k+1, d)
}

func (t *tree) finish() ([]byte, error) {
	for k := range t.l.levels {
		if t.fill[k] > 0 {
			if err := t.flush(k); err != nil {
				return nil, err
			}
		}
		if t.written[k] != t.l.levelSize[k] {
			return nil, fmt.Errorf("verity: internal error: level %d has %d blocks, want %d", k, t.written[k], t.l.levelSize[k])
		}
	}
	if t.root == nil {
		return nil, fmt.Errorf("verity: internal error: no root digest")
	}
	return t.root, nil
}

// hashBlocks returns the concatenated digests of the blocks of buf.
func hashBlocks(h hash.Hash, salt, buf []byte, bs, ds int) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("data changed while it was hashed (memory fault: %v)", r)
		}
	}()
	out = make([]byte, 0, len(buf)/bs*ds)
	for i := 0; i < len(buf); i += bs {
		h.Reset()
		h.Write(salt)
		h.Write(buf[i : i+bs])
		out = h.Sum(out)
	}
	return out, nil
}

// digestStream yields data-block digests in order.
type digestStream struct {
	seq  func(yield func([]byte) bool)
	stop func()
	wait func() error
}

type job struct {
	buf    []byte // the data, or nil when the worker maps it
	start  int64  // byte offset of the job in the data
	blocks int
	out    chan []byte // receives the job's concatenated digests
}

// hashData reads n blocks from data (or has the workers map them through
// m) and hashes them on workers goroutines. The returned stream yields the
// digests in data order.
func hashData(ctx context.Context, data io.Reader, m *mapper, n uint64, p Params, nh func() hash.Hash, workers, ds int) (*digestStream, error) {
	bs := int(p.DataBlockSize)
	perJob := max(1, jobBytes/bs)
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(ctx)
	free := make(chan []byte, 2*workers+2)
	for range cap(free) {
		free <- nil // allocated lazily on first use
	}
	work := make(chan job, workers)
	order := make(chan chan []byte, 2*workers)

	g.Go(func() error { // reader: sequential, so the kernel's readahead works
		defer close(work)
		defer close(order)
		for left := n; left > 0; {
			k := int(min(uint64(perJob), left))
			j := job{start: int64(n-left) * int64(bs), blocks: k, out: make(chan []byte, 1)}
			if m == nil {
				var buf []byte
				select {
				case buf = <-free:
				case <-gctx.Done():
					return gctx.Err()
				}
				if buf == nil {
					buf = make([]byte, perJob*bs)
				}
				if _, err := io.ReadFull(data, buf[:k*bs]); err != nil {
					return fmt.Errorf("reading data block %d: %w", n-left, err)
				}
				j.buf = buf
			}
			left -= uint64(k)
			select {
			case order <- j.out:
			case <-gctx.Done():
				return gctx.Err()
			}
			select {
			case work <- j:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for range workers {
		g.Go(func() error {
			h := nh()
			if m != nil {
				// A mapped file truncated under us faults: make that an
				// error of this goroutine, not a crash.
				defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
			}
			for j := range work {
				buf := j.buf
				if m != nil {
					var err error
					if buf, err = m.mapRange(j.start, j.blocks*bs); err != nil {
						return err
					}
				}
				out, err := hashBlocks(h, p.Salt, buf[:j.blocks*bs], bs, ds)
				if m != nil {
					m.unmap(buf)
				} else {
					free <- j.buf
				}
				if err != nil {
					return fmt.Errorf("hashing data at offset %d: %w", j.start, err)
				}
				j.out <- out
			}
			return nil
		})
	}
	stream := &digestStream{
		stop: cancel,
		wait: func() error {
			err := g.Wait()
			cancel()
			if err == nil {
				err = parent.Err()
			}
			return err
		},
	}
	stream.seq = func(yield func([]byte) bool) {
		for ch := range order {
			var ds0 []byte
			select {
			case ds0 = <-ch:
			case <-gctx.Done():
				return
			}
			for i := 0; i < len(ds0); i += ds {
				if !yield(ds0[i : i+ds]) {
					return
				}
			}
		}
	}
	return stream, nil
}
