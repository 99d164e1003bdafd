package actions

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/atomicfile"
	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/lockfile"
	"github.com/uvmbuild/uvmbuild/builder/sandbox"
)

// FetchKind is the Spec.Kind of fetch steps.
const FetchKind = "fetch"

const fetchVersion = "1"

// FetchFile is one file a fetch step downloads.
type FetchFile struct {
	// Name is the output path (slash-separated, relative) and the name
	// under which its checksum is locked.
	Name string
	// URLs are tried in order until one serves the expected content. They
	// are not part of the key when Digest is set (a mirror may move).
	URLs []string
	// Digest is the expected content digest ("sha256:…"). When empty, the
	// digest is taken from the lock, or recorded there on first fetch
	// (trust on first use); the URLs are then part of the key.
	Digest digest.Digest
}

// ChecksumError is a download whose content is not the expected one.
type ChecksumError struct {
	URL       string
	Want, Got digest.Digest
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: checksum mismatch: want %s, got %s", e.URL, e.Want, e.Got)
}

// FetchSpec returns the Spec of a fetch step downloading files.
func FetchSpec(files []FetchFile) graph.Spec {
	fs := map[string]any{}
	for _, f := range files {
		if f.Digest != "" {
			fs[f.Name] = f.Digest.String()
		} else {
			fs[f.Name] = map[string]any{"urls": slices.Clone(f.URLs)}
		}
	}
	return graph.Spec{Kind: FetchKind, Version: fetchVersion, Params: map[string]any{"files": fs}}
}

// Fetch downloads declared files with checksums (see the package
// documentation). It is the only executor that uses the network.
type Fetch struct {
	// Files must be the list the step's Spec was made from.
	Files []FetchFile
	// Lock records the checksums under LockName (the step ID when empty);
	// optional when every file has a Digest.
	Lock     *lockfile.File
	LockName string
	// Client is the HTTP client (http.DefaultClient when nil).
	Client *http.Client
}

var _ graph.Executor = (*Fetch)(nil)

// Run implements graph.Executor.
func (f *Fetch) Run(ctx context.Context, x *graph.Exec) error {
	lockName := f.LockName
	if lockName == "" {
		lockName = x.Step.ID
	}
	var locked lockfile.Entry
	if f.Lock != nil {
		e, ok, err := f.Lock.Lookup(lockName)
		if err != nil {
			return err
		}
		if ok {
			locked = e
		}
	}
	got := lockfile.Entry{Checksums: map[string]digest.Digest{}}
	for _, file := range f.Files {
		if err := checkOutputName(file.Name); err != nil {
			return fmt.Errorf("fetch %q: %w", file.Name, err)
		}
		// A declared digest is the pin; an undeclared one is pinned by the
		// lock (trust on first use), and a download that differs from it
		// fails naming both.
		want := file.Digest
		if want == "" {
			want = locked.Checksums[file.Name]
		}
		d, err := f.fetchOne(ctx, x, file, want)
		var ce *ChecksumError
		if err != nil && file.Digest == "" && errors.As(err, &ce) {
			// Pinned by the lock: upstream changed under the same URL.
			return fmt.Errorf("fetch %q from %s: %w", file.Name, ce.URL,
				&lockfile.MismatchError{File: f.Lock.Path(), Name: lockName, Field: "checksums[" + file.Name + "]", Want: ce.Want, Got: ce.Got})
		}
		if err != nil {
			return err
		}
		got.Checksums[file.Name] = d
	}
	// Directories created here follow the host umask: normalise (times are
	// not clamped; fetched files carry no meaningful time).
	if err := sandbox.Normalize(x.OutDir, time.Unix(0, 0)); err != nil {
		return err
	}
	if f.Lock == nil {
		return nil
	}
	// Every locked checksum of an undeclared file was just verified, so a
	// difference left comes from the recipe (a declared digest changed, a
	// file added or removed): a deliberate change, re-pinned.
	if len(locked.Checksums) > 0 && !locked.Equal(got) {
		if x.Logger != nil {
			x.Logger.Warn("fetch step's declared files changed; re-pinning lock entry", "entry", lockName)
		}
		return f.Lock.Set(lockName, got)
	}
	return f.Lock.Record(lockName, got)
}

func checkOutputName(name string) error {
	if name == "" || path.IsAbs(name) || path.Clean(name) != name || strings.HasPrefix(name, "../") || name == ".." {
		return errors.New("name must be a clean relative path")
	}
	return nil
}

// fetchOne tries each URL; the first that serves want (or anything, when
// want is empty) wins.
func (f *Fetch) fetchOne(ctx context.Context, x *graph.Exec, file FetchFile, want digest.Digest) (digest.Digest, error) {
	if len(file.URLs) == 0 {
		return "", fmt.Errorf("fetch %q: no URL", file.Name)
	}
	dst := filepath.Join(x.OutDir, filepath.FromSlash(file.Name))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	var errs []error
	for _, u := range file.URLs {
		d, err := f.download(ctx, u, dst, want)
		if err == nil {
			if x.Log != nil {
				fmt.Fprintf(x.Log, "fetched %s from %s: %s\n", file.Name, u, d)
			}
			return d, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("fetch %q: %w", file.Name, errors.Join(errs...))
}

// download writes url to a temporary file beside dst, verifies it and
// renames it.
func (f *Fetch) download(ctx context.Context, url, dst string, want digest.Digest) (digest.Digest, error) {
	client := f.Client
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("%s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	var got digest.Digest
	// No fsync: the graph's store syncs the step's outputs.
	err = atomicfile.Write(dst, 0o644, func(tmp *os.File) error {
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(tmp, h), resp.Body); err != nil {
			return fmt.Errorf("%s: %w", url, err)
		}
		got = digest.NewDigest(digest.SHA256, h)
		if want != "" && got != want {
			return &ChecksumError{URL: url, Want: want, Got: got}
		}
		return nil
	}, atomicfile.NoSync())
	if err != nil {
		return "", err
	}
	return got, nil
}
