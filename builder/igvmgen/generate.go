package igvmgen

import (
	"bytes"
	"context"
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
	j, err := prepare(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := forEachBatch(ctx, j.pages, hashBatch); err != nil {
		return nil, err
	}
	return j.finish()
}

// GenerateFile is Generate followed by Image.WriteFile(path), except that
// the data section (mostly the kernel) is written while the pages are being
// hashed: the header section's size is known before the digest is.
func GenerateFile(ctx context.Context, p Params, path string) (*Image, error) {
	j, err := prepare(ctx, p)
	if err != nil {
		return nil, err
	}
	var im *Image
	err = atomicfile.Write(path, 0o644, func(f *os.File) error {
		done := make(chan error, 1)
		go func() {
			off := j.headerLen
			for _, c := range j.chunks {
				if _, err := f.WriteAt(c, off); err != nil {
					done <- err
					return
				}
				off += int64(len(c))
			}
			done <- nil
		}()
		herr := forEachBatch(ctx, j.pages, hashBatch)
		if err := <-done; err != nil {
			return err
		}
		if herr != nil {
			return herr
		}
		if im, err = j.finish(); err != nil {
			return err
		}
		_, err = f.WriteAt(im.Header, 0)
		return err
	}, atomicfile.NoSync())
	if err != nil {
		return nil, err
	}
	return im, nil
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
	for i := range j.pages {
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

// finish folds the PAGE_INFO chain, signs the ID block and completes the
// header section. The pages must be hashed.
func (j *job) finish() (*Image, error) {
	var chain snp.Chain
	for i := range j.pages {
		pg := &j.pages[i]
		switch pg.kind {
		case kindNormal:
			chain.Add(snp.PageNormal, pg.gpa, &pg.digest)
		case kindCPUID:
			chain.Add(snp.PageCPUID, pg.gpa, nil)
		case kindSecrets:
			chain.Add(snp.PageSecrets, pg.gpa, nil)
		case kindParam:
			chain.Add(snp.PageUnmeasured, pg.gpa, nil)
		case kindVMSA:
			chain.Add(snp.PageVMSA, pg.gpa, &pg.digest)
		}
	}
	im := &Image{Digest: chain.Digest(), chunks: j.chunks}
	key := j.p.IDKey
	if key == nil {
		var err error
		if key, err = snp.DefaultKey(); err != nil {
			return nil, err
		}
	}
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

// forEachBatch runs f over batches of consecutive pages on all cores.
func forEachBatch(ctx context.Context, pages []page, f func(pages []page, offset int, scratch *batchScratch)) error {
	var next atomic.Int64
	var wg sync.WaitGroup
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
				f(pages[start:min(start+batchSize, len(pages))], start, &sc)
			}
		}()
	}
	wg.Wait()
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
func zeroBatch(pages []page, _ int, _ *batchScratch) {
	var zeroPage [pageSize]byte
	for i := range pages {
		pg := &pages[i]
		if pg.kind == kindNormal && pg.data != nil && bytes.Equal(pg.data, zeroPage[:]) {
			pg.data = nil
		}
	}
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
