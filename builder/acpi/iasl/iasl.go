package iasl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/uvmbuild/uvmbuild/builder/acpi"
)

// ErrNotFound is wrapped when the iasl binary cannot be found.
var ErrNotFound = errors.New("iasl not found (install acpica-tools)")

// Compiler runs iasl. The zero value looks "iasl" up in PATH.
type Compiler struct {
	// Path is the iasl binary; empty means "iasl" from PATH.
	Path string
}

var _ acpi.Compiler = Compiler{}

func (c Compiler) bin() (string, error) {
	p := c.Path
	if p == "" {
		p = "iasl"
	}
	found, err := exec.LookPath(p)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return found, nil
}

// Compile writes src as name into a temporary directory, runs "iasl -f name"
// there and returns the AML it wrote.
func (c Compiler) Compile(ctx context.Context, name string, src []byte) ([]byte, error) {
	bin, err := c.bin()
	if err != nil {
		return nil, err
	}
	base := filepath.Base(name)
	if !strings.HasSuffix(base, ".dsl") {
		return nil, fmt.Errorf("ACPI source name %q does not end in .dsl", name)
	}
	dir, err := os.MkdirTemp("", "uvmbuild-iasl-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, base), src, 0o644); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "-f", base)
	cmd.Dir = dir
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("iasl -f %s: %w\n%s", base, err, tail(out.String(), 20))
	}
	aml, err := os.ReadFile(filepath.Join(dir, strings.TrimSuffix(base, ".dsl")+".aml"))
	if err != nil {
		return nil, fmt.Errorf("iasl -f %s wrote no AML: %w\n%s", base, err, tail(out.String(), 20))
	}
	return aml, nil
}

// Version returns iasl's version string (e.g. "20200925"), which is stamped
// into every compiled table and so belongs in a build key.
func (c Compiler) Version(ctx context.Context) (string, error) {
	bin, err := c.bin()
	if err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, bin, "-v").CombinedOutput()
	m := regexp.MustCompile(`version (\d{8})`).FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("%s -v: no version in output (%v): %q", bin, err, tail(string(out), 5))
	}
	return string(m[1]), nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
