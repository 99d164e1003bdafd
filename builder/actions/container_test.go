package actions_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/actions"
	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/images"
	"github.com/uvmbuild/uvmbuild/builder/lockfile"
	"github.com/uvmbuild/uvmbuild/builder/sandbox"
)

type env struct {
	store *images.Store
	exec  *actions.Container
	src   images.Source
	image string // layout dir
}

func newEnv(t *testing.T) (*env, *graph.Step) {
	needContainers(t)
	dir, _ := busyboxLayout(t)
	cache := t.TempDir()
	store := &images.Store{Dir: cache, Lock: lockfile.Open(filepath.Join(cache, lockfile.Name))}
	src := images.Source{Name: "busybox", Layout: dir}
	d, err := store.Resolve(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: store, src: src, image: dir,
		exec: &actions.Container{Images: store, Sources: []images.Source{src}, StateRoot: filepath.Join(cache, "runc"), Timeout: time.Minute}}
	step := &graph.Step{ID: "test/step", Spec: actions.ContainerSpec(d, actions.ContainerParams{SourceDateEpoch: testEpoch}), Exec: e.exec}
	return e, step
}

func withScript(s *graph.Step, script string, outputs ...string) *graph.Step {
	c := *s
	p := actions.ContainerParams{Script: script, SourceDateEpoch: testEpoch}
	c.Spec = actions.ContainerSpec(s.Spec.Image, p)
	c.Outputs = outputs
	return &c
}

func TestContainerStep(t *testing.T) {
	_, base := newEnv(t)
	in := t.TempDir()
	os.WriteFile(filepath.Join(in, "hello.txt"), []byte("hello\n"), 0o600)
	single := filepath.Join(t.TempDir(), "blob")
	os.WriteFile(single, []byte("blob"), 0o644)
	s := withScript(base, `
cat /in/src/hello.txt /in/cfg > /out/greeting
mkdir -p /out/tree/sub && echo deep > /out/tree/sub/f && chmod 4700 /out/tree/sub/f
ln -s greeting /out/link
env | sort | grep -v '^PWD=\|^SHLVL=\|^_=' > /out/env
touch -d '2030-01-01 00:00:00' /out/future`, "greeting", "tree", "link", "env", "future")
	out, log, err := run(t, context.Background(), s, map[string]string{"src": in, "cfg": single})
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "greeting")); string(b) != "hello\nblob" {
		t.Errorf("greeting = %q", b)
	}
	wantEnv := []string{"HOME=/tmp", "LANG=C", "LC_ALL=C", "PATH=" + actions.ContainerPath, "SOURCE_DATE_EPOCH=1700000000", "TMPDIR=/tmp", "TZ=UTC"}
	b, _ := os.ReadFile(filepath.Join(out, "env"))
	if got := strings.Fields(string(b)); !slices.Equal(got, wantEnv) {
		t.Errorf("env:\n got %q\nwant %q", got, wantEnv)
	}
	fi, _ := os.Stat(filepath.Join(out, "tree/sub/f"))
	if fi.Mode() != 0o755 {
		t.Errorf("normalised mode = %v, want 0755 (setuid dropped)", fi.Mode())
	}
	fi, _ = os.Stat(filepath.Join(out, "future"))
	if fi.ModTime().Unix() != testEpoch {
		t.Errorf("mtime %v not clamped to SOURCE_DATE_EPOCH", fi.ModTime())
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
		t.Errorf("owner %d:%d", st.Uid, st.Gid)
	}
}

func TestContainerDeclaredEnv(t *testing.T) {
	_, base := newEnv(t)
	s := *base
	s.Spec = actions.ContainerSpec(base.Spec.Image, actions.ContainerParams{
		Argv: []string{"sh", "-c", `echo "$CC $1" > /out/cc`, "sh", "arg"}, Env: map[string]string{"CC": "gcc-12"}, SourceDateEpoch: testEpoch})
	s.Outputs = []string{"cc"}
	out, log, err := run(t, context.Background(), &s, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "cc")); string(b) != "gcc-12 arg\n" {
		t.Errorf("cc = %q", b)
	}
	s.Spec = actions.ContainerSpec(base.Spec.Image, actions.ContainerParams{Argv: []string{"true"}, Env: map[string]string{"TZ": "Europe/Paris"}})
	if _, _, err := run(t, context.Background(), &s, nil); err == nil || !strings.Contains(err.Error(), "TZ is fixed") {
		t.Errorf("overriding TZ: %v", err)
	}
}

// TestContainerReproducible runs one step twice from different working
// directories with different umasks: the outputs are identical.
func TestContainerReproducible(t *testing.T) {
	_, base := newEnv(t)
	s := withScript(base, `
echo data > /out/a; mkdir /out/d; echo x > /out/d/b; chmod 600 /out/d/b
cp /bin/busybox /out/d/tool; touch /out/d`, "a", "d")
	var got []string
	for i, mask := range []int{0o022, 0o077} {
		wd := t.TempDir()
		old, _ := os.Getwd()
		os.Chdir(wd)
		prev := syscall.Umask(mask)
		out, log, err := run(t, context.Background(), s, nil)
		syscall.Umask(prev)
		os.Chdir(old)
		if err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, log)
		}
		got = append(got, manifest(t, out))
	}
	if got[0] != got[1] {
		t.Errorf("outputs differ between runs:\n%s\n---\n%s", got[0], got[1])
	}
}

func TestContainerImageInput(t *testing.T) {
	e, base := newEnv(t)
	s := *base
	s.Spec = actions.ContainerSpec("", actions.ContainerParams{Script: `ls /in > /out/inputs`, ImageInput: "image", SourceDateEpoch: testEpoch})
	s.Outputs = []string{"inputs"}
	in := t.TempDir()
	out, log, err := run(t, context.Background(), &s, map[string]string{"image": e.image, "src": in})
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "inputs")); string(b) != "src\n" {
		t.Errorf("/in holds %q, want only src (the image input is not mounted)", b)
	}
}

func TestContainerFailureAndBadInput(t *testing.T) {
	e, base := newEnv(t)
	s := withScript(base, `echo "make: *** [vmlinux] Error 2" >&2; exit 2`, "x")
	_, _, err := run(t, context.Background(), s, nil)
	var ee *sandbox.ExitError
	if !errors.As(err, &ee) || ee.Code != 2 || !strings.Contains(err.Error(), "[vmlinux] Error 2") {
		t.Errorf("failing step: %v", err)
	}
	s = withScript(base, `true`, "missing")
	if _, _, err := run(t, context.Background(), s, nil); err == nil || !strings.Contains(err.Error(), `"missing"`) {
		t.Errorf("missing output: %v", err)
	}
	// An image that is nowhere: clear error, nothing in the store.
	s = withScript(base, `true`)
	s.Spec.Image = digest.Digest("sha256:" + strings.Repeat("ab", 32))
	c := *e.exec
	c.Sources = nil
	s.Exec = &c
	if _, _, err := run(t, context.Background(), s, nil); !errors.Is(err, images.ErrUnknownImage) {
		t.Errorf("unknown image: %v", err)
	}
	// Timeout.
	c = *e.exec
	c.Timeout = 500 * time.Millisecond
	s = withScript(base, `sleep 60`)
	s.Exec = &c
	var te *sandbox.TimeoutError
	if _, _, err := run(t, context.Background(), s, nil); !errors.As(err, &te) {
		t.Errorf("timeout: %v", err)
	}
	// Missing runc names the package.
	c = *e.exec
	c.Runc = "/nonexistent/runc"
	s = withScript(base, `true`)
	s.Exec = &c
	if _, _, err := run(t, context.Background(), s, nil); !errors.Is(err, sandbox.ErrNoRunc) {
		t.Errorf("missing runc: %v", err)
	}
	// Bad input name.
	s = withScript(base, `true`)
	if _, _, err := run(t, context.Background(), s, map[string]string{"../x": t.TempDir()}); err == nil || !strings.Contains(err.Error(), "/in/<name>") {
		t.Errorf("bad input name: %v", err)
	}
}

func TestContainerSpecKey(t *testing.T) {
	// Every parameter reaches the Spec (and so the key).
	base := actions.ContainerParams{Argv: []string{"a"}, Script: "s", Env: map[string]string{"K": "v"}, SourceDateEpoch: 1, Workdir: "/w", ImageInput: "img"}
	ref := actions.ContainerSpec("", base)
	muts := []func(*actions.ContainerParams){
		func(p *actions.ContainerParams) { p.Argv = []string{"b"} },
		func(p *actions.ContainerParams) { p.Script = "t" },
		func(p *actions.ContainerParams) { p.Env = map[string]string{"K": "w"} },
		func(p *actions.ContainerParams) { p.SourceDateEpoch = 2 },
		func(p *actions.ContainerParams) { p.Workdir = "/x" },
		func(p *actions.ContainerParams) { p.ImageInput = "other" },
	}
	for i, m := range muts {
		p := base
		m(&p)
		if got := actions.ContainerSpec("", p); equalJSON(t, got.Params, ref.Params) {
			t.Errorf("mutation %d does not change the spec", i)
		}
	}
}
