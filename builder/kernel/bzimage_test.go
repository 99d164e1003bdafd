package kernel

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// header builds a minimal bzImage: boot sector + setup header and payload.
func header(setupSects byte, xlf uint16, pref uint64, initSize uint32, payload []byte) []byte {
	b := make([]byte, max((int(setupSects)+1)*512, 0x270))
	b[offSetupSects] = setupSects
	copy(b[offHeaderMagic:], "HdrS")
	binary.LittleEndian.PutUint16(b[offXLoadFlags:], xlf)
	binary.LittleEndian.PutUint64(b[offPrefAddress:], pref)
	binary.LittleEndian.PutUint32(b[offInitSize:], initSize)
	return append(b, payload...)
}

func TestParse(t *testing.T) {
	b := header(3, 1, 0x1000000, 0x200000, []byte("payload"))
	k, err := Parse("k", b)
	if err != nil {
		t.Fatal(err)
	}
	if k.PayloadOffset != 2048 || string(k.Payload) != "payload" || k.VmlinuxSize() != 0x1000 {
		t.Fatalf("got offset %d payload %q size %#x", k.PayloadOffset, k.Payload, k.VmlinuxSize())
	}
	if k.Entry(true) != 0x1000200 || k.Entry(false) != 0x1000000 {
		t.Fatalf("entry %#x %#x", k.Entry(true), k.Entry(false))
	}
	if k.SetupHeader[offHeaderMagic-SetupHeaderOffset] != 'H' {
		t.Fatal("setup header not copied")
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"short", make([]byte, 100), "need at least"},
		{"magic", make([]byte, 1024), "want \"HdrS\""},
		{"no64", header(1, 0, 0x1000000, 0x1000, nil), "XLF_KERNEL_64"},
		{"low", header(1, 1, 0x300000, 0x1000, nil), "must be above"},
		{"unaligned", header(1, 1, 0x1000800, 0x1000, nil), "not 4 KiB aligned"},
		{"initsize", header(1, 1, 0x1000000, 0x1001, nil), "init_size"},
	} {
		_, err := Parse("file.bz", tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "file.bz") {
			t.Errorf("%s: err = %v, want mention of %q and the file", tc.name, err, tc.want)
		}
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Errorf("%s: not a FormatError: %v", tc.name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(header(3, 1, 0x1000000, 0x200000, []byte("payload")))
	f.Add(header(0, 1, 0x1000000, 0x200000, nil))
	f.Add([]byte("HdrS"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := Parse("fuzz", b)
		if err != nil {
			return
		}
		if k.PayloadOffset < int64(len(b)) && len(k.Payload) != len(b)-int(k.PayloadOffset) {
			t.Fatalf("payload length %d for file %d offset %d", len(k.Payload), len(b), k.PayloadOffset)
		}
		_ = k.VmlinuxSize()
	})
}
