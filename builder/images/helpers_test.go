package images_test

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var epoch = time.Unix(1700000000, 0)

// entry is one tar member of a synthetic layer.
type entry struct {
	name     string
	typ      byte
	mode     int64
	uid, gid int
	body     string
	link     string
}

func tarBytes(t *testing.T, ents []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
			if typ == tar.TypeDir {
				mode = 0o755
			}
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Uid: e.uid, Gid: e.gid, Linkname: e.link,
			ModTime: epoch, Format: tar.FormatPAX}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeTar(t *testing.T, ents []entry) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(p, tarBytes(t, ents), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sampleRoot covers what unpacking must keep: owners, setuid, symlinks,
// hard links, nested directories.
var sampleRoot = []entry{
	{name: "bin/", typ: tar.TypeDir},
	{name: "bin/tool", body: "#!/bin/sh\necho tool\n", mode: 0o4755, uid: 0, gid: 0},
	{name: "bin/alias", typ: tar.TypeSymlink, link: "tool"},
	{name: "bin/abs", typ: tar.TypeSymlink, link: "/bin/tool"},
	{name: "etc/", typ: tar.TypeDir},
	{name: "etc/owned", body: "owned", uid: 1234, gid: 4321, mode: 0o2640},
	{name: "etc/hard", typ: tar.TypeLink, link: "etc/owned"},
	{name: "usr/share/doc/x/README", body: "deep"},
}

// layerImage builds an image whose layers are made from the given entries,
// compressed with comp.
func layerImage(t *testing.T, comp compression.Compression, layers ...[]entry) v1.Image {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for _, ents := range layers {
		b := tarBytes(t, ents)
		opts := []tarball.LayerOption{tarball.WithCompression(comp)}
		if comp == compression.ZStd {
			opts = append(opts, tarball.WithMediaType(types.OCILayerZStd))
		} else {
			opts = append(opts, tarball.WithMediaType(types.OCILayer))
		}
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, opts...)
		if err != nil {
			t.Fatal(err)
		}
		img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{Created: v1.Time{Time: epoch}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return img
}

func layerImageFrom(b testing.TB, l v1.Layer) v1.Image {
	b.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{Created: v1.Time{Time: epoch}}})
	if err != nil {
		b.Fatal(err)
	}
	return img
}

// reportMedian runs fn b.N times and reports the median wall time.
func reportMedian(b *testing.B, fn func() error) {
	b.Helper()
	var ds []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Milliseconds()), "median-ms")
}
