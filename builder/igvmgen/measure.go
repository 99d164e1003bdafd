package igvmgen

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/uvmbuild/uvmbuild/builder/igvm"
	"github.com/uvmbuild/uvmbuild/builder/snp"
	"github.com/uvmbuild/uvmbuild/builder/snp/pagehash"
)

// step is one SNP_LAUNCH_UPDATE replayed from the directives.
type step struct {
	typ        snp.PageType
	gpa        uint64
	fileOffset int64 // of the page contents to hash; -1 for a zero page
	digest     snp.Digest
	hashed     bool // contents go into PAGE_INFO.CONTENTS
}

// MeasureResult is what Measure finds.
type MeasureResult struct {
	Digest snp.Digest
	// Pages is the number of measured PAGE_INFO steps.
	Pages int
	// IDBlockLD is the launch digest the file's SNP_ID_BLOCK claims, if any.
	IDBlockLD *snp.Digest
}

// Measure recomputes the SNP launch digest of an IGVM file by replaying its
// directives in file order, independently of Generate: PAGE_DATA of type
// NORMAL is a NORMAL page (the file page, or zeros without file data),
// SECRETS and CPUID_DATA are measured by type only, PARAMETER_INSERT is an
// UNMEASURED page and VP_CONTEXT a VMSA page. Pages flagged UNMEASURED
// count as UNMEASURED; GUEST_INVALID pages are not measured. The file is
// validated first (checksum, offsets, header order).
func Measure(ctx context.Context, r io.ReaderAt, size int64) (*MeasureResult, error) {
	f, err := igvm.Read(r, size)
	if err != nil {
		return nil, err
	}
	if err := igvm.Validate(f); err != nil {
		return nil, err
	}
	res := &MeasureResult{}
	var steps []step
	for _, h := range f.Headers {
		switch h.Type {
		case igvm.TypePageData:
			pd, err := h.PageData()
			if err != nil {
				return nil, err
			}
			if pd.Flags&igvm.FlagIs2MBPage != 0 {
				return nil, &igvm.FormatError{Offset: h.Offset, Msg: "2 MiB PAGE_DATA is not supported"}
			}
			if pd.Flags&igvm.FlagGuestInvalid != 0 {
				continue
			}
			s := step{gpa: pd.GPA, fileOffset: -1}
			switch {
			case pd.Flags&igvm.FlagUnmeasured != 0:
				s.typ = snp.PageUnmeasured
			case pd.DataType == igvm.DataSecrets:
				s.typ = snp.PageSecrets
			case pd.DataType == igvm.DataCPUID:
				s.typ = snp.PageCPUID
			case pd.DataType == igvm.DataNormal:
				s.typ, s.hashed = snp.PageNormal, true
				if pd.FileOffset != 0 {
					s.fileOffset = int64(pd.FileOffset)
				}
			default:
				return nil, &igvm.FormatError{Offset: h.Offset, Msg: fmt.Sprintf("PAGE_DATA data type %d unknown", pd.DataType)}
			}
			steps = append(steps, s)
		case igvm.TypeParameterInsert:
			var pi igvm.ParameterInsert
			if err := h.Unmarshal(&pi); err != nil {
				return nil, err
			}
			steps = append(steps, step{typ: snp.PageUnmeasured, gpa: pi.GPA, fileOffset: -1})
		case igvm.TypeVPContext:
			var vp igvm.VPContext
			if err := h.Unmarshal(&vp); err != nil {
				return nil, err
			}
			if vp.FileOffset == 0 {
				return nil, &igvm.FormatError{Offset: h.Offset, Msg: "VP_CONTEXT without VMSA data"}
			}
			steps = append(steps, step{typ: snp.PageVMSA, gpa: vp.GPA, fileOffset: int64(vp.FileOffset), hashed: true})
		case igvm.TypeSNPIDBlock:
			var ib igvm.SNPIDBlock
			if err := h.Unmarshal(&ib); err != nil {
				return nil, err
			}
			ld := snp.Digest(ib.LD)
			res.IDBlockLD = &ld
		}
	}
	if err := hashSteps(ctx, r, steps); err != nil {
		return nil, err
	}
	var c snp.Chain
	for i := range steps {
		s := &steps[i]
		if s.hashed {
			c.Add(s.typ, s.gpa, &s.digest)
		} else {
			c.Add(s.typ, s.gpa, nil)
		}
	}
	res.Digest = c.Digest()
	res.Pages = len(steps)
	return res, nil
}

// hashSteps reads and hashes the pages of the steps, in parallel.
func hashSteps(ctx context.Context, r io.ReaderAt, steps []step) error {
	zero := snp.ZeroPageDigest()
	const batch = 64
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, batch*pageSize)
			pgs, sums := make([][]byte, 0, batch), make([][pagehash.Size]byte, batch)
			for {
				start := int(next.Add(batch)) - batch
				if start >= len(steps) || ctx.Err() != nil {
					return
				}
				end := min(start+batch, len(steps))
				// Contiguous file pages are read with one ReadAt.
				for i := start; i < end; {
					s := &steps[i]
					if !s.hashed || s.fileOffset < 0 {
						s.digest = zero
						i++
						continue
					}
					j := i + 1
					for j < end && steps[j].hashed && steps[j].fileOffset == s.fileOffset+int64(j-i)*pageSize {
						j++
					}
					b := buf[:(j-i)*pageSize]
					if _, err := r.ReadAt(b, s.fileOffset); err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = fmt.Errorf("reading page data at offset %#x: %w", s.fileOffset, err)
						}
						mu.Unlock()
						return
					}
					pgs := pgs[:0]
					for k := i; k < j; k++ {
						pgs = append(pgs, b[(k-i)*pageSize:(k-i+1)*pageSize])
					}
					pagehash.Sum384(pgs, sums[:len(pgs)])
					for k := i; k < j; k++ {
						steps[k].digest = sums[k-i]
					}
					i = j
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
