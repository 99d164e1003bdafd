package images

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
)

// ImageConfig is what WriteLayout puts in the image config.
type ImageConfig struct {
	// Created is the image creation time (SOURCE_DATE_EPOCH).
	Created time.Time
	// Env is the image's default environment ("K=V"); informational, the
	// sandbox sets the environment itself.
	Env []string
	// RefName annotates the image in index.json
	// (org.opencontainers.image.ref.name); optional.
	RefName string
}

// WriteLayout writes a one-layer OCI image layout to dir (created; it must
// not exist) whose layer is the tar file at tarPath, stored uncompressed so
// that the digest depends on nothing but the tar's bytes and cfg (no
// compressor version). It returns the image's manifest digest.
func WriteLayout(dir, tarPath string, cfg ImageConfig) (digest.Digest, error) {
	l, err := tarLayer(tarPath)
	if err != nil {
		return "", err
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	created := v1.Time{Time: cfg.Created.UTC()}
	img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{Created: created, CreatedBy: "uvmbuild"}})
	if err != nil {
		return "", fmt.Errorf("image from %s: %w", tarPath, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	cf = cf.DeepCopy()
	cf.Created = created
	cf.Architecture = "amd64"
	cf.OS = "linux"
	cf.Config.Env = cfg.Env
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(dir); err == nil {
		return "", fmt.Errorf("OCI layout %s: already exists", dir)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	var opts []layout.Option
	if cfg.RefName != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": cfg.RefName}))
	}
	if err := p.AppendImage(img, opts...); err != nil {
		return "", fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	h, err := img.Digest()
	if err != nil {
		return "", err
	}
	return digest.Digest(h.String()), nil
}

// fileLayer is an uncompressed layer backed by a file. ggcr's
// tarball.LayerFromFile would gzip it (even when asked for no compression),
// so the layer is implemented directly: digest = diffID = sha256 of the
// file.
type fileLayer struct {
	path string
	hash v1.Hash
	size int64
}

func tarLayer(p string) (*fileLayer, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("layer tar: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, fmt.Errorf("layer tar %s: %w", p, err)
	}
	return &fileLayer{path: p, size: n, hash: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}}, nil
}

func (l *fileLayer) Digest() (v1.Hash, error)             { return l.hash, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)             { return l.hash, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return os.Open(l.path) }
func (l *fileLayer) Size() (int64, error)                 { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return types.OCIUncompressedLayer, nil }

var _ v1.Layer = (*fileLayer)(nil)
