package igvm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestWireSizes(t *testing.T) {
	for _, c := range []struct {
		v    any
		size int
	}{
		{FixedHeader{}, 24}, {SupportedPlatform{}, 16}, {GuestPolicy{}, 16}, {PageData{}, 24},
		{ParameterArea{}, 16}, {ParameterUsage{}, 8}, {ParameterInsert{}, 16}, {VPContext{}, 20},
		{SNPIDBlock{}, 696},
	} {
		if got := binary.Size(c.v); got != c.size {
			t.Errorf("%T: size %d, want %d", c.v, got, c.size)
		}
	}
	p := PageData{GPA: 0x1122334455667788, CompatibilityMask: 1, FileOffset: 0xAABBCCDD, Flags: 4, DataType: 2, Reserved: 7}
	want, _ := binary.Append(nil, binary.LittleEndian, p)
	if got := appendPageData(nil, p); !bytes.Equal(got, want) {
		t.Fatalf("appendPageData %x, want %x", got, want)
	}
}

// sample builds a small file: platform, policy, two data pages, a zero page
// and a VP context.
func sample(t testing.TB) []byte {
	b := NewHeaderBuilder(8)
	b.Add(TypeSupportedPlatform, SupportedPlatform{CompatibilityMask: 1, PlatformType: PlatformSEVSNP, PlatformVersion: 1})
	b.Add(TypeGuestPolicy, GuestPolicy{Policy: 0x3001F, CompatibilityMask: 1})
	b.AddPageData(PageData{GPA: 0x1000, CompatibilityMask: 1}, true)
	b.AddPageData(PageData{GPA: 0x2000, CompatibilityMask: 1}, false)
	b.AddVPContext(VPContext{GPA: 0x3000, CompatibilityMask: 1})
	hdr, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	out := bytes.Clone(hdr)
	out = append(out, bytes.Repeat([]byte{0xAA}, PageSize)...)
	return append(out, bytes.Repeat([]byte{0xBB}, PageSize)...)
}

func TestRoundTrip(t *testing.T) {
	file := sample(t)
	f, err := Decode(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(f); err != nil {
		t.Fatal(err)
	}
	if len(f.Headers) != 5 {
		t.Fatalf("%d headers", len(f.Headers))
	}
	// VP_CONTEXT is 20 bytes, padded with "0000".
	vp := f.Headers[4]
	if len(vp.Body) != 20 || string(f.Raw[vp.Offset+28:vp.Offset+32]) != "0000" {
		t.Fatalf("VP_CONTEXT body %d bytes, padding %q", len(vp.Body), f.Raw[vp.Offset+28:vp.Offset+32])
	}
	p, _ := f.Headers[2].PageData()
	if int(p.FileOffset) != len(f.Raw) {
		t.Fatalf("first data at %#x, headers end %#x", p.FileOffset, len(f.Raw))
	}
	var v VPContext
	if err := vp.Unmarshal(&v); err != nil || int(v.FileOffset) != len(f.Raw)+PageSize {
		t.Fatalf("VP context %+v %v", v, err)
	}

	bad := bytes.Clone(file)
	bad[40] ^= 1
	f, err = Decode(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(f); !errors.Is(err, ErrChecksum) {
		t.Fatalf("flipped header byte: %v", err)
	}
	f, _ = Decode(file[:len(file)-1])
	if err := Validate(f); err == nil {
		t.Fatal("truncated file validated")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(sample(f))
	f.Add([]byte("IGVM"))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Decode(b)
		if err != nil {
			return
		}
		if len(file.Raw) > len(b) {
			t.Fatalf("allocated %d header bytes for a %d-byte input", len(file.Raw), len(b))
		}
		_ = Validate(file)
		for _, h := range file.Headers {
			_, _ = h.PageData()
			_ = h.Unmarshal(&SNPIDBlock{})
		}
	})
}
