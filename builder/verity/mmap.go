package verity

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
)

// mapper maps job-sized regions of a data file, so workers hash the page
// cache directly: no read copy, no reader goroutine. Each region is unmapped
// right after hashing, so the resident set stays at one job per worker.
type mapper struct {
	f    *os.File
	base int64
}

func (m *mapper) mapRange(off int64, n int) ([]byte, error) {
	b, err := syscall.Mmap(int(m.f.Fd()), m.base+off, n, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mapping %s at offset %d: %w", m.f.Name(), m.base+off, err)
	}
	return b, nil
}

func (m *mapper) unmap(b []byte) { _ = syscall.Munmap(b) }

// FormatFile is Format for size bytes of the file f from offset off. When
// off is a multiple of the page size and the file can be memory-mapped, the
// data is hashed in place from the page cache (faster, less CPU); otherwise
// it is read as Format reads it. A file truncated while it is hashed gives
// an error, not a crash.
func FormatFile(ctx context.Context, f *os.File, off, size int64, hash io.WriterAt, p Params) (*Result, error) {
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && off+size > st.Size() {
		return nil, fmt.Errorf("%s: %d bytes from offset %d requested, the file has %d", f.Name(), size, off, st.Size())
	}
	m := &mapper{f: f, base: off}
	if off%int64(os.Getpagesize()) == 0 && size > 0 {
		if b, err := m.mapRange(0, os.Getpagesize()); err == nil {
			m.unmap(b)
			return runSource(ctx, nil, m, size, hash, p, 0)
		}
	}
	return Format(ctx, io.NewSectionReader(f, off, size), size, hash, p)
}
