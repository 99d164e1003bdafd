package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"testing"
)

// FuzzNormalize: any input either fails or gives a tar that normalises to
// itself.
func FuzzNormalize(f *testing.F) {
	f.Add(mkTarF(f, messy()))
	f.Add(mkTarF(f, []ent{{name: "a", typ: tar.TypeLink, link: "b"}, {name: "b", typ: tar.TypeReg, body: "x"}}))
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		if _, err := Normalize(context.Background(), bytes.NewReader(in), &out, Options{SourceDateEpoch: sde}); err != nil {
			return
		}
		var again bytes.Buffer
		if _, err := Normalize(context.Background(), bytes.NewReader(out.Bytes()), &again, Options{SourceDateEpoch: sde}); err != nil {
			t.Fatalf("normalised output rejected: %v", err)
		}
		if !bytes.Equal(out.Bytes(), again.Bytes()) {
			t.Fatal("not idempotent")
		}
	})
}

func mkTarF(f *testing.F, ents []ent) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, PAXRecords: e.pax}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			f.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return b.Bytes()
}
