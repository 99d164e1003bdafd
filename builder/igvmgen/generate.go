package igvmgen

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/uvmbuild/uvmbuild/builder/atomicfile"
	"github.com/uvmbuild/uvmbuild/builder/igvm"
	"github.com/uvmbuild/uvmbuild/builder/kernel"
	"github.com/uvmbuild/uvmbuild/builder/snp"
	"github.com/uvmbuild/uvmbuild/builder/snp/pagehash"
)

// Image is a generated IGVM file held as its header section plus references
// to the data pages (mostly slices of the caller's kernel buffer).
type Image struct {
	// Digest is the SNP launch digest (the ID block's LD).
	Digest snp.Digest
	// Header is the fixed and variable header section.
	Header []byte
	chunks [][]byte
	size   int64
}

// Size is the length of the IGVM file.
func (im *Image) Size() int64 { return im.size }

// WriteTo writes the IGVM file to w.
func (im *Image) WriteTo(w io.Writer) (int64, error) {
	var n int64
	m, err := w.Write(im.Header)
	n += int64(m)
	if err != nil {
		return n, err
	}
	for _, c := range im.chunks {
		m, err := w.Write(c)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Bytes returns the whole file in memory (tests, small images).
func (im *Image) Bytes() []byte {
	var b bytes.Buffer
	b.Grow(int(im.size))
	im.WriteTo(&b)
	return b.Bytes()
}

// WriteFile writes the file atomically: to a temporary file beside path,
// then renamed over path. On error nothing is left at path. It does not
// fsync (igvmgen does not either; an fsync of a 14 MB file costs more than
// generating it): callers that need durability, like the build cache, sync
// when they store the result.
func (im *Image) WriteFile(path string) error {
	return atomicfile.Write(path, 0o644, func(f *os.File) error { _, err := im.WriteTo(f); return err }, atomicfile.NoSync())
}

// page is one included guest page.
type page struct {
	gpa    uint64
	kind   kind
	region int    // index into layout.regions
	off    uint64 // byte offset of the page in region.data
	data   []byte // nil: all zero
	digest snp.Digest
}

// Generate builds the IGVM image for p. The image aliases p.Kernel: keep it
// unchanged until the image is written.
func Generate(ctx context.Context, p Params) (*Image, error) {
	key := resolveKey(&p)
	j, err := prepare(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := j.run(ctx, nil); err != nil {
		return nil, err
	}
	k, err := key()
	if err != nil {
		return nil, err
	}
	return j.finish(k)
}

// GenerateFile is Generate followed by Image.WriteFile(path), except that
// each batch of pages is written to the file by the worker that has just
// hashed it (the data is still in its cache, and no third thread competes
// with the hashing for the cores): the header section's size, hence every
// data page's file offset, is known before the digest is.
//
// It does not fsync (igvmgen does not either): waiting for 14 MB to reach
// the disk costs about as much as generating them. The file is still never
// partial at path (temporary file and rename). Callers that need
// durability, like the build cache, sync when they store the result.
func GenerateFile(ctx context.Context, p Params, path string) (*Image, error) {
	key := resolveKey(&p)
	j, err := prepare(ctx, p)
	if err != nil {
		return nil, err
	}
	// Replacing a file by rename makes ext4 (auto_da_alloc) and btrfs
	// allocate and start writing back the new file inside the rename, so
	// that a crash cannot leave an empty file in place of the old one:
	// about 5 ms for 14 MB, on one core, after everything else. Started
	// batch by batch during the pass, that work is spread over both cores
	// and the rename finds it done. Fresh outputs are left to the flusher:
	// starting their writeback would only add work to the command.
	if _, err := os.Lstat(path); err == nil {
		j.writeback = true
	}
	var im *Image
	var keyErr error // not a write error: returned as is
	err = atomicfile.Write(path, 0o644, func(f *os.File) error {
		if err := j.run(ctx, f); err != nil {
			return err
		}
		k, err := key()
		if err != nil {
			keyErr = err
			return err
		}
		if im, err = j.finish(k); err != nil {
			return err
		}
		_, err = f.WriteAt(im.Header, 0)
		return err
	}, atomicfile.NoSync())
	if keyErr != nil {
		return nil, keyErr
	}
	if err != nil {
		return nil, err
	}
	return im, nil
}

// resolveKey returns a function giving p's ID key. Without one it starts
// deriving snp.DefaultKey on another core: its first P-384 operation builds
// tables (about 2 ms) that signing then reuses, and layout and hashing need
// no key.
func resolveKey(p *Params) func() (*ecdsa.PrivateKey, error) {
	switch key, fn := p.IDKey, p.IDKeyFunc; {
	case key != nil:
		return func() (*ecdsa.PrivateKey, error) { return key, nil }
	case fn != nil:
		return func() (*ecdsa.PrivateKey, error) {
			k, err := fn()
			if err == nil {
				err = snp.CheckKey(k)
			}
			return k, err
		}
	}
	type result struct {
		key *ecdsa.PrivateKey
		err error
	}
	c := make(chan result, 1)
	go func() {
		k, err := snp.DefaultKey()
		c <- result{k, err}
	}()
	return sync.OnceValues(func() (*ecdsa.PrivateKey, error) {
		r := <-c
		return r.key, r.err
	})
}

// job is one generation between its phases: layout and zero detection,
// header section (but the ID block), hashing, ID block.
type job struct {
	p         *Params
	l         *layout
	pages     []page
	hb        *igvm.HeaderBuilder
	chunks    [][]byte
	headerLen int64 // final header section size (with the ID block)
	// batchData[b] is the index among the data pages of batch b's first
	// data page (its file offset is headerLen + 4096 * batchData[b]).
	batchData []int
	chain     snp.Chain // folded by run, batch by batch in order
	// writeback: start writing each batch back to disk once written.
	writeback bool
}

// idBlockHeaderLen is the SNP_ID_BLOCK header: type, length, 696-byte body.
const idBlockHeaderLen = 8 + 696

func prepare(ctx context.Context, p Params) (*job, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	k, err := kernel.Parse(p.KernelName, p.Kernel)
	if err != nil {
		return nil, err
	}
	l, err := plan(&p, k)
	if err != nil {
		return nil, err
	}
	if p.IDKey != nil {
		if err := snp.CheckKey(p.IDKey); err != nil {
			return nil, err
		}
	}
	j := &job{p: &p, l: l, pages: enumerate(l)}
	if err := forEachBatch(ctx, j.pages, zeroBatch); err != nil {
		return nil, err
	}
	j.headers()
	return j, nil
}

// headers lays out every header but the ID block and the data chunks.
func (j *job) headers() {
	hb := igvm.NewHeaderBuilder(len(j.pages) + 8)
	hb.Add(igvm.TypeSupportedPlatform, igvm.SupportedPlatform{
		CompatibilityMask: 1, HighestVTL: j.p.VTL, PlatformType: igvm.PlatformSEVSNP, PlatformVersion: 1})
	hb.Add(igvm.TypeGuestPolicy, igvm.GuestPolicy{Policy: snp.DefaultPolicy, CompatibilityMask: 1})
	lastRegion, lastEnd := -1, uint64(0)
	addData := func(pg *page) {
		// Consecutive pages of one region are written as one chunk.
		if n := len(j.chunks); n > 0 && pg.region >= 0 && pg.region == lastRegion && pg.off == lastEnd {
			d := j.l.regions[pg.region].data
			start := pg.off - uint64(len(j.chunks[n-1]))
			j.chunks[n-1] = d[start : pg.off+pageSize]
		} else {
			j.chunks = append(j.chunks, pg.data)
		}
		lastRegion, lastEnd = pg.region, pg.off+pageSize
	}
	j.batchData = make([]int, 0, (len(j.pages)+batchSize-1)/batchSize)
	for i := range j.pages {
		if i%batchSize == 0 {
			j.batchData = append(j.batchData, hb.DataPages())
		}
		pg := &j.pages[i]
		switch pg.kind {
		case kindNormal:
			hb.AddPageData(igvm.PageData{GPA: pg.gpa, CompatibilityMask: 1}, pg.data != nil)
			if pg.data != nil {
				addData(pg)
			}
		case kindCPUID:
			hb.AddPageData(igvm.PageData{GPA: pg.gpa, CompatibilityMask: 1, DataType: igvm.DataCPUID}, true)
			addData(pg)
		case kindSecrets:
			hb.AddPageData(igvm.PageData{GPA: pg.gpa, CompatibilityMask: 1, DataType: igvm.DataSecrets}, false)
		case kindParam:
			hb.Add(igvm.TypeParameterArea, igvm.ParameterArea{NumberOfBytes: pageSize})
			hb.Add(igvm.TypeVPCountParameter, igvm.ParameterUsage{})
			hb.Add(igvm.TypeMemoryMap, igvm.ParameterUsage{ByteOffset: 24})
			hb.Add(igvm.TypeParameterInsert, igvm.ParameterInsert{GPA: pg.gpa, CompatibilityMask: 1})
		case kindVMSA:
			hb.AddVPContext(igvm.VPContext{GPA: pg.gpa, CompatibilityMask: 1})
			addData(pg)
		}
	}
	j.hb = hb
	j.headerLen = int64(hb.Len()) + idBlockHeaderLen
}

// run hashes every page, folds the PAGE_INFO chain and, when f is not nil,
// writes the data pages to f at their final offsets. Each batch is hashed,
// written and, once all batches before it are folded, folded by the same
// worker: both cores share all three kinds of work.
func (j *job) run(ctx context.Context, f *os.File) error {
	var mu sync.Mutex
	done := make([]bool, len(j.batchData))
	next, folding := 0, false
	// complete marks batch b hashed and folds what can be folded, unless
	// another worker is folding (it will see b done before it stops).
	complete := func(b int) {
		mu.Lock()
		done[b] = true
		if folding {
			mu.Unlock()
			return
		}
		folding = true
		for next < len(done) && done[next] {
			n := next
			mu.Unlock()
			start := n * batchSize
			foldBatch(&j.chain, j.pages[start:min(start+batchSize, len(j.pages))])
			mu.Lock()
			next++
		}
		folding = false
		mu.Unlock()
	}
	err := forEachBatch(ctx, j.pages, func(pages []page, offset int, sc *batchScratch) error {
		hashBatch(pages, offset, sc)
		if f != nil {
			if err := j.writeBatch(f, pages, offset); err != nil {
				return err
			}
		}
		complete(offset / batchSize)
		return nil
	})
	if err != nil {
		return err
	}
	if next != len(done) {
		return fmt.Errorf("internal error: folded %d of %d page batches", next, len(done))
	}
	return nil
}

// writeBatch writes the data pages of one batch (pages, starting at page
// index offset), one write per run of pages adjacent in memory.
func (j *job) writeBatch(f *os.File, pages []page, offset int) error {
	pos := j.headerLen + int64(j.batchData[offset/batchSize])*pageSize
	var run []byte // pending run of adjacent data
	runRegion, runEnd := -1, uint64(0)
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		_, err := f.WriteAt(run, pos)
		if err == nil && j.writeback {
			// A hint: if it fails, the rename or the flusher writes the
			// data back all the same.
			_ = startWriteback(f, pos, int64(len(run)))
		}
		pos += int64(len(run))
		run = nil
		return err
	}
	for i := range pages {
		pg := &pages[i]
		if !pg.hasData() {
			continue
		}
		if len(run) > 0 && pg.region >= 0 && pg.region == runRegion && pg.off == runEnd {
			d := j.l.regions[pg.region].data
			run = d[pg.off-uint64(len(run)) : pg.off+pageSize]
		} else {
			if err := flush(); err != nil {
				return err
			}
			run = pg.data
		}
		runRegion, runEnd = pg.region, pg.off+pageSize
	}
	return flush()
}

// hasData reports whether the page has file data (a PAGE_DATA with data or
// the VMSA of a VP_CONTEXT).
func (pg *page) hasData() bool {
	switch pg.kind {
	case kindNormal:
		return pg.data != nil
	case kindCPUID, kindVMSA:
		return true
	}
	return false
}

// foldBatch extends the launch digest with pages (hashed), in order.
func foldBatch(c *snp.Chain, pages []page) {
	for i := range pages {
		pg := &pages[i]
		switch pg.kind {
		case kindNormal:
			c.Add(snp.PageNormal, pg.gpa, &pg.digest)
		case kindCPUID:
			c.Add(snp.PageCPUID, pg.gpa, nil)
		case kindSecrets:
			c.Add(snp.PageSecrets, pg.gpa, nil)
		case kindParam:
			c.Add(snp.PageUnmeasured, pg.gpa, nil)
		case kindVMSA:
			c.Add(snp.PageVMSA, pg.gpa, &pg.digest)
		}
	}
}

// finish signs the ID block and completes the header section. The pages
// must be hashed and folded (run).
func (j *job) finish(key *ecdsa.PrivateKey) (*Image, error) {
	im := &Image{Digest: j.chain.Digest(), chunks: j.chunks}
	blk := snp.DefaultIDBlock(im.Digest)
	sig, err := snp.Sign(key, blk)
	if err != nil {
		return nil, err
	}
	j.hb.Add(igvm.TypeSNPIDBlock, idBlockHeader(blk, sig))
	if im.Header, err = j.hb.Finish(); err != nil {
		return nil, err
	}
	if int64(len(im.Header)) != j.headerLen {
		return nil, fmt.Errorf("internal error: header section is %d bytes, planned %d", len(im.Header), j.headerLen)
	}
	im.size = int64(len(im.Header)) + int64(j.hb.DataPages())*pageSize
	return im, nil
}

// idBlockHeader is the IGVM SNP_ID_BLOCK for a signed block.
func idBlockHeader(blk snp.IDBlock, sig snp.Signature) igvm.SNPIDBlock {
	h := igvm.SNPIDBlock{
		CompatibilityMask: 1, LD: blk.LD, FamilyID: blk.FamilyID, ImageID: blk.ImageID,
		Version: blk.Version, GuestSVN: blk.GuestSVN, IDKeyAlgorithm: 1,
	}
	copy(h.IDKeySignature.R[:], sig.R[:])
	copy(h.IDKeySignature.S[:], sig.S[:])
	h.IDPublicKey.Curve = 2 // P-384
	copy(h.IDPublicKey.Qx[:], sig.Qx[:])
	copy(h.IDPublicKey.Qy[:], sig.Qy[:])
	return h
}

// enumerate lists every included page in ascending GPA.
func enumerate(l *layout) []page {
	n := 0
	for _, r := range l.regions {
		n += int(r.npages)
	}
	pages := make([]page, 0, n)
	for ri, r := range l.regions {
		for i := uint64(0); i < r.npages; i++ {
			pg := page{gpa: r.gpa + i*pageSize, kind: r.kind, region: ri, off: i * pageSize}
			switch {
			case pg.off+pageSize <= uint64(len(r.data)):
				pg.data = r.data[pg.off : pg.off+pageSize]
			case pg.off < uint64(len(r.data)):
				pg.data = make([]byte, pageSize) // partial last page, zero padded
				copy(pg.data, r.data[pg.off:])
				pg.region = -1 - ri // never coalesced with the aliased pages
			}
			pages = append(pages, pg)
		}
	}
	return pages
}

// forEachBatch runs f over batches of consecutive pages on all cores; it
// stops at the first error.
func forEachBatch(ctx context.Context, pages []page, f func(pages []page, offset int, scratch *batchScratch) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sc batchScratch
			for {
				start := int(next.Add(batchSize)) - batchSize
				if start >= len(pages) || ctx.Err() != nil {
					return
				}
				if err := f(pages[start:min(start+batchSize, len(pages))], start, &sc); err != nil {
					once.Do(func() { firstErr = err })
					next.Store(int64(len(pages))) // the others stop at their next batch
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

const batchSize = 64

type batchScratch struct {
	zero *snp.Digest
	data [][]byte
	idx  []int
	sums [batchSize][pagehash.Size]byte
}

// zeroBatch drops the data of all-zero ordinary pages: they get no file
// data and the constant zero-page digest.
func zeroBatch(pages []page, _ int, _ *batchScratch) error {
	var zeroPage [pageSize]byte
	for i := range pages {
		pg := &pages[i]
		if pg.kind == kindNormal && pg.data != nil && bytes.Equal(pg.data, zeroPage[:]) {
			pg.data = nil
		}
	}
	return nil
}

// hashBatch hashes the measured contents (8 pages at once per core where
// AVX-512 allows, see snp/pagehash).
func hashBatch(pages []page, _ int, sc *batchScratch) {
	if sc.zero == nil {
		z := snp.ZeroPageDigest()
		sc.zero = &z
	}
	sc.data, sc.idx = sc.data[:0], sc.idx[:0]
	for i := range pages {
		pg := &pages[i]
		switch {
		case pg.kind == kindNormal && pg.data == nil:
			pg.digest = *sc.zero
		case pg.kind == kindNormal || pg.kind == kindVMSA:
			sc.data, sc.idx = append(sc.data, pg.data), append(sc.idx, i)
		}
	}
	pagehash.Sum384(sc.data, sc.sums[:len(sc.data)])
	for k, i := range sc.idx {
		pages[i].digest = sc.sums[k]
	}
}
