package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults used when the corresponding Spec field is zero.
const (
	DefaultRunc      = "runc"
	DefaultStateRoot = "/run/uvmbuild/runc"
	DefaultHostname  = "uvmbuild"
	DefaultMemory    = 2 << 30
	DefaultPids      = 1024
	DefaultTimeout   = time.Hour
	// tailSize bounds the log tail kept for error messages.
	tailSize = 4 << 10
)

// Mount is a host file or directory bind-mounted into the container.
type Mount struct {
	// Source is the host path.
	Source string
	// Dest is the absolute path in the container; for inputs it is
	// /in/<name>.
	Dest string
}

// Spec describes one container run.
type Spec struct {
	// Rootfs is the unpacked image root (mounted read-only). It must already
	// contain the mount points /in, /out and /tmp (images.Unpack creates
	// them), so that runc never writes into the shared, cached root.
	Rootfs string
	// Args is the command; Args[0] is resolved in the container's PATH.
	Args []string
	// Env is the complete environment ("K=V"); nothing is inherited.
	Env []string
	// Cwd is the working directory in the container; "/" when empty.
	Cwd string
	// Hostname defaults to DefaultHostname.
	Hostname string
	// Inputs are mounted read-only; each Dest must be under /in.
	Inputs []Mount
	// Output is the host directory mounted read-write at /out; "" for none.
	Output string
	// Network shares the host network namespace. Only fetch steps set it.
	Network bool
	// Memory (bytes) and Pids limit the container; defaults DefaultMemory
	// and DefaultPids.
	Memory int64
	Pids   int64
	// Timeout bounds the run; DefaultTimeout when zero.
	Timeout time.Duration
	// Log receives the container's stdout and stderr (may be nil).
	Log io.Writer
	// Bundle is an existing, empty scratch directory for config.json.
	Bundle string
	// Runc is the runc binary (DefaultRunc, looked up in PATH).
	Runc string
	// StateRoot is runc's --root (DefaultStateRoot).
	StateRoot string
	// ID is the container id; a random "uvmbuild-…" id when empty.
	ID string
}

// ErrNoRunc is returned when the runc binary cannot be found.
var ErrNoRunc = errors.New(`runc not found: install the Debian package "runc" (apt-get install runc)`)

// ErrNotRoot is returned when the process is not running as root.
var ErrNotRoot = errors.New("container steps need root: runc creates namespaces, cgroups and mounts (run uvmbuild as root, e.g. with sudo)")

// ExitError is a container whose command failed.
type ExitError struct {
	Code int
	// Tail is the end of the step's output.
	Tail string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("container command exited with status %d%s", e.Code, formatTail(e.Tail))
}

// TimeoutError is a container killed because it ran longer than its timeout.
type TimeoutError struct {
	Timeout time.Duration
	Tail    string
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("container killed after the step timeout of %s%s", e.Timeout, formatTail(e.Tail))
}

// Is makes errors.Is(err, context.DeadlineExceeded) true.
func (e *TimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

func formatTail(t string) string {
	t = strings.TrimRight(t, "\n")
	if t == "" {
		return " (no output)"
	}
	return "; last output:\n" + t
}

// Check reports whether containers can run here: root, and runc found.
func Check(runc string) (string, error) {
	if runc == "" {
		runc = DefaultRunc
	}
	p, err := exec.LookPath(runc)
	if err != nil {
		return "", fmt.Errorf("%w (looked for %q: %v)", ErrNoRunc, runc, err)
	}
	if os.Geteuid() != 0 {
		return "", ErrNotRoot
	}
	return p, nil
}

// Run runs the container described by s and waits for it. It returns nil
// when the command exits 0, an *ExitError or *TimeoutError with the log tail
// otherwise, or ctx's error when ctx is cancelled. In every case the
// container is gone when Run returns.
func Run(ctx context.Context, s Spec) error {
	runc, err := Check(s.Runc)
	if err != nil {
		return err
	}
	if err := validate(&s); err != nil {
		return err
	}
	cfg := Config(&s)
	b, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encoding runc config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.Bundle, "config.json"), b, 0o600); err != nil {
		return fmt.Errorf("writing runc bundle: %w", err)
	}
	if err := os.MkdirAll(s.StateRoot, 0o700); err != nil {
		return fmt.Errorf("creating runc state root: %w", err)
	}

	tail := &tailWriter{max: tailSize}
	var out io.Writer = tail
	if s.Log != nil {
		out = io.MultiWriter(s.Log, tail)
	}
	cmd := exec.Command(runc, "--root", s.StateRoot, "run", "--bundle", s.Bundle, s.ID)
	cmd.Stdout = out
	cmd.Stderr = out
	// Own process group: a terminal's Ctrl-C reaches uvmbuild, which
	// cancels the context and tears the container down in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Teardown must finish even though ctx is done.
	defer cleanup(context.WithoutCancel(ctx), runc, s.StateRoot, s.ID)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting runc: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	timer := time.NewTimer(s.Timeout)
	defer timer.Stop()
	var werr error
	select {
	case werr = <-done:
	case <-ctx.Done():
		kill(context.WithoutCancel(ctx), runc, s.StateRoot, s.ID, cmd, done)
		return fmt.Errorf("container %s: %w", s.ID, ctx.Err())
	case <-timer.C:
		kill(context.WithoutCancel(ctx), runc, s.StateRoot, s.ID, cmd, done)
		return &TimeoutError{Timeout: s.Timeout, Tail: tail.String()}
	}
	if werr != nil {
		var ee *exec.ExitError
		if errors.As(werr, &ee) {
			return &ExitError{Code: ee.ExitCode(), Tail: tail.String()}
		}
		return fmt.Errorf("running runc: %w", werr)
	}
	return nil
}

// kill stops a running container: SIGKILL to its processes through runc,
// then, if runc itself does not exit soon, to runc.
func kill(ctx context.Context, runc, root, id string, cmd *exec.Cmd, done <-chan error) {
	kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = exec.CommandContext(kctx, runc, "--root", root, "kill", "--all", id, "KILL").Run()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// cleanup removes the container's state whatever happened; runc run
// normally deletes it itself, so "does not exist" is expected.
func cleanup(ctx context.Context, runc, root, id string) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_ = exec.CommandContext(dctx, runc, "--root", root, "delete", "--force", id).Run()
}

func validate(s *Spec) error {
	if len(s.Args) == 0 {
		return errors.New("container spec: no command (Args is empty)")
	}
	if s.Rootfs == "" {
		return errors.New("container spec: no root file system")
	}
	abs, err := filepath.Abs(s.Rootfs)
	if err != nil {
		return fmt.Errorf("container rootfs %q: %w", s.Rootfs, err)
	}
	s.Rootfs = abs
	for _, d := range []string{"in", "out", "tmp"} {
		if fi, err := os.Stat(filepath.Join(s.Rootfs, d)); err != nil || !fi.IsDir() {
			return fmt.Errorf("container rootfs %s: mount point /%s missing (unpack the image with images.Unpack)", s.Rootfs, d)
		}
	}
	if s.Bundle == "" {
		return errors.New("container spec: no bundle directory")
	}
	// Work on a copy: the caller's slice is not ours to rewrite.
	s.Inputs = append([]Mount(nil), s.Inputs...)
	for i, m := range s.Inputs {
		if !strings.HasPrefix(m.Dest, "/in/") || strings.Contains(m.Dest[4:], "..") || m.Dest == "/in/" {
			return fmt.Errorf("container input %q: destination %q must be /in/<name>", m.Source, m.Dest)
		}
		abs, err := filepath.Abs(m.Source)
		if err != nil {
			return fmt.Errorf("container input %q: %w", m.Source, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("container input %s: %w", m.Dest, err)
		}
		s.Inputs[i].Source = abs
	}
	if s.Output != "" {
		abs, err := filepath.Abs(s.Output)
		if err != nil {
			return fmt.Errorf("container output %q: %w", s.Output, err)
		}
		s.Output = abs
	}
	if s.Hostname == "" {
		s.Hostname = DefaultHostname
	}
	if s.Cwd == "" {
		s.Cwd = "/"
	}
	if s.Memory == 0 {
		s.Memory = DefaultMemory
	}
	if s.Pids == 0 {
		s.Pids = DefaultPids
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if s.StateRoot == "" {
		s.StateRoot = DefaultStateRoot
	}
	if s.ID == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("container id: %w", err)
		}
		s.ID = "uvmbuild-" + hex.EncodeToString(b[:])
	}
	return nil
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(t.buf)
	if len(t.buf) == t.max {
		// Drop the partial first line.
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return s
}
