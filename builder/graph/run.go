package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/filemode"
	"github.com/uvmbuild/uvmbuild/builder/progress"
)

// run executes n in a fresh scratch directory and stores its outputs. The
// action entry is written only after every output blob is stored, and
// never when the run failed or was cancelled, so the store holds no
// partial entry.
func (b *builder) run(ctx context.Context, n *node) (*Manifest, error) {
	key := n.key
	tmpRoot := filepath.Join(b.opts.WorkDir, "tmp")
	if err := os.MkdirAll(tmpRoot, 0o755); err != nil {
		return nil, fmt.Errorf("creating scratch directory: %w", err)
	}
	tmp, err := os.MkdirTemp(tmpRoot, "run-"+key.Encoded()[:12]+"-")
	if err != nil {
		return nil, fmt.Errorf("creating scratch directory: %w", err)
	}
	defer removeAll(tmp)
	x := &Exec{
		Step:    n.step,
		Key:     key,
		Inputs:  map[string]string{},
		OutDir:  filepath.Join(tmp, "out"),
		TempDir: filepath.Join(tmp, "scratch"),
		Logger:  b.log.With("step", n.step.ID),
	}
	for _, d := range []string{x.OutDir, x.TempDir, filepath.Join(tmp, "in")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	// Inputs are placed before taking a job slot: placing may rebuild an
	// upstream step (corrupt blob), which needs a slot of its own.
	if err := b.prepareInputs(ctx, n, filepath.Join(tmp, "in"), x.Inputs); err != nil {
		return nil, err
	}
	if err := b.sem.Acquire(ctx, 1); err != nil {
		return nil, context.Cause(ctx)
	}
	defer b.sem.Release(1)
	b.emit(progress.Event{Kind: progress.Start, Step: n.step.ID, Description: n.step.Meta.Description, Key: string(key),
		Log: b.absLog(logRel(key))})

	logPath := b.absLog(logRel(key))
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, fmt.Errorf("creating log directory: %w", err)
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating log file: %w", err)
	}
	x.Log = logf
	err = runExec(ctx, n.step.Exec, x)
	if cerr := logf.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("writing log: %w", cerr)
	}
	if err == nil && ctx.Err() != nil {
		// The run may have been cut short: never store its outputs.
		err = context.Cause(ctx)
	}
	if err != nil {
		return nil, &StepError{Step: n.step.ID, Key: key, Log: logPath, Err: err}
	}
	m, blobs, err := b.ingest(ctx, n.step, x.OutDir)
	if err != nil {
		return nil, &StepError{Step: n.step.ID, Key: key, Log: logPath, Err: err}
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	if err := b.opts.Store.PutAction(ctx, key, data, blobs); err != nil {
		return nil, fmt.Errorf("storing outputs: %w", err)
	}
	return m, nil
}

// runExec calls the executor, turning a panic into an error so one bad
// executor cannot take the build (and its cache lock) down.
func runExec(ctx context.Context, e Executor, x *Exec) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("executor panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return e.Run(ctx, x)
}

// prepareInputs fills inputs with a host path per input name: host inputs
// as they are, blobs written into inDir, upstream outputs linked from the
// store into inDir.
func (b *builder) prepareInputs(ctx context.Context, n *node, inDir string, inputs map[string]string) error {
	for _, in := range n.step.Inputs {
		dst := filepath.Join(inDir, in.Name)
		switch {
		case in.From != nil:
			up := b.g.byStep[in.From]
			if err := b.materialise(ctx, up, in.Output, dst); err != nil {
				return fmt.Errorf("input %s: %w", in.Name, err)
			}
		case in.Blob != nil:
			if err := os.WriteFile(dst, in.Blob, 0o444); err != nil {
				return fmt.Errorf("input %s: %w", in.Name, err)
			}
		default:
			abs, err := filepath.Abs(in.Path)
			if err != nil {
				return fmt.Errorf("input %s: %w", in.Name, err)
			}
			dst = abs
		}
		inputs[in.Name] = dst
	}
	return nil
}

// materialise places output of up's outputs at dst (which must not
// exist). A corrupt or missing blob makes the step be rebuilt once; if the
// rebuild gives different outputs the key of everything downstream is
// wrong for this build, which is reported as an error.
func (b *builder) materialise(ctx context.Context, up *node, output, dst string) error {
	entries, ok := up.sub(output)
	if !ok {
		return fmt.Errorf("step %s did not produce %q", up.step.ID, output)
	}
	err := b.placeTree(ctx, entries, dst)
	if err == nil || !errors.Is(err, ErrNotFound) {
		return err
	}
	b.warn("cached output is corrupt or missing; rebuilding", "step", up.step.ID, "err", err)
	if rerr := b.repair(ctx, up); rerr != nil {
		return rerr
	}
	removeAll(dst)
	return b.placeTree(ctx, entries, dst)
}

// repair evicts up's action entry and runs it again (once per build and
// key), checking that it reproduces the recorded outputs.
func (b *builder) repair(ctx context.Context, up *node) error {
	v, err, _ := b.flight.Do("repair:"+string(up.key), func() (any, error) {
		_ = b.opts.Store.DeleteAction(ctx, up.key)
		start := time.Now()
		o, err := b.fetchOrRun(ctx, up, true)
		if err != nil {
			return nil, err
		}
		b.emit(progress.Event{Kind: progress.Done, Step: up.step.ID, Description: up.step.Meta.Description,
			Key: string(up.key), Duration: time.Since(start), Log: b.absLog(o.log)})
		return o.manifest, nil
	})
	if err != nil {
		return fmt.Errorf("rebuilding step %s: %w", up.step.ID, err)
	}
	m := v.(*Manifest)
	if TreeDigest(m.Entries) != TreeDigest(up.manifest.Entries) {
		return fmt.Errorf("step %s was rebuilt after a corrupt cache entry and produced different outputs (it is not reproducible); run the build again", up.step.ID)
	}
	return nil
}

// placeTree creates entries (rebased so that "." is dst itself, or
// relative to dst as a directory when there is no "." entry) under dst,
// linking files from the store. Directory modes are applied last so that
// read-only directories can be filled.
func (b *builder) placeTree(ctx context.Context, entries []Entry, dst string) error {
	hasRoot := len(entries) > 0 && entries[0].Path == "."
	if !hasRoot {
		if err := os.Mkdir(dst, 0o755); err != nil {
			return err
		}
	}
	var dirs []Entry
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		p := dst
		if e.Path != "." {
			p = filepath.Join(dst, filepath.FromSlash(e.Path))
		}
		switch e.Type {
		case "dir":
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
			dirs = append(dirs, e)
		case "symlink":
			if err := os.Symlink(e.Target, p); err != nil {
				return err
			}
		case "file":
			if err := b.opts.Store.LinkFile(ctx, e.Digest, e.Mode, p); err != nil {
				if e.Path == "." {
					return err
				}
				return fmt.Errorf("%s: %w", e.Path, err)
			}
		default:
			return fmt.Errorf("%s: unknown entry type %q", e.Path, e.Type)
		}
	}
	// Deepest first, so a read-only parent does not block its children.
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].Path > dirs[j].Path })
	for _, e := range dirs {
		p := dst
		if e.Path != "." {
			p = filepath.Join(dst, filepath.FromSlash(e.Path))
		}
		if err := os.Chmod(p, filemode.FromUnix(e.Mode)); err != nil {
			return err
		}
	}
	return nil
}

// ingest checks that outDir holds exactly the step's declared outputs
// (plus parent directories), moves every file into the store and returns
// the manifest and the blobs it references.
func (b *builder) ingest(ctx context.Context, s *Step, outDir string) (*Manifest, []digest.Digest, error) {
	declared := map[string]bool{}
	for _, o := range s.Outputs {
		declared[o] = true
	}
	seen := map[string]bool{}
	var entries []Entry
	var blobs []digest.Digest
	err := filepath.WalkDir(outDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		if p == outDir {
			return nil
		}
		rel, _ := filepath.Rel(outDir, p)
		rel = filepath.ToSlash(rel)
		if !outputAllowed(rel, d.IsDir(), s.Outputs, declared) {
			return fmt.Errorf("undeclared output %q (declared: %s)", rel, strings.Join(s.Outputs, ", "))
		}
		if declared[rel] {
			seen[rel] = true
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := Entry{Path: rel, Mode: filemode.ToUnix(info.Mode())}
		switch {
		case d.IsDir():
			e.Type = "dir"
		case info.Mode()&fs.ModeSymlink != 0:
			e.Type, e.Mode = "symlink", 0o777
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			e.Type = "file"
			if e.Digest, e.Size, err = b.opts.Store.PutFile(ctx, p, e.Mode); err != nil {
				return fmt.Errorf("storing output %s: %w", rel, err)
			}
			blobs = append(blobs, e.Digest)
		default:
			return fmt.Errorf("output %s: unsupported file type %s", rel, info.Mode().Type())
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for _, o := range s.Outputs {
		if !seen[o] {
			return nil, nil, fmt.Errorf("declared output %q was not created", o)
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	return &Manifest{Entries: entries}, blobs, nil
}

// outputAllowed reports whether rel may exist in a step's output
// directory: a declared output, something inside a declared output, or a
// directory on the way to one.
func outputAllowed(rel string, isDir bool, outputs []string, declared map[string]bool) bool {
	if declared[rel] {
		return true
	}
	for p := rel; strings.Contains(p, "/"); {
		p = p[:strings.LastIndex(p, "/")]
		if declared[p] {
			return true
		}
	}
	if isDir {
		for _, o := range outputs {
			if strings.HasPrefix(o, rel+"/") {
				return true
			}
		}
	}
	return false
}

// removeAll removes a scratch tree even when an executor left read-only
// directories in it.
func removeAll(p string) {
	if err := os.RemoveAll(p); err == nil {
		return
	}
	_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(q, 0o755)
		}
		return nil
	})
	_ = os.RemoveAll(p)
}
