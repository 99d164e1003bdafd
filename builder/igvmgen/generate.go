package igvmgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

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
	return WriteFileAtomic(path, func(w io.Writer) error { _, err := im.WriteTo(w); return err })
}

// WriteFileAtomic creates path with the bytes write produces, through a
// temporary file in the same directory and a rename, so a failure never
// leaves a partial file at path. The file mode is 0644. No fsync (see
// Image.WriteFile).
func WriteFileAtomic(path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = write(f); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
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
	pages := enumerate(l)
	if err := hashPages(ctx, pages); err != nil {
		return nil, err
	}

	hb := igvm.NewHeaderBuilder(len(pages) + 8)
	hb.Add(igvm.TypeSupportedPlatform, igvm.SupportedPlatform{
		CompatibilityMask: 1, HighestVTL: p.VTL, PlatformType: igvm.PlatformSEVSNP, PlatformVersion: 1})
	hb.Add(igvm.TypeGuestPolicy, igvm.GuestPolicy{Policy: snp.DefaultPolicy, CompatibilityMask: 1})
	var chain snp.Chain
	im := &Image{}
	lastRegion, lastEnd := -1, uint64(0)
	addData := func(pg *page) {
		// Consecutive pages of one region are written as one chunk.
		if n := len(im.chunks); n > 0 && pg.region >= 0 && pg.region == lastRegion && pg.off == lastEnd {
			d := l.regions[pg.region].data
			start := pg.off - uint64(len(im.chunks[n-1]))
			im.chunks[n-1] = d[start : pg.off+pageSize]
		} else {
			im.chunks = append(im.chunks, pg.data)
		}
		lastRegion, lastEnd = pg.region, pg.off+pageSize
	}
	for i := range pages {
		pg := &pages[i]
		switch pg.kind {
		case kindNormal:
			hb.AddPageData(igvm.PageData{GPA: pg.gpa, CompatibilityMask: 1}, pg.data != nil)
			if pg.data != nil {
				addData(pg)
			}
			chain.Add(snp.PageNormal, pg.gpa, &pg.digest)
		case kindCPUID:
			hb.AddPageData(igvm.PageData{GPA: pg.gpa, CompatibilityMask: 1, DataType: igvm.DataCPUID}, true)
			addData(pg)
			chain.Add(snp.PageCPUID, pg.gpa, nil)
		case kindSecrets:
			hb.AddPageData(igvm.PageData{GPA: pg.gpa, CompatibilityMask: 1, DataType: igvm.DataSecrets}, false)
			chain.Add(snp.PageSecrets, pg.gpa, nil)
		case kindParam:
			hb.Add(igvm.TypeParameterArea, igvm.ParameterArea{NumberOfBytes: pageSize})
			hb.Add(igvm.TypeVPCountParameter, igvm.ParameterUsage{})
			hb.Add(igvm.TypeMemoryMap, igvm.ParameterUsage{ByteOffset: 24})
			hb.Add(igvm.TypeParameterInsert, igvm.ParameterInsert{GPA: pg.gpa, CompatibilityMask: 1})
			chain.Add(snp.PageUnmeasured, pg.gpa, nil)
		case kindVMSA:
			hb.AddVPContext(igvm.VPContext{GPA: pg.gpa, CompatibilityMask: 1})
			addData(pg)
			chain.Add(snp.PageVMSA, pg.gpa, &pg.digest)
		}
	}
	im.Digest = chain.Digest()

	key := p.IDKey
	if key == nil {
		if key, err = snp.DefaultKey(); err != nil {
			return nil, err
		}
	}
	blk := snp.DefaultIDBlock(im.Digest)
	sig, err := snp.Sign(key, blk)
	if err != nil {
		return nil, err
	}
	hb.Add(igvm.TypeSNPIDBlock, idBlockHeader(blk, sig))
	if im.Header, err = hb.Finish(); err != nil {
		return nil, err
	}
	im.size = int64(len(im.Header)) + int64(hb.DataPages())*pageSize
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

// hashPages finds zero pages and hashes the others, in parallel (and 8
// pages per core at once where AVX-512 allows, see snp/pagehash).
func hashPages(ctx context.Context, pages []page) error {
	zero := snp.ZeroPageDigest()
	var zeroPage [pageSize]byte
	const batch = 64
	var next atomic.Int64
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data, idx, sums := make([][]byte, 0, batch), make([]int, 0, batch), make([][pagehash.Size]byte, batch)
			for {
				start := int(next.Add(batch)) - batch
				if start >= len(pages) || ctx.Err() != nil {
					return
				}
				data, idx = data[:0], idx[:0]
				for i := start; i < min(start+batch, len(pages)); i++ {
					pg := &pages[i]
					switch pg.kind {
					case kindNormal:
						if pg.data == nil || bytes.Equal(pg.data, zeroPage[:]) {
							pg.data = nil
							pg.digest = zero
							continue
						}
						data, idx = append(data, pg.data), append(idx, i)
					case kindVMSA:
						data, idx = append(data, pg.data), append(idx, i)
					}
				}
				pagehash.Sum384(data, sums[:len(data)])
				for k, i := range idx {
					pages[i].digest = sums[k]
				}
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}
