package sandbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uvmbuild/uvmbuild/builder/sandbox"
)

// needRunc skips unless runc, root and busybox-static are available.
func needRunc(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc not installed (Debian package runc); container tests skipped")
	}
	if os.Geteuid() != 0 {
		t.Skip("container tests need root")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("busybox-static not installed; container tests skipped")
	}
}

// busyboxRoot makes a minimal root: /bin/busybox, its applets as symlinks,
// and the mount points images.Unpack would create.
func busyboxRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"bin", "in", "out", "tmp", "proc", "sys", "dev", "etc"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range strings.Fields(string(out)) {
		if a == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

var testEnv = []string{"HOME=/tmp", "LANG=C", "LC_ALL=C", "PATH=/bin", "SOURCE_DATE_EPOCH=1700000000", "TMPDIR=/tmp", "TZ=UTC"}

type fixture struct {
	root, state string
}

func newFixture(t *testing.T) *fixture {
	needRunc(t)
	return &fixture{root: busyboxRoot(t), state: t.TempDir()}
}

func (f *fixture) spec(t *testing.T, script string) (sandbox.Spec, *bytes.Buffer) {
	var log bytes.Buffer
	return sandbox.Spec{
		Rootfs:    f.root,
		Args:      []string{"/bin/sh", "-c", script},
		Env:       testEnv,
		Output:    t.TempDir(),
		Log:       &log,
		Bundle:    t.TempDir(),
		StateRoot: f.state,
		Timeout:   time.Minute,
	}, &log
}

func (f *fixture) assertNoContainer(t *testing.T) {
	t.Helper()
	out, err := exec.Command("runc", "--root", f.state, "list", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("runc list: %v: %s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("containers left behind: %s", s)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(mi, []byte(f.root)) {
		t.Errorf("stale mount of %s in /proc/self/mountinfo", f.root)
	}
}

func TestOnlyLoopbackAndNoConnection(t *testing.T) {
	f := newFixture(t)
	// A server on every host address: the step must not reach it.
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("reached")) }))
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	hostIP := nonLoopbackIP(t)
	s, log := f.spec(t, `cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' > /out/ifaces
printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 "$1" "$2" > /out/got 2>/out/err
if grep -q reached /out/got; then echo CONNECTED; else echo NOCONN; fi
printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 127.0.0.1 "$2" > /out/got2 2>/out/err2
if grep -q reached /out/got2; then echo CONNECTED-LO; else echo NOCONN-LO; fi
cat /out/err`)
	s.Args = append(s.Args, "sh", hostIP, itoa(port))
	if err := sandbox.Run(context.Background(), s); err != nil {
		t.Fatalf("run: %v", err)
	}
	ifaces, _ := os.ReadFile(filepath.Join(s.Output, "ifaces"))
	if got := strings.Fields(string(ifaces)); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("interfaces = %q, want only lo", got)
	}
	if !strings.Contains(log.String(), "NOCONN\n") || !strings.Contains(log.String(), "NOCONN-LO") {
		t.Errorf("the step reached the host's server:\n%s", log)
	}
	f.assertNoContainer(t)
}

func nonLoopbackIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && !ip.IP.IsLoopback() && ip.IP.To4() != nil {
			return ip.IP.String()
		}
	}
	return "127.0.0.1"
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestWritesConfinedToOut(t *testing.T) {
	f := newFixture(t)
	in := t.TempDir()
	if err := os.WriteFile(filepath.Join(in, "data"), []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	inFile := filepath.Join(t.TempDir(), "single")
	if err := os.WriteFile(inFile, []byte("single"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, log := f.spec(t, `try() { if sh -c "$1" 2>/dev/null; then echo "WROTE: $1"; else echo "refused: $1"; fi; }
try 'echo x > /in/src/data'
try 'echo x > /in/src/new'
try 'rm /in/src/data'
try 'echo x > /in/single'
try 'echo x > /in/added'
try 'echo x > /rootfile'
try 'echo x > /bin/busybox'
try 'echo x > /etc/new'
try 'echo x > /tmp/scratch'
echo ok > /out/result && echo out-ok`)
	s.Inputs = []sandbox.Mount{{Source: in, Dest: "/in/src"}, {Source: inFile, Dest: "/in/single"}}
	if err := sandbox.Run(context.Background(), s); err != nil {
		t.Fatalf("run: %v\n%s", err, log)
	}
	out := log.String()
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, "WROTE") && !strings.Contains(l, "/tmp/scratch") {
			t.Errorf("write not refused: %s", l)
		}
	}
	if !strings.Contains(out, "WROTE: echo x > /tmp/scratch") || !strings.Contains(out, "out-ok") {
		t.Errorf("/tmp and /out must be writable:\n%s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(in, "data")); string(b) != "original" {
		t.Errorf("input modified: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(s.Output, "result")); string(b) != "ok\n" {
		t.Errorf("output = %q", b)
	}
	ents, _ := os.ReadDir(f.root)
	for _, e := range ents {
		if e.Name() == "rootfile" {
			t.Error("rootfs written")
		}
	}
	f.assertNoContainer(t)
}

func TestExactEnvironment(t *testing.T) {
	f := newFixture(t)
	t.Setenv("UVMBUILD_HOST_LEAK", "leaked")
	s, log := f.spec(t, `env | sort > /out/env; hostname > /out/hostname; umask > /out/umask; id -u > /out/uid
grep NoNewPrivs /proc/self/status | tr -d ' \t' > /out/nnp
grep CapEff /proc/self/status | cut -f2 > /out/capeff`)
	if err := sandbox.Run(context.Background(), s); err != nil {
		t.Fatalf("run: %v\n%s", err, log)
	}
	env, _ := os.ReadFile(filepath.Join(s.Output, "env"))
	got := strings.Fields(string(env))
	// The shell adds PWD, SHLVL and its own "_" — nothing else may appear.
	got = slices.DeleteFunc(got, func(v string) bool {
		return strings.HasPrefix(v, "PWD=") || strings.HasPrefix(v, "SHLVL=") || strings.HasPrefix(v, "_=")
	})
	if !slices.Equal(got, testEnv) {
		t.Errorf("environment:\n got %q\nwant %q", got, testEnv)
	}
	// CapEff: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID MKNOD only.
	for file, want := range map[string]string{"hostname": "uvmbuild", "umask": "0022", "uid": "0", "nnp": "NoNewPrivs:1", "capeff": capEff()} {
		b, _ := os.ReadFile(filepath.Join(s.Output, file))
		if strings.TrimSpace(string(b)) != want {
			t.Errorf("%s = %q, want %q", file, b, want)
		}
	}
}

func TestFailureReportsLogTail(t *testing.T) {
	f := newFixture(t)
	// All on stderr: runc copies the container's stdout and stderr through
	// separate pipes, so their relative order is not kept.
	s, _ := f.spec(t, `i=0; while [ $i -lt 2000 ]; do echo "noise line $i" >&2; i=$((i+1)); done; echo "compiler said: missing header foo.h" >&2; exit 3`)
	err := sandbox.Run(context.Background(), s)
	var ee *sandbox.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v, want *ExitError", err)
	}
	if ee.Code != 3 {
		t.Errorf("code = %d, want 3", ee.Code)
	}
	if !strings.Contains(err.Error(), "missing header foo.h") || strings.Contains(err.Error(), "noise line 1\n") {
		t.Errorf("error should end with the log tail only:\n%v", err)
	}
	f.assertNoContainer(t)
}

func TestCancelLeavesNothing(t *testing.T) {
	f := newFixture(t)
	s, _ := f.spec(t, `echo started; sleep 600`)
	started := make(chan struct{})
	s.Log = &signalWriter{once: started}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- sandbox.Run(ctx, s) }()
	select {
	case <-started:
	case err := <-errc:
		t.Fatalf("container ended early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("container did not start")
	}
	t0 := time.Now()
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(t0); d > 15*time.Second {
		t.Errorf("cancel took %s", d)
	}
	f.assertNoContainer(t)
}

type signalWriter struct {
	once chan struct{}
	done bool
}

func (w *signalWriter) Write(p []byte) (int, error) {
	if !w.done {
		w.done = true
		close(w.once)
	}
	return len(p), nil
}

func TestTimeout(t *testing.T) {
	f := newFixture(t)
	s, _ := f.spec(t, `echo working; sleep 600`)
	s.Timeout = 700 * time.Millisecond
	err := sandbox.Run(context.Background(), s)
	var te *sandbox.TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want *TimeoutError", err)
	}
	if !strings.Contains(err.Error(), "working") || !strings.Contains(err.Error(), "700ms") {
		t.Errorf("timeout error lacks timeout or tail: %v", err)
	}
	f.assertNoContainer(t)
}

func TestMissingRunc(t *testing.T) {
	err := sandbox.Run(context.Background(), sandbox.Spec{Runc: "/nonexistent/runc", Args: []string{"true"}})
	if !errors.Is(err, sandbox.ErrNoRunc) || !strings.Contains(err.Error(), `Debian package "runc"`) {
		t.Errorf("err = %v, want ErrNoRunc naming the package", err)
	}
}

func TestBadSpec(t *testing.T) {
	needRunc(t)
	root := t.TempDir() // no mount points
	err := sandbox.Run(context.Background(), sandbox.Spec{Rootfs: root, Args: []string{"true"}, Bundle: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "mount point /in missing") {
		t.Errorf("err = %v", err)
	}
	err = sandbox.Run(context.Background(), sandbox.Spec{Rootfs: busyboxRoot(t), Args: []string{"true"}, Bundle: t.TempDir(),
		Inputs: []sandbox.Mount{{Source: root, Dest: "/etc/passwd"}}})
	if err == nil || !strings.Contains(err.Error(), "must be /in/<name>") {
		t.Errorf("err = %v", err)
	}
}

// TestNotRoot re-runs this test binary as nobody to check the message.
func TestNotRoot(t *testing.T) {
	if os.Getenv("UVMBUILD_SANDBOX_NOTROOT") == "1" {
		_, err := sandbox.Check("runc")
		if !errors.Is(err, sandbox.ErrNotRoot) {
			t.Fatalf("err = %v, want ErrNotRoot", err)
		}
		os.Stdout.WriteString("MESSAGE: " + err.Error() + "\n")
		return
	}
	if os.Geteuid() != 0 {
		_, err := sandbox.Check("runc")
		if err == nil {
			t.Fatal("Check succeeded as non-root")
		}
		return
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc not installed")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "uvmbuild-notroot-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "sandbox.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestNotRoot$", "-test.v")
	cmd.Env = []string{"UVMBUILD_SANDBOX_NOTROOT=1", "PATH=" + os.Getenv("PATH")}
	cmd.Dir = dir
	cmd.SysProcAttr = nobody()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "MESSAGE: container steps need root") {
		t.Errorf("output:\n%s", out)
	}
}

// capEff is the effective capability mask the sandbox grants.
func capEff() string {
	// CAP_CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4, KILL 5, SETGID 6,
	// SETUID 7, MKNOD 27.
	var m uint64
	for _, c := range []uint{0, 1, 3, 4, 5, 6, 7, 27} {
		m |= 1 << c
	}
	return fmt.Sprintf("%016x", m)
}
