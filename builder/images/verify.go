package images

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// DigestError is content whose digest is not the one that names it.
type DigestError struct {
	What      string // e.g. "layer 2 (compressed)"
	Want, Got digest.Digest
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("%s: digest mismatch: want %s, got %s (tampered or corrupt)", e.What, e.Want, e.Got)
}

// UnsafeEntryError is a layer entry that would land outside the root.
type UnsafeEntryError struct {
	Layer  int
	Name   string
	Reason string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("layer %d: entry %q: %s", e.Layer, e.Name, e.Reason)
}

// Verify re-hashes every blob of img: the manifest against its digest, the
// config against the manifest, each layer's compressed bytes against its
// digest and its uncompressed bytes against the config's diffIDs. It also
// checks every tar header of every layer (checkEntry).
func Verify(ctx context.Context, img v1.Image) error {
	m, cfg, layers, err := verifyMeta(img)
	if err != nil {
		return err
	}
	// Symlinks defined so far, bottom layer first: an entry below one of
	// them would be written through the link.
	links := map[string]bool{}
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		check := func(r io.Reader) error { return checkTar(i, r, links) }
		if err := verifyLayer(i, l, m.Layers[i], cfg.RootFS.DiffIDs[i], check); err != nil {
			return err
		}
	}
	return nil
}

// verifyMeta checks the manifest and config digests and returns the
// parsed manifest, config and layers.
func verifyMeta(img v1.Image) (*v1.Manifest, *v1.ConfigFile, []v1.Layer, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading manifest: %w", err)
	}
	if h, err := img.Digest(); err != nil {
		return nil, nil, nil, err
	} else if got := digest.FromBytes(raw); got.String() != h.String() {
		return nil, nil, nil, &DigestError{What: "manifest", Want: digest.Digest(h.String()), Got: got}
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("parsing manifest: %w", err)
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading config: %w", err)
	}
	if got := digest.FromBytes(rawCfg); got.String() != m.Config.Digest.String() {
		return nil, nil, nil, &DigestError{What: "config", Want: digest.Digest(m.Config.Digest.String()), Got: got}
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("parsing config: %w", err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, nil, nil, fmt.Errorf("config lists %d diffIDs for %d layers", len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("listing layers: %w", err)
	}
	if len(layers) != len(m.Layers) {
		return nil, nil, nil, fmt.Errorf("image has %d layers, manifest lists %d", len(layers), len(m.Layers))
	}
	return m, cfg, layers, nil
}

// verifyLayer streams one layer through consume (which sees the
// uncompressed tar) while hashing the compressed and uncompressed bytes,
// then checks both digests and the size. A digest mismatch is reported in
// preference to consume's error: it explains a broken tar.
func verifyLayer(i int, l v1.Layer, desc v1.Descriptor, diffID v1.Hash, consume func(io.Reader) error) error {
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("layer %d (%s): %w", i, desc.Digest, err)
	}
	defer rc.Close()
	ch := sha256.New()
	cr := &countReader{r: io.TeeReader(rc, ch)}
	br := bufio.NewReaderSize(cr, 1<<20)
	plain, closeFn, err := decompress(br)
	if err != nil {
		return fmt.Errorf("layer %d (%s): %w", i, desc.Digest, err)
	}
	defer closeFn()
	var uh hash.Hash
	var ur io.Reader
	if plain == io.Reader(br) {
		// Uncompressed: the diffID is the digest; hash the bytes once.
		uh, ur = ch, plain
	} else {
		uh = sha256.New()
		ur = io.TeeReader(plain, uh)
	}
	tarErr := consume(ur)
	// Drain whatever follows the end-of-archive marker so both digests
	// cover every byte; a digest mismatch explains a broken tar better than
	// the tar error, so it is reported first.
	_, plainErr := io.Copy(io.Discard, ur)
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return fmt.Errorf("layer %d (%s): %w", i, desc.Digest, err)
	}
	if got := sum(ch); got.String() != desc.Digest.String() {
		return &DigestError{What: fmt.Sprintf("layer %d (compressed)", i), Want: digest.Digest(desc.Digest.String()), Got: got}
	}
	if tarErr != nil {
		return tarErr
	}
	if plainErr != nil {
		return fmt.Errorf("layer %d (%s): %w", i, desc.Digest, plainErr)
	}
	if cr.n != desc.Size {
		return fmt.Errorf("layer %d (%s): size %d, manifest says %d", i, desc.Digest, cr.n, desc.Size)
	}
	if got := sum(uh); got.String() != diffID.String() {
		return &DigestError{What: fmt.Sprintf("layer %d (uncompressed diffID)", i), Want: digest.Digest(diffID.String()), Got: got}
	}
	return nil
}

func sum(h hash.Hash) digest.Digest {
	return digest.NewDigest(digest.SHA256, h)
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// decompress detects gzip, zstd or a plain tar by its magic number.
func decompress(br *bufio.Reader) (io.Reader, func(), error) {
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, func() { zr.Close() }, nil
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd: %w", err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

// checkTar reads every header of a layer and refuses unsafe entries,
// including entries below a symlink defined in this or a lower layer.
func checkTar(layer int, r io.Reader, links map[string]bool) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("layer %d: reading tar: %w", layer, err)
		}
		if reason := checkEntry(hdr); reason != "" {
			return &UnsafeEntryError{Layer: layer, Name: hdr.Name, Reason: reason}
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		base := path.Base(name)
		if strings.HasPrefix(base, ".wh.") {
			// A whiteout removes the link (or anything) it names.
			delete(links, path.Join(path.Dir(name), strings.TrimPrefix(base, ".wh.")))
			continue
		}
		for p := path.Dir(name); p != "." && p != "/"; p = path.Dir(p) {
			if links[p] {
				return &UnsafeEntryError{Layer: layer, Name: hdr.Name, Reason: fmt.Sprintf("path goes through the symlink %q", p)}
			}
		}
		links[name] = hdr.Typeflag == tar.TypeSymlink
	}
}

// checkEntry returns why hdr is unsafe to unpack, or "".
func checkEntry(hdr *tar.Header) string {
	if escapes(hdr.Name) {
		return "path leaves the root"
	}
	switch hdr.Typeflag {
	case tar.TypeSymlink:
		if !path.IsAbs(hdr.Linkname) && escapes(path.Join(path.Dir(strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")), hdr.Linkname)) {
			return fmt.Sprintf("symlink target %q leaves the root", hdr.Linkname)
		}
	case tar.TypeLink:
		if escapes(hdr.Linkname) {
			return fmt.Sprintf("hard link target %q leaves the root", hdr.Linkname)
		}
	}
	return ""
}

// escapes reports whether a slash-separated relative name climbs above the
// root. A leading "/" is taken as the root itself.
func escapes(name string) bool {
	depth := 0
	for _, part := range strings.Split(name, "/") {
		switch part {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}
