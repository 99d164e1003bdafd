package images

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/lockfile"
)

// Source says where an image comes from. Exactly one of Layout, Tarball and
// Ref is set.
type Source struct {
	// Name is the image's entry in uvmbuild.lock (e.g. "busybox"); required
	// when the digest is not pinned here.
	Name string
	// Layout is an OCI image layout directory. With several images in its
	// index, Tag selects one by its org.opencontainers.image.ref.name
	// annotation (or Digest pins it).
	Layout string
	// Tarball is a `docker save` tarball; Tag selects an image in it when
	// it holds several. Its digest is the one go-containerregistry computes
	// for the image it presents.
	Tarball string
	// Tag selects an image within Layout or Tarball.
	Tag string
	// Ref is a registry reference ("host/repo:tag" or "host/repo@sha256:…").
	Ref string
	// Digest pins the image's manifest digest. When empty, the digest comes
	// from Ref's @digest, else from the lock, else it is resolved once and
	// recorded in the lock.
	Digest digest.Digest
	// Insecure allows plain-HTTP registries (tests, local mirrors).
	Insecure bool
}

func (s Source) String() string {
	switch {
	case s.Layout != "":
		return "layout " + s.Layout
	case s.Tarball != "":
		return "tarball " + s.Tarball
	case s.Ref != "":
		return "image " + s.Ref
	}
	return "image " + s.Digest.String()
}

// ErrUnknownImage is returned when an image is neither in the store nor
// obtainable from the given source.
var ErrUnknownImage = errors.New("unknown image")

// Store keeps imported images and their unpacked roots under Dir.
type Store struct {
	// Dir is the cache directory (the build's cache dir); created on demand.
	Dir string
	// Lock records and checks resolved digests; may be nil when every
	// source is pinned by digest.
	Lock *lockfile.File
	// Platform picks the image from a registry index; linux/amd64 if nil.
	Platform *v1.Platform
}

func (s *Store) dir(elem ...string) string {
	return filepath.Join(append([]string{s.Dir, "images"}, elem...)...)
}

func (s *Store) platform() v1.Platform {
	if s.Platform != nil {
		return *s.Platform
	}
	return v1.Platform{OS: "linux", Architecture: "amd64"}
}

// Resolve returns the manifest digest src pins (see Source.Digest),
// consulting and updating the lock.
func (s *Store) Resolve(ctx context.Context, src Source) (digest.Digest, error) {
	if err := src.validate(); err != nil {
		return "", err
	}
	want := src.Digest
	if want == "" && src.Ref != "" {
		if d, ok := refDigest(src.Ref); ok {
			want = d
		}
	}
	if want != "" {
		if src.Name != "" && s.Lock != nil {
			if err := s.Lock.Record(src.Name, lockfile.Entry{Ref: src.ref(), Digest: want}); err != nil {
				return "", err
			}
		}
		return want, nil
	}
	if src.Name == "" {
		return "", fmt.Errorf("%s: neither a digest nor a lock entry name: pin the digest or give the source a Name", src)
	}
	var locked lockfile.Entry
	var ok bool
	if s.Lock != nil {
		var err error
		if locked, ok, err = s.Lock.Lookup(src.Name); err != nil {
			return "", err
		}
	}
	if ok && src.Ref != "" {
		if locked.Ref != "" && locked.Ref != src.Ref {
			// The recipe now names another image: a deliberate change the
			// lock must be told about, never silently papered over.
			return "", fmt.Errorf("%s: entry %q was resolved from %q, not %q: re-pin it (uvmbuild lock pull --update %s %s)",
				s.Lock.Path(), src.Name, locked.Ref, src.Ref, src.Name, src.Ref)
		}
		// A tag is not re-resolved: the lock is the pin, and the image is
		// pulled by the locked digest.
		return locked.Digest, nil
	}
	img, err := s.open(ctx, src, "")
	if err != nil {
		return "", err
	}
	h, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("%s: %w", src, err)
	}
	got := digest.Digest(h.String())
	if s.Lock == nil {
		return got, nil
	}
	if err := s.Lock.Record(src.Name, lockfile.Entry{Ref: src.ref(), Digest: got}); err != nil {
		return "", err
	}
	return got, nil
}

func (s Source) ref() string {
	switch {
	case s.Ref != "":
		return s.Ref
	case s.Tag != "":
		return s.Tag
	}
	return ""
}

func (s Source) validate() error {
	n := 0
	for _, v := range []string{s.Layout, s.Tarball, s.Ref} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("image source %q: set only one of Layout, Tarball and Ref", s.Name)
	}
	if s.Digest != "" {
		if err := s.Digest.Validate(); err != nil {
			return fmt.Errorf("image source %s: digest: %w", s, err)
		}
	}
	return nil
}

func refDigest(ref string) (digest.Digest, bool) {
	i := strings.LastIndex(ref, "@")
	if i < 0 {
		return "", false
	}
	d := digest.Digest(ref[i+1:])
	return d, d.Validate() == nil
}

// open returns the image of src, selected by want when set.
func (s *Store) open(ctx context.Context, src Source, want digest.Digest) (v1.Image, error) {
	switch {
	case src.Layout != "":
		return openLayout(src.Layout, src.Tag, want)
	case src.Tarball != "":
		var tag *name.Tag
		if src.Tag != "" {
			t, err := name.NewTag(src.Tag)
			if err != nil {
				return nil, fmt.Errorf("tarball %s: tag %q: %w", src.Tarball, src.Tag, err)
			}
			tag = &t
		}
		img, err := tarball.ImageFromPath(src.Tarball, tag)
		if err != nil {
			return nil, fmt.Errorf("tarball %s: %w", src.Tarball, err)
		}
		return img, nil
	case src.Ref != "":
		r := src.Ref
		if want != "" {
			// Pull by the pinned digest, never by a tag that may have moved.
			if i := strings.LastIndex(r, "@"); i >= 0 {
				r = r[:i]
			}
			if t, err := name.NewTag(r, nameOpts(src)...); err == nil {
				r = t.Context().Name()
			}
			r += "@" + want.String()
		}
		ref, err := name.ParseReference(r, nameOpts(src)...)
		if err != nil {
			return nil, fmt.Errorf("image reference %q: %w", src.Ref, err)
		}
		img, err := remote.Image(ref, remote.WithContext(ctx), remote.WithPlatform(s.platform()))
		if err != nil {
			return nil, fmt.Errorf("pulling %s: %w", r, err)
		}
		return img, nil
	}
	return nil, fmt.Errorf("%w %s: not in the image store and no source to get it from", ErrUnknownImage, want)
}

func nameOpts(src Source) []name.Option {
	if src.Insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// openLayout picks one image of an OCI layout: by digest, by ref name, or
// the only one.
func openLayout(dir, tag string, want digest.Digest) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: index.json: %w", dir, err)
	}
	var found []v1.Descriptor
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			continue
		}
		switch {
		case want != "" && d.Digest.String() != want.String():
		case tag != "" && d.Annotations["org.opencontainers.image.ref.name"] != tag:
		default:
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 0 && want != "":
		return nil, fmt.Errorf("OCI layout %s: %w %s (not in index.json)", dir, ErrUnknownImage, want)
	case len(found) == 0:
		return nil, fmt.Errorf("OCI layout %s: %w: no image%s in index.json", dir, ErrUnknownImage, forTag(tag))
	case len(found) > 1 && found[0].Digest != found[len(found)-1].Digest:
		return nil, fmt.Errorf("OCI layout %s: %d images%s; pin one by digest or tag", dir, len(found), forTag(tag))
	}
	img, err := p.Image(found[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: image %s: %w", dir, found[0].Digest, err)
	}
	return img, nil
}

func forTag(tag string) string {
	if tag == "" {
		return ""
	}
	return fmt.Sprintf(" tagged %q", tag)
}

// Image returns the image want, importing it from src into the store first
// if needed. The returned image reads from the store; it has been verified
// at import.
func (s *Store) Image(ctx context.Context, src Source, want digest.Digest) (v1.Image, error) {
	if err := want.Validate(); err != nil {
		return nil, fmt.Errorf("image digest %q: %w", want, err)
	}
	dir := s.dir("oci", want.Encoded())
	if img, err := openLayout(dir, "", want); err == nil {
		return img, nil
	}
	img, err := s.open(ctx, src, want)
	if err != nil {
		return nil, err
	}
	if err := s.importImage(ctx, img, want, dir); err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	return openLayout(dir, "", want)
}

// importImage copies img into the store layout dir, verifying everything,
// and renames it into place.
func (s *Store) importImage(ctx context.Context, img v1.Image, want digest.Digest, dir string) error {
	h, err := img.Digest()
	if err != nil {
		return err
	}
	if h.String() != want.String() {
		return &DigestError{What: "image manifest", Want: want, Got: digest.Digest(h.String())}
	}
	tmp, err := s.tempDir("import-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fmt.Errorf("writing image store: %w", err)
	}
	if err := p.AppendImage(img); err != nil {
		return fmt.Errorf("copying image %s: %w", want, err)
	}
	local, err := p.Image(h)
	if err != nil {
		return fmt.Errorf("reading back image %s: %w", want, err)
	}
	if err := Verify(ctx, local); err != nil {
		return err
	}
	return s.place(tmp, dir)
}

// place renames a completed work directory to dst; if another process got
// there first, its copy is kept.
func (s *Store) place(tmp, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		if _, serr := os.Stat(dst); serr == nil {
			return nil
		}
		return fmt.Errorf("image store: %w", err)
	}
	return nil
}

func (s *Store) tempDir(prefix string) (string, error) {
	base := s.dir("tmp")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("image store: %w", err)
	}
	d, err := os.MkdirTemp(base, prefix)
	if err != nil {
		return "", fmt.Errorf("image store: %w", err)
	}
	return d, nil
}

// Rootfs returns the unpacked root of image want (imported from src if
// needed), unpacking it once.
func (s *Store) Rootfs(ctx context.Context, src Source, want digest.Digest) (string, error) {
	dst := s.dir("rootfs", want.Encoded())
	if err := want.Validate(); err != nil {
		return "", fmt.Errorf("image digest %q: %w", want, err)
	}
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	img, err := s.Image(ctx, src, want)
	if err != nil {
		return "", err
	}
	return s.unpackTo(ctx, img, dst)
}

// RootfsFromLayout unpacks the image of an OCI layout directory (e.g. an
// upstream step's output), cached by its digest, and returns the root and
// the digest. The layout must hold exactly one image unless want pins it.
func (s *Store) RootfsFromLayout(ctx context.Context, dir string, want digest.Digest) (string, digest.Digest, error) {
	img, err := openLayout(dir, "", want)
	if err != nil {
		return "", "", err
	}
	h, err := img.Digest()
	if err != nil {
		return "", "", fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	d := digest.Digest(h.String())
	if want != "" && d != want {
		return "", "", fmt.Errorf("OCI layout %s: %w", dir, &DigestError{What: "image manifest", Want: want, Got: d})
	}
	dst := s.dir("rootfs", d.Encoded())
	if _, err := os.Stat(dst); err == nil {
		return dst, d, nil
	}
	root, err := s.unpackTo(ctx, img, dst)
	if err != nil {
		return "", "", fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	return root, d, nil
}

func (s *Store) unpackTo(ctx context.Context, img v1.Image, dst string) (string, error) {
	tmp, err := s.tempDir("rootfs-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	// Blobs are re-checked on every unpack: the store's layout may have
	// been damaged since import.
	root := filepath.Join(tmp, "root")
	if err := unpackVerified(ctx, img, root); err != nil {
		return "", err
	}
	if err := s.place(root, dst); err != nil {
		return "", err
	}
	return dst, nil
}
