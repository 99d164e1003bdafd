package images_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/images"
	"github.com/uvmbuild/uvmbuild/builder/lockfile"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("unpacking keeps owners (lchown); needs root")
	}
}

func newStore(t *testing.T) (*images.Store, string) {
	dir := t.TempDir()
	lock := filepath.Join(dir, lockfile.Name)
	return &images.Store{Dir: filepath.Join(dir, "cache"), Lock: lockfile.Open(lock)}, lock
}

// assertClean checks that the store holds no work directories and nothing
// under rootfs/ or oci/ except the allowed digests.
func assertClean(t *testing.T, s *images.Store, allowed ...digest.Digest) {
	t.Helper()
	tmp, _ := os.ReadDir(filepath.Join(s.Dir, "images", "tmp"))
	if len(tmp) != 0 {
		t.Errorf("work directories left in the store: %v", tmp)
	}
	ok := map[string]bool{}
	for _, d := range allowed {
		ok[d.Encoded()] = true
	}
	for _, sub := range []string{"rootfs", "oci"} {
		ents, _ := os.ReadDir(filepath.Join(s.Dir, "images", sub))
		for _, e := range ents {
			if !ok[e.Name()] {
				t.Errorf("unexpected %s/%s in the store", sub, e.Name())
			}
		}
	}
}

func TestWriteLayoutDeterministic(t *testing.T) {
	tarPath := writeTar(t, sampleRoot)
	var ds []digest.Digest
	for i := 0; i < 2; i++ {
		dir := filepath.Join(t.TempDir(), "image")
		d, err := images.WriteLayout(dir, tarPath, images.ImageConfig{Created: epoch, RefName: "sample"})
		if err != nil {
			t.Fatal(err)
		}
		p, _ := layout.FromPath(dir)
		img, err := p.Image(v1.Hash{Algorithm: "sha256", Hex: d.Encoded()})
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(img, validate.Fast); err != nil {
			t.Fatalf("invalid image: %v", err)
		}
		if err := images.Verify(context.Background(), img); err != nil {
			t.Fatalf("invalid image: %v", err)
		}
		cf, _ := img.ConfigFile()
		if !cf.Created.Time.Equal(epoch) {
			t.Errorf("created = %v", cf.Created)
		}
		ds = append(ds, d)
	}
	if ds[0] != ds[1] {
		t.Errorf("two layouts of one tar differ: %s %s", ds[0], ds[1])
	}
}

func TestLayoutResolveLockAndUnpack(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	s, lockPath := newStore(t)
	dir := filepath.Join(t.TempDir(), "image")
	want, err := images.WriteLayout(dir, writeTar(t, sampleRoot), images.ImageConfig{Created: epoch})
	if err != nil {
		t.Fatal(err)
	}
	src := images.Source{Name: "sample", Layout: dir}
	got, err := s.Resolve(ctx, src)
	if err != nil || got != want {
		t.Fatalf("Resolve = %s, %v; want %s", got, err, want)
	}
	l, _ := lockfile.Read(lockPath)
	if l.Entries["sample"].Digest != want {
		t.Errorf("lock entry = %+v", l.Entries["sample"])
	}
	root, err := s.Rootfs(ctx, src, want)
	if err != nil {
		t.Fatal(err)
	}
	checkSampleRoot(t, root)
	assertClean(t, s, want)

	// The layout changes under the same name: refused, naming both digests.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	other, err := images.WriteLayout(dir, writeTar(t, append(sampleRoot, entry{name: "new", body: "x"})), images.ImageConfig{Created: epoch})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Resolve(ctx, src)
	var me *lockfile.MismatchError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), want.String()) || !strings.Contains(err.Error(), other.String()) {
		t.Fatalf("Resolve after change: %v; want a lock mismatch naming %s and %s", err, want, other)
	}
}

func checkSampleRoot(t *testing.T, root string) {
	t.Helper()
	st := func(p string) (os.FileInfo, *syscall.Stat_t) {
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return fi, fi.Sys().(*syscall.Stat_t)
	}
	if fi, _ := st("bin/tool"); fi.Mode()&os.ModeSetuid == 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/tool mode %v, want setuid 0755", fi.Mode())
	}
	if fi, s := st("etc/owned"); s.Uid != 1234 || s.Gid != 4321 || fi.Mode()&os.ModeSetgid == 0 {
		t.Errorf("etc/owned %d:%d %v", s.Uid, s.Gid, fi.Mode())
	}
	_, a := st("etc/owned")
	_, b := st("etc/hard")
	if a.Ino != b.Ino {
		t.Error("etc/hard is not a hard link to etc/owned")
	}
	if l, _ := os.Readlink(filepath.Join(root, "bin/alias")); l != "tool" {
		t.Errorf("bin/alias -> %q", l)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "usr/share/doc/x/README")); string(b) != "deep" {
		t.Errorf("README = %q", b)
	}
	for _, m := range []string{"in", "out", "tmp", "proc", "sys", "dev"} {
		if fi, err := os.Stat(filepath.Join(root, m)); err != nil || !fi.IsDir() {
			t.Errorf("mount point /%s missing", m)
		}
	}
}

func TestGzipZstdAndWhiteouts(t *testing.T) {
	needRoot(t)
	for _, comp := range []compression.Compression{compression.GZip, compression.ZStd} {
		t.Run(string(comp), func(t *testing.T) {
			ctx := context.Background()
			s, _ := newStore(t)
			img := layerImage(t, comp, append(sampleRoot, entry{name: "etc/gone", body: "gone"}), []entry{
				{name: "etc/.wh.gone", body: ""},
				{name: "usr/share/doc/.wh..wh..opq", body: ""},
				{name: "usr/share/doc/y", body: "upper"},
			})
			dir := t.TempDir()
			p, _ := layout.Write(dir, empty.Index)
			if err := p.AppendImage(img); err != nil {
				t.Fatal(err)
			}
			root, d, err := s.RootfsFromLayout(ctx, dir, "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(filepath.Join(root, "etc/gone")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("whiteout not applied: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(root, "usr/share/doc/x")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("opaque whiteout not applied: %v", err)
			}
			if b, _ := os.ReadFile(filepath.Join(root, "usr/share/doc/y")); string(b) != "upper" {
				t.Errorf("upper file = %q", b)
			}
			if b, _ := os.ReadFile(filepath.Join(root, "etc/hard")); string(b) != "owned" {
				t.Errorf("hard link lost its content: %q", b)
			}
			assertClean(t, s, d)
		})
	}
}

// TestTamperedLayer flips one byte of a layer blob: import, layout unpack
// and store unpack all refuse it and leave nothing behind.
func TestTamperedLayer(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	for _, comp := range []compression.Compression{compression.None, compression.GZip} {
		t.Run(string(comp), func(t *testing.T) {
			s, _ := newStore(t)
			dir := filepath.Join(t.TempDir(), "image")
			var want digest.Digest
			var err error
			if comp == compression.None {
				want, err = images.WriteLayout(dir, writeTar(t, sampleRoot), images.ImageConfig{Created: epoch})
			} else {
				img := layerImage(t, comp, sampleRoot)
				p, _ := layout.Write(dir, empty.Index)
				err = p.AppendImage(img)
				h, _ := img.Digest()
				want = digest.Digest(h.String())
			}
			if err != nil {
				t.Fatal(err)
			}
			img, _ := func() (v1.Image, error) {
				p, _ := layout.FromPath(dir)
				return p.Image(v1.Hash{Algorithm: "sha256", Hex: want.Encoded()})
			}()
			m, _ := img.Manifest()
			blob := filepath.Join(dir, "blobs", "sha256", m.Layers[0].Digest.Hex)
			b, err := os.ReadFile(blob)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x20
			if err := os.WriteFile(blob, b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, err = s.RootfsFromLayout(ctx, dir, "")
			var de *images.DigestError
			if !errors.As(err, &de) || !strings.Contains(err.Error(), "layer 0") {
				t.Errorf("RootfsFromLayout: %v, want a layer digest error", err)
			}
			_, err = s.Rootfs(ctx, images.Source{Layout: dir}, want)
			if !errors.As(err, &de) {
				t.Errorf("Rootfs: %v, want a digest error", err)
			}
			assertClean(t, s)
		})
	}
}

func TestUnsafeEntriesRefused(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	cases := map[string][]entry{
		"dotdot":                   {{name: "../escape", body: "x"}},
		"nested dotdot":            {{name: "a/../../escape", body: "x"}},
		"symlink escapes":          {{name: "a/", typ: tar.TypeDir}, {name: "a/link", typ: tar.TypeSymlink, link: "../../etc/passwd"}},
		"hardlink out":             {{name: "h", typ: tar.TypeLink, link: "../../etc/passwd"}},
		"through symlink":          {{name: "etc", typ: tar.TypeSymlink, link: "/tmp/uvmbuild-unpack-victim"}, {name: "etc/passwd", body: "pwned"}},
		"through relative symlink": {{name: "a/", typ: tar.TypeDir}, {name: "a/up", typ: tar.TypeSymlink, link: ".."}, {name: "a/up/x", body: "x"}},
		"whiteout through symlink": {{name: "lib", typ: tar.TypeSymlink, link: "/tmp/uvmbuild-unpack-victim"}, {name: "lib/.wh.passwd", body: ""}},
	}
	for name, ents := range cases {
		t.Run(name, func(t *testing.T) {
			s, _ := newStore(t)
			dir := filepath.Join(t.TempDir(), "image")
			if _, err := images.WriteLayout(dir, writeTar(t, ents), images.ImageConfig{Created: epoch}); err != nil {
				t.Fatal(err)
			}
			_, _, err := s.RootfsFromLayout(ctx, dir, "")
			var ue *images.UnsafeEntryError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want UnsafeEntryError", err)
			}
			if _, err := os.Stat("/tmp/uvmbuild-unpack-victim/passwd"); err == nil {
				t.Error("wrote through a symlink outside the root")
			}
			assertClean(t, s)
		})
	}
}

// TestRegistryPullOnceThenOffline pulls from a registry started by the test,
// records the tag's digest, and builds again offline from the lock and the
// store.
func TestRegistryPullOnceThenOffline(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := fmt.Sprintf("%s/test/sample:1", host)
	push := func(img v1.Image) digest.Digest {
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r, img); err != nil {
			t.Fatal(err)
		}
		h, _ := img.Digest()
		return digest.Digest(h.String())
	}
	first := push(layerImage(t, compression.GZip, sampleRoot))

	s, lockPath := newStore(t)
	src := images.Source{Name: "sample", Ref: ref}
	d, err := s.Resolve(ctx, src)
	if err != nil || d != first {
		t.Fatalf("Resolve = %s, %v; want %s", d, err, first)
	}
	root, err := s.Rootfs(ctx, src, d)
	if err != nil {
		t.Fatal(err)
	}
	checkSampleRoot(t, root)

	// The tag moves: the lock keeps the build on the first image.
	push(layerImage(t, compression.GZip, append(sampleRoot, entry{name: "moved", body: "x"})))
	if d2, err := s.Resolve(ctx, src); err != nil || d2 != first {
		t.Errorf("Resolve after retag = %s, %v; want the locked %s", d2, err, first)
	}

	// Another reference under the same name: refused until re-pinned.
	if _, err := s.Resolve(ctx, images.Source{Name: "sample", Ref: ref + "-other"}); err == nil || !strings.Contains(err.Error(), "lock pull --update") {
		t.Errorf("changed reference: %v", err)
	}

	// Offline: registry gone, fresh rootfs cache, same store.
	srv.Close()
	os.RemoveAll(filepath.Join(s.Dir, "images", "rootfs"))
	if _, err := s.Rootfs(ctx, src, first); err != nil {
		t.Fatalf("offline build with lock and warm store: %v", err)
	}
	// A fresh store cannot get the image offline: a clear error, nothing stored.
	s2 := &images.Store{Dir: t.TempDir(), Lock: lockfile.Open(lockPath)}
	if _, err := s2.Rootfs(ctx, src, first); err == nil || !strings.Contains(err.Error(), "pulling") {
		t.Errorf("offline pull into an empty store: %v", err)
	}
	assertClean(t, s2)
}

func TestRegistryDigestMismatch(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	r, _ := name.ParseReference(host + "/test/sample:1")
	if err := remote.Write(r, layerImage(t, compression.GZip, sampleRoot)); err != nil {
		t.Fatal(err)
	}
	s, _ := newStore(t)
	bogus := digest.FromString("not this image")
	_, err := s.Image(ctx, images.Source{Ref: host + "/test/sample:1"}, bogus)
	if err == nil || !strings.Contains(err.Error(), bogus.String()) {
		t.Errorf("pull of a digest the registry does not have: %v", err)
	}
	assertClean(t, s)
}

func TestDockerSaveTarball(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	img := layerImage(t, compression.GZip, sampleRoot)
	tag, _ := name.NewTag("example.com/sample:1")
	p := filepath.Join(t.TempDir(), "sample.tar")
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		t.Fatal(err)
	}
	s, _ := newStore(t)
	src := images.Source{Name: "sample", Tarball: p}
	d, err := s.Resolve(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	root, err := s.Rootfs(ctx, src, d)
	if err != nil {
		t.Fatal(err)
	}
	checkSampleRoot(t, root)
}

func TestUnknownImage(t *testing.T) {
	s, _ := newStore(t)
	_, err := s.Rootfs(context.Background(), images.Source{}, digest.FromString("nothing"))
	if !errors.Is(err, images.ErrUnknownImage) {
		t.Errorf("err = %v, want ErrUnknownImage", err)
	}
	_, err = s.Resolve(context.Background(), images.Source{Layout: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "Name") {
		t.Errorf("unpinned source without a lock name: %v", err)
	}
	assertClean(t, s)
}

// TestUnpackTarRefusesSymlinkParents checks the unpacker's own guard,
// independent of Verify.
func TestUnpackTarRefusesSymlinkParents(t *testing.T) {
	needRoot(t)
	victim := t.TempDir()
	dir := t.TempDir()
	b := tarBytes(t, []entry{{name: "etc", typ: tar.TypeSymlink, link: victim}, {name: "etc/passwd", body: "pwned"}})
	err := images.UnpackTar(context.Background(), bytes.NewReader(b), dir)
	var ue *images.UnsafeEntryError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want UnsafeEntryError", err)
	}
	if _, err := os.Stat(filepath.Join(victim, "passwd")); err == nil {
		t.Error("wrote through the symlink")
	}
}

// TestLayerSemantics applies several layers the way a container runtime
// does.
func TestLayerSemantics(t *testing.T) {
	needRoot(t)
	lower := []entry{
		{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/owned", body: "owned"},
		{name: "etc/hard", typ: tar.TypeLink, link: "etc/owned"},
		{name: "var/", typ: tar.TypeDir},
		{name: "var/cache/", typ: tar.TypeDir},
		{name: "var/cache/old1", body: "old"},
		{name: "var/cache/sub/", typ: tar.TypeDir},
		{name: "var/cache/sub/old2", body: "old"},
		{name: "opt/was-dir/", typ: tar.TypeDir},
		{name: "opt/was-dir/x", body: "x"},
		{name: "opt/was-file", body: "file"},
		{name: "srv/", typ: tar.TypeDir, mode: 0o755},
	}
	upper := []entry{
		{name: "etc/.wh.owned", body: ""},
		{name: "nothere/.wh.x", body: ""},
		{name: "var/cache/kept-before-marker", body: "new"},
		{name: "var/cache/.wh..wh..opq", body: ""},
		{name: "var/cache/new/deep", body: "new"},
		{name: "opt/was-dir", body: "now a file"},
		{name: "opt/was-file/", typ: tar.TypeDir},
		{name: "opt/was-file/y", body: "y"},
		{name: "srv/", typ: tar.TypeDir, mode: 0o700},
	}
	for _, comp := range []compression.Compression{compression.GZip, compression.ZStd} {
		t.Run(string(comp), func(t *testing.T) {
			s, _ := newStore(t)
			dir := t.TempDir()
			p, _ := layout.Write(dir, empty.Index)
			if err := p.AppendImage(layerImage(t, comp, lower, upper)); err != nil {
				t.Fatal(err)
			}
			root, _, err := s.RootfsFromLayout(context.Background(), dir, "")
			if err != nil {
				t.Fatal(err)
			}
			read := func(p string) string {
				b, err := os.ReadFile(filepath.Join(root, p))
				if err != nil {
					return "<" + err.Error() + ">"
				}
				return string(b)
			}
			gone := func(p string) {
				if _, err := os.Lstat(filepath.Join(root, p)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s should be gone: %v", p, err)
				}
			}
			gone("etc/owned")
			gone("nothere")
			if got := read("etc/hard"); got != "owned" {
				t.Errorf("hard link to a whited-out file lost its content: %q", got)
			}
			gone("var/cache/old1")
			gone("var/cache/sub")
			if read("var/cache/kept-before-marker") != "new" || read("var/cache/new/deep") != "new" {
				t.Errorf("opaque directory lost this layer's entries")
			}
			if read("opt/was-dir") != "now a file" || read("opt/was-file/y") != "y" {
				t.Errorf("type changes not applied")
			}
			if fi, _ := os.Stat(filepath.Join(root, "srv")); fi.Mode().Perm() != 0o700 {
				t.Errorf("upper layer's directory mode not applied: %v", fi.Mode())
			}
		})
	}
}

func TestPrune(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	s, _ := newStore(t)
	var ds []digest.Digest
	for i := 0; i < 2; i++ {
		dir := filepath.Join(t.TempDir(), "image")
		d, err := images.WriteLayout(dir, writeTar(t, append(sampleRoot, entry{name: fmt.Sprint("f", i), body: "x"})), images.ImageConfig{Created: epoch})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Rootfs(ctx, images.Source{Layout: dir}, d); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	removed, err := s.Prune(ds[:1], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != ds[1] {
		t.Errorf("removed %v, want [%s]", removed, ds[1])
	}
	assertClean(t, s, ds[0])
	if _, err := s.Rootfs(ctx, images.Source{}, ds[0]); err != nil {
		t.Errorf("kept image unusable: %v", err)
	}
	if _, err := s.Rootfs(ctx, images.Source{}, ds[1]); !errors.Is(err, images.ErrUnknownImage) {
		t.Errorf("pruned image still there: %v", err)
	}
}
