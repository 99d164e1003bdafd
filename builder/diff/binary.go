package diff

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
)

const (
	// chunkSize is how much of each side is read at once; memory use of a
	// binary comparison is two chunks whatever the file sizes.
	chunkSize = 1 << 20
	// blockSize is the granularity of reported ranges (the ext4 and
	// verity block size).
	blockSize = 4096
	// maxRanges bounds the number of differing ranges kept.
	maxRanges = 32
)

// byteRange is a half-open range [Off, Off+Len) of differing bytes,
// rounded to blocks.
type byteRange struct{ Off, Len int64 }

// streamStats summarises a streaming comparison.
type streamStats struct {
	SizeA, SizeB int64
	// First is the offset of the first differing byte in the common
	// prefix, -1 if the common prefix is equal.
	First int64
	// Bytes and Blocks count differing bytes and blocks in the common
	// prefix.
	Bytes, Blocks int64
	// Ranges are the first maxRanges differing block ranges; MoreRanges
	// counts the rest.
	Ranges     []byteRange
	MoreRanges int
}

// compareStreams reads a and b to their ends in lockstep with two fixed
// buffers and records where they differ.
func compareStreams(ctx context.Context, a, b io.Reader) (streamStats, error) {
	st := streamStats{First: -1}
	bufA := make([]byte, chunkSize)
	bufB := make([]byte, chunkSize)
	var off int64
	doneA, doneB := false, false
	for !doneA || !doneB {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		na, errA := readChunk(a, bufA, &doneA)
		if errA != nil {
			return st, fmt.Errorf("reading first input at offset %d: %w", st.SizeA, errA)
		}
		nb, errB := readChunk(b, bufB, &doneB)
		if errB != nil {
			return st, fmt.Errorf("reading second input at offset %d: %w", st.SizeB, errB)
		}
		st.SizeA += int64(na)
		st.SizeB += int64(nb)
		n := min(na, nb)
		if !bytes.Equal(bufA[:n], bufB[:n]) {
			st.scan(off, bufA[:n], bufB[:n])
		}
		off += int64(n)
		if na != nb {
			// The shorter side ended: keep reading the longer one only
			// for its size.
			rest := a
			restBuf, done := bufA, &doneA
			if nb > na {
				rest, restBuf, done = b, bufB, &doneB
			}
			for !*done {
				m, err := readChunk(rest, restBuf, done)
				if err != nil {
					return st, err
				}
				if rest == a {
					st.SizeA += int64(m)
				} else {
					st.SizeB += int64(m)
				}
			}
		}
	}
	return st, nil
}

func readChunk(r io.Reader, buf []byte, done *bool) (int, error) {
	if *done {
		return 0, nil
	}
	n, err := io.ReadFull(r, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		*done = true
		return n, nil
	}
	return n, err
}

// scan records the differing blocks of two equal-length chunks at off.
func (st *streamStats) scan(off int64, a, b []byte) {
	for i := 0; i < len(a); i += blockSize {
		j := min(i+blockSize, len(a))
		if bytes.Equal(a[i:j], b[i:j]) {
			continue
		}
		st.Blocks++
		for k := i; k < j; k++ {
			if a[k] != b[k] {
				if st.First < 0 {
					st.First = off + int64(k)
				}
				st.Bytes++
			}
		}
		st.addRange(off+int64(i), int64(j-i))
	}
}

func (st *streamStats) addRange(off, n int64) {
	if l := len(st.Ranges); l > 0 && st.Ranges[l-1].Off+st.Ranges[l-1].Len == off {
		st.Ranges[l-1].Len += n
		return
	}
	if len(st.Ranges) >= maxRanges {
		st.MoreRanges++
		return
	}
	st.Ranges = append(st.Ranges, byteRange{off, n})
}

// binaryItems turns stream statistics into report items; ra and rb, when
// not nil, provide the hexdump context around the first difference.
func binaryItems(st streamStats, ra, rb io.ReaderAt, name func(byteRange) string) []Item {
	var items []Item
	if st.SizeA != st.SizeB {
		items = append(items, Item{Where: "size", A: fmt.Sprintf("%d bytes", st.SizeA), B: fmt.Sprintf("%d bytes", st.SizeB)})
	}
	if st.First < 0 {
		if st.SizeA != st.SizeB {
			items = append(items, Item{Where: fmt.Sprintf("the common first %d bytes are identical", min(st.SizeA, st.SizeB))})
		}
		return items
	}
	it := Item{Where: fmt.Sprintf("first difference at offset %d (0x%x); %d byte(s) differ in %d block(s) of %d",
		st.First, st.First, st.Bytes, st.Blocks, blockSize)}
	if ra != nil && rb != nil {
		it.Detail = hexContext(ra, rb, st.First, min(st.SizeA, st.SizeB))
	}
	items = append(items, it)
	var rs []string
	for _, r := range st.Ranges {
		s := fmt.Sprintf("0x%x-0x%x", r.Off, r.Off+r.Len-1)
		if name != nil {
			if n := name(r); n != "" {
				s += " " + n
			}
		}
		rs = append(rs, s)
	}
	if st.MoreRanges > 0 {
		rs = append(rs, fmt.Sprintf("... %d more range(s)", st.MoreRanges))
	}
	items = append(items, Item{Where: "differing ranges (4 KiB blocks)", Detail: strings.Join(rs, "\n")})
	return items
}

// hexContext dumps both sides from two lines before to three lines after
// the line holding off.
func hexContext(ra, rb io.ReaderAt, off, size int64) string {
	start := max(off&^15-32, 0)
	end := min(off&^15+48, size)
	a := make([]byte, end-start)
	b := make([]byte, end-start)
	if _, err := ra.ReadAt(a, start); err != nil && err != io.EOF {
		return ""
	}
	if _, err := rb.ReadAt(b, start); err != nil && err != io.EOF {
		return ""
	}
	var sb strings.Builder
	for i := 0; i < len(a); i += 16 {
		j := min(i+16, len(a))
		mark := " "
		if !bytes.Equal(a[i:j], b[i:j]) {
			mark = "!"
		}
		fmt.Fprintf(&sb, "%s - %08x  %s\n", mark, start+int64(i), hexLine(a[i:j]))
		fmt.Fprintf(&sb, "%s + %08x  %s\n", mark, start+int64(i), hexLine(b[i:j]))
	}
	return sb.String()
}

func hexLine(p []byte) string {
	var sb strings.Builder
	for i := 0; i < 16; i++ {
		if i < len(p) {
			fmt.Fprintf(&sb, "%02x ", p[i])
		} else {
			sb.WriteString("   ")
		}
		if i == 7 {
			sb.WriteByte(' ')
		}
	}
	sb.WriteString(" |")
	for _, c := range p {
		if c < 0x20 || c > 0x7e {
			c = '.'
		}
		sb.WriteByte(c)
	}
	sb.WriteByte('|')
	return sb.String()
}
