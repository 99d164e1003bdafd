package verity

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// TestFormatFile: the mapped path and the read fallback (unaligned offset)
// give the same bytes as Format, for data at an offset inside a file.
func TestFormatFile(t *testing.T) {
	data := vectorData("tv3")[:3000*4096+2*4096] // several 1 MiB jobs and a partial one
	p := Params{Salt: testSalt(), NoSuperblock: true}
	want, wantHash := format(t, data, p, 2)
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, off := range []int64{0, 1 << 20, 512} {
		f.Truncate(0)
		f.WriteAt(bytes.Repeat([]byte{0xcc}, int(off)), 0)
		f.WriteAt(data, off)
		f.WriteAt([]byte("trailing"), off+int64(len(data)))
		var w memWriter
		got, err := FormatFile(context.Background(), f, off, int64(len(data)), &w, p)
		if err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		if !bytes.Equal(got.RootHash, want.RootHash) || !bytes.Equal(w.b, wantHash) {
			t.Errorf("offset %d: differs from Format", off)
		}
	}
	if _, err := FormatFile(context.Background(), f, 0, int64(len(data))+1<<20, &memWriter{}, p); err == nil || !strings.Contains(err.Error(), "the file has") {
		t.Errorf("size beyond the file: %v", err)
	}
}

// TestMappedTruncation: a mapped file shrinking under the hash workers is an
// error, not a crash.
func TestMappedTruncation(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(1 << 20)
	m := &mapper{f: f}
	b, err := m.mapRange(0, 1<<20)
	if err != nil {
		t.Skipf("mmap not available: %v", err)
	}
	defer m.unmap(b)
	f.Truncate(0)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	h, _ := newHashFunc("sha256")
	if _, err := hashBlocks(h(), nil, b, 4096, 32); err == nil || !strings.Contains(err.Error(), "data changed") {
		t.Errorf("truncated mapping: %v", err)
	}
}
