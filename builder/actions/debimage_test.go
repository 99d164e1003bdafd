package actions_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uvmbuild/uvmbuild/builder/actions"
	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/images"
	"github.com/uvmbuild/uvmbuild/builder/lockfile"
)

func TestDebianImageSpecKey(t *testing.T) {
	a := actions.DebianImageSpec(actions.DebianImageParams{Suite: "bookworm", Packages: []string{"make", "gcc"}, SourceDateEpoch: 1})
	b := actions.DebianImageSpec(actions.DebianImageParams{Suite: "bookworm", Packages: []string{"gcc", "make", "gcc"}, SourceDateEpoch: 1})
	if !equalJSON(t, a.Params, b.Params) {
		t.Error("package order or duplicates must not change the key")
	}
	for i, p := range []actions.DebianImageParams{
		{Suite: "trixie", Packages: []string{"make", "gcc"}, SourceDateEpoch: 1},
		{Suite: "bookworm", Packages: []string{"make"}, SourceDateEpoch: 1},
		{Suite: "bookworm", Packages: []string{"make", "gcc"}, SourceDateEpoch: 2},
		{Suite: "bookworm", Packages: []string{"make", "gcc"}, Backports: []string{"e2fsprogs"}, SourceDateEpoch: 1},
		{Suite: "bookworm", Packages: []string{"make", "gcc"}, Variant: "apt", SourceDateEpoch: 1},
	} {
		if equalJSON(t, actions.DebianImageSpec(p).Params, a.Params) {
			t.Errorf("case %d: param change does not change the key", i)
		}
	}
}

// TestDebianImageNetwork builds a bookworm image with e2fsprogs from
// backports twice with mmdebstrap (network, about a minute each), checks
// that both runs give the same digest, that the lock holds it, and runs
// mkfs.ext4 from it in a container step.
func TestDebianImageNetwork(t *testing.T) {
	if os.Getenv("UVMBUILD_NETWORK_TESTS") != "1" {
		t.Skip("set UVMBUILD_NETWORK_TESTS=1 to run mmdebstrap against the configured Debian mirror (network, minutes)")
	}
	needContainers(t)
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		t.Skip("mmdebstrap not installed")
	}
	ctx := context.Background()
	lockPath := filepath.Join(t.TempDir(), lockfile.Name)
	lock := lockfile.Open(lockPath)
	step := &graph.Step{
		ID: "builder-image",
		Spec: actions.DebianImageSpec(actions.DebianImageParams{
			Suite: "bookworm", Backports: []string{"e2fsprogs"}, SourceDateEpoch: testEpoch,
		}),
		Outputs: []string{"image", "rootfs.tar", "packages.txt"},
		Exec:    &actions.DebianImage{Lock: lock, LockName: "builder-image"},
	}
	var outs []string
	for i := 0; i < 2; i++ {
		t0 := time.Now()
		out, log, err := run(t, ctx, step, nil)
		if err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, tail(log))
		}
		t.Logf("run %d: %s", i, time.Since(t0).Round(time.Second))
		outs = append(outs, out)
	}
	e, ok, _ := lock.Lookup("builder-image")
	if !ok {
		t.Fatal("image digest not recorded in the lock")
	}
	t.Logf("image %s, rootfs.tar %s", e.Digest, e.Checksums["rootfs.tar"])
	pk, _ := os.ReadFile(filepath.Join(outs[0], "packages.txt"))
	if !strings.Contains(string(pk), "e2fsprogs=1.47") {
		t.Errorf("e2fsprogs not from backports:\n%s", pk)
	}
	// The build machine's mirror must not reach the image.
	tf, err := os.Open(filepath.Join(outs[0], "rootfs.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	tr := tar.NewReader(tf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.TrimPrefix(h.Name, "./"); n == "etc/apt/sources.list" || strings.HasPrefix(n, "etc/apt/sources.list.d/") && n != "etc/apt/sources.list.d/" {
			t.Errorf("rootfs.tar holds the machine's apt source %s", h.Name)
		}
	}
	for _, f := range []string{"rootfs.tar", "packages.txt"} {
		a, _ := os.ReadFile(filepath.Join(outs[0], f))
		b, _ := os.ReadFile(filepath.Join(outs[1], f))
		if string(a) != string(b) {
			t.Errorf("%s differs between two runs", f)
		}
	}

	cache := t.TempDir()
	c := &actions.Container{Images: &images.Store{Dir: cache}, StateRoot: filepath.Join(cache, "runc")}
	s := &graph.Step{ID: "mkfs-version", Exec: c, Outputs: []string{"v"},
		Spec: actions.ContainerSpec("", actions.ContainerParams{Script: `mke2fs -V > /out/v 2>&1`, ImageInput: "image", SourceDateEpoch: testEpoch})}
	out, log, err := run(t, ctx, s, map[string]string{"image": filepath.Join(outs[0], "image")})
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	v, _ := os.ReadFile(filepath.Join(out, "v"))
	if !strings.Contains(string(v), "1.47") {
		t.Errorf("mke2fs -V: %s", v)
	}
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}

// TestDebianImageCancelNetwork cancels mmdebstrap while its chroot has
// /dev, /sys and /proc mounted: the mounts vanish with it (private mount
// namespace), so nothing is left mounted and removing the scratch directory
// cannot touch the host.
func TestDebianImageCancelNetwork(t *testing.T) {
	if os.Getenv("UVMBUILD_NETWORK_TESTS") != "1" {
		t.Skip("set UVMBUILD_NETWORK_TESTS=1 to run mmdebstrap against the configured Debian mirror (network, minutes)")
	}
	needContainers(t)
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		t.Skip("mmdebstrap not installed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	step := &graph.Step{ID: "img", Outputs: []string{"image"}, Exec: &actions.DebianImage{},
		Spec: actions.DebianImageSpec(actions.DebianImageParams{Suite: "bookworm", SourceDateEpoch: testEpoch})}
	base := t.TempDir()
	out, tmp := filepath.Join(base, "out"), filepath.Join(base, "tmp")
	os.Mkdir(out, 0o755)
	os.Mkdir(tmp, 0o700)
	log := &cancelOn{marker: "installing essential packages", cancel: cancel}
	err := step.Exec.Run(ctx, &graph.Exec{Step: step, OutDir: out, TempDir: tmp, Log: log})
	if !log.fired {
		t.Fatalf("mmdebstrap finished before the cancel point: %v", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), base) {
		t.Errorf("mounts left under %s:\n%s", base, mi)
	}
	if fi, err := os.Stat("/dev/null"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("/dev/null damaged: %v %v", fi, err)
	}
}

// cancelOn cancels 2 s after its marker first appears in the log.
type cancelOn struct {
	mu     sync.Mutex
	marker string
	cancel context.CancelFunc
	fired  bool
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fired && strings.Contains(string(p), c.marker) {
		c.fired = true
		time.AfterFunc(2*time.Second, c.cancel)
	}
	return len(p), nil
}

// fakeMmdebstrap writes a script that stands in for mmdebstrap: it writes a
// small tar (its content taken from the file named by content) to the
// output argument and records its arguments.
func fakeMmdebstrap(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "mmdebstrap")
	script := `#!/bin/sh
set -e
echo "$@" > ` + dir + `/args
for a; do case "$a" in *.tar) out=$a;; esac; done
src=$(mktemp -d)
mkdir -p "$src/etc"
cp ` + content + ` "$src/etc/content"
touch -d @$SOURCE_DATE_EPOCH "$src/etc/content" "$src/etc" "$src"
tar --sort=name --mtime=@$SOURCE_DATE_EPOCH --numeric-owner -C "$src" -cf "$out" .
`
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDebianImageLock(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("DebianImage runs mmdebstrap --mode=root; needs root")
	}
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("tar not installed")
	}
	content := filepath.Join(t.TempDir(), "content")
	os.WriteFile(content, []byte("v1"), 0o644)
	lockPath := filepath.Join(t.TempDir(), lockfile.Name)
	lock := lockfile.Open(lockPath)
	exe := &actions.DebianImage{Lock: lock, LockName: "img", Mmdebstrap: fakeMmdebstrap(t, content), Mirror: "http://deb.example.org/debian"}
	mk := func(pkgs ...string) *graph.Step {
		return &graph.Step{ID: "img", Outputs: []string{"image", "rootfs.tar"}, Exec: exe,
			Spec: actions.DebianImageSpec(actions.DebianImageParams{Suite: "bookworm", Packages: pkgs, Backports: []string{"e2fsprogs"}, SourceDateEpoch: testEpoch})}
	}
	ctx := context.Background()
	out, log, err := run(t, ctx, mk("make"), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	first, ok, _ := lock.Lookup("img")
	if !ok {
		t.Fatal("no lock entry")
	}
	// The layout is valid and holds the tar.
	root, d, err := (&images.Store{Dir: t.TempDir()}).RootfsFromLayout(ctx, filepath.Join(out, "image"), "")
	if err != nil || d != first.Digest {
		t.Fatalf("layout: %s %v (lock %s)", d, err, first.Digest)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/content")); string(b) != "v1" {
		t.Errorf("content = %q", b)
	}
	args, _ := os.ReadFile(filepath.Join(filepath.Dir(exe.Mmdebstrap), "args"))
	for _, want := range []string{"--include=make,e2fsprogs/bookworm-backports", "deb http://deb.example.org/debian bookworm-backports main", "--mode=root"} {
		if !strings.Contains(string(args), want) {
			t.Errorf("mmdebstrap args lack %q: %s", want, args)
		}
	}
	// Same spec, same result: fine.
	if _, _, err := run(t, ctx, mk("make"), nil); err != nil {
		t.Fatal(err)
	}
	// Same spec, the mirror moved on: a lock mismatch naming both digests.
	os.WriteFile(content, []byte("v2"), 0o644)
	_, _, err = run(t, ctx, mk("make"), nil)
	var me *lockfile.MismatchError
	if !errors.As(err, &me) || me.Name != "img" || !strings.Contains(err.Error(), first.Digest.String()) {
		t.Fatalf("mirror moved: %v", err)
	}
	// The recipe changes the package list: a deliberate change, re-pinned.
	if _, log, err := run(t, ctx, mk("make", "gcc"), nil); err != nil {
		t.Fatalf("spec change: %v\n%s", err, log)
	}
	if e, _, _ := lock.Lookup("img"); e.Digest == first.Digest || e.Ref == first.Ref {
		t.Errorf("lock entry not re-pinned: %+v", e)
	}
}
