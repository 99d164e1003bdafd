package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"

	"github.com/uvmbuild/uvmbuild/builder/progress"
	"github.com/uvmbuild/uvmbuild/builder/record"
)

// Options configure Build and Explain.
type Options struct {
	// Store holds step outputs. Required.
	Store Store
	// WorkDir holds run scratch directories (tmp/), step logs (logs/) and
	// the per-step-ID key history (history/). It must be on the same file
	// system as the store so outputs move into it without copying; the CLI
	// uses the cache directory. Required.
	WorkDir string
	// Jobs bounds the number of steps running (and hashing) at once; 0
	// means runtime.NumCPU().
	Jobs int
	// KeepGoing continues with independent steps after a failure, like
	// make -k. Otherwise the first failure cancels running steps.
	KeepGoing bool
	// Sink receives progress events; nil discards them.
	Sink progress.Sink
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
}

func (o *Options) check() error {
	if o.Store == nil {
		return errors.New("graph: Options.Store is nil")
	}
	if o.WorkDir == "" {
		return errors.New("graph: Options.WorkDir is empty")
	}
	return nil
}

// Result is a finished (or failed) build.
type Result struct {
	// Actions are every step in topological order, for build.json. Steps
	// that did not run because of a failure have no key or outputs.
	Actions []record.Action
	// Summary counts steps by outcome.
	Summary progress.Summary

	b *builder
}

// Manifest returns the outputs of s in this build, or nil if s did not
// complete.
func (r *Result) Manifest(s *Step) *Manifest {
	if n := r.b.g.byStep[s]; n != nil {
		return n.manifest
	}
	return nil
}

// Key returns the key of s in this build ("" if it was not computed).
func (r *Result) Key(s *Step) digest.Digest {
	if n := r.b.g.byStep[s]; n != nil {
		return n.key
	}
	return ""
}

// builder is the state of one Build.
type builder struct {
	opts   Options
	g      *dag
	hash   *hasher
	sem    *semaphore.Weighted
	flight singleflight.Group
	sink   progress.Sink
	log    *slog.Logger
}

func newBuilder(roots []*Step, opts Options) (*builder, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	g, err := newDAG(roots)
	if err != nil {
		return nil, err
	}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	b := &builder{
		opts: opts,
		g:    g,
		hash: newHasher(opts.WorkDir, jobs),
		sem:  semaphore.NewWeighted(int64(jobs)),
		sink: opts.Sink,
		log:  opts.Logger,
	}
	if b.sink == nil {
		b.sink = progress.Discard{}
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	return b, nil
}

// Build brings every step reachable from roots up to date: each step's key
// is computed from its spec and the content of its inputs; a key found in
// the store is a hit, otherwise the step runs (at most Jobs at once) and
// its outputs are stored. Steps with equal keys run once. Independent steps
// run in parallel; a step starts only when every step it reads from is
// done.
//
// On failure Build returns a Result describing what happened and an error:
// the *StepError of the first failure (errors.Join of all of them with
// KeepGoing). When ctx is cancelled, running steps are cancelled, Build
// waits for them, and no partial output is stored.
func Build(ctx context.Context, roots []*Step, opts Options) (*Result, error) {
	b, err := newBuilder(roots, opts)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	b.emit(progress.Event{Kind: progress.BuildStart, Total: len(b.g.nodes)})
	bctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var eg errgroup.Group
	for _, n := range b.g.nodes {
		eg.Go(func() error {
			b.process(bctx, cancel, n)
			return nil
		})
	}
	_ = eg.Wait()
	b.hash.stat.save()

	res := &Result{b: b}
	var errs []error
	for _, n := range b.g.nodes {
		res.Actions = append(res.Actions, n.record())
		switch {
		case n.err != nil:
			res.Summary.Failed++
			errs = append(errs, n.err)
		case n.skipped != nil:
			res.Summary.Skipped++
		case n.cached:
			res.Summary.Cached++
		default:
			res.Summary.Run++
		}
	}
	err = errors.Join(errs...)
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("build interrupted: %w", context.Cause(ctx))
	}
	end := progress.Event{Kind: progress.BuildEnd, Duration: time.Since(start), Summary: &res.Summary}
	if err != nil {
		end.Error = err.Error()
	}
	b.emit(end)
	return res, err
}

func (b *builder) emit(e progress.Event) {
	e.Time = time.Now()
	b.sink.Event(e)
}

// warn reports a problem the build recovers from: as a progress event
// when there is a sink (the renderer shows it), else to the logger.
func (b *builder) warn(msg string, args ...any) {
	if _, discard := b.sink.(progress.Discard); discard {
		b.log.Warn(msg, args...)
		return
	}
	text := msg
	for i := 0; i+1 < len(args); i += 2 {
		text += fmt.Sprintf(" %v=%v", args[i], args[i+1])
	}
	b.emit(progress.Event{Kind: progress.Warning, Error: text})
}

// process drives one node: wait for its dependencies, compute its key,
// then fetch or run it.
func (b *builder) process(ctx context.Context, cancel context.CancelCauseFunc, n *node) {
	defer close(n.done)
	for _, d := range n.deps {
		<-d.done
	}
	for _, d := range n.deps {
		if d.err != nil || d.skipped != nil {
			n.skipped = fmt.Errorf("dependency %s did not complete", d.step.ID)
			b.emit(progress.Event{Kind: progress.Skipped, Step: n.step.ID, Description: n.step.Meta.Description, Error: n.skipped.Error()})
			return
		}
	}
	if ctx.Err() != nil {
		n.skipped = context.Cause(ctx)
		b.emit(progress.Event{Kind: progress.Skipped, Step: n.step.ID, Description: n.step.Meta.Description, Error: n.skipped.Error()})
		return
	}
	start := time.Now()
	err := b.resolve(ctx, n)
	n.dur = time.Since(start)
	if err != nil {
		var se *StepError
		switch {
		case !errors.As(err, &se):
			se = &StepError{Step: n.step.ID, Key: n.key, Err: err}
			err = se
		case se.Step != n.step.ID && se.Key == n.key:
			// A step with the same key (run once for both) failed.
			se = &StepError{Step: n.step.ID, Key: n.key, Log: se.Log, Err: fmt.Errorf("same action as step %s: %w", se.Step, se.Err)}
			err = se
		}
		if ctx.Err() != nil {
			// A step stopped by another failure or by the user is
			// not itself a failure.
			n.skipped = context.Cause(ctx)
			b.emit(progress.Event{Kind: progress.Skipped, Step: n.step.ID, Description: n.step.Meta.Description, Error: n.skipped.Error()})
			return
		}
		n.err = err
		b.emit(progress.Event{Kind: progress.Failed, Step: n.step.ID, Description: n.step.Meta.Description,
			Key: string(n.key), Duration: n.dur, Log: se.Log, Error: se.Err.Error()})
		if !b.opts.KeepGoing {
			cancel(fmt.Errorf("step %s failed", n.step.ID))
		}
		return
	}
	kind := progress.Done
	if n.cached {
		kind = progress.Cached
	}
	b.emit(progress.Event{Kind: kind, Step: n.step.ID, Description: n.step.Meta.Description, Key: string(n.key),
		Duration: n.dur, Log: b.absLog(n.log)})
}

// outcome is the result of fetching or running one key.
type outcome struct {
	manifest *Manifest
	cached   bool
	log      string
}

// resolve computes n's key and obtains its outputs.
func (b *builder) resolve(ctx context.Context, n *node) error {
	ins, err := b.inputDigests(ctx, n)
	if err != nil {
		return err
	}
	km, err := newKeyMaterial(n.step, ins)
	if err != nil {
		return err
	}
	n.km, n.key = km, km.Key()
	leader := false
	ch := b.flight.DoChan(string(n.key), func() (any, error) {
		leader = true
		return b.fetchOrRun(ctx, n, false)
	})
	// Wait for the flight even when ctx is done: its leader honours ctx,
	// and Build must not return while an action still runs.
	r := <-ch
	if r.Err != nil {
		return r.Err
	}
	o := r.Val.(*outcome)
	n.manifest, n.cached, n.log = o.manifest, o.cached || !leader, o.log
	if err := b.writeHistory(n); err != nil {
		b.warn("could not record step history", "step", n.step.ID, "err", err)
	}
	return nil
}

// inputDigests digests every input of n: host paths by content (memoised
// for the build), blobs by content, upstream outputs by their manifest.
func (b *builder) inputDigests(ctx context.Context, n *node) ([]KeyInput, error) {
	var out []KeyInput
	for _, in := range n.step.Inputs {
		ki := KeyInput{Name: in.Name}
		switch {
		case in.From != nil:
			up := b.g.byStep[in.From]
			entries, ok := up.sub(in.Output)
			if !ok {
				return nil, fmt.Errorf("input %s: step %s did not produce %q", in.Name, in.From.ID, in.Output)
			}
			ki.Digest = TreeDigest(entries)
			ki.Source = inputSource(in, "")
		case in.Blob != nil:
			ki.Digest = TreeDigest([]Entry{{Path: ".", Type: "file", Mode: 0o644, Digest: digest.FromBytes(in.Blob), Size: int64(len(in.Blob))}})
			ki.Source = "blob"
		default:
			if err := b.sem.Acquire(ctx, 1); err != nil {
				return nil, context.Cause(ctx)
			}
			d, src, err := b.hash.input(ctx, in.Path, in.Ignore)
			b.sem.Release(1)
			if err != nil {
				return nil, fmt.Errorf("input %s: %w", in.Name, err)
			}
			ki.Digest, ki.Source = d, src
		}
		out = append(out, ki)
	}
	return out, nil
}

// fetchOrRun returns n's outputs from the store, or runs n. With force the
// store is not consulted (the entry is being repaired).
func (b *builder) fetchOrRun(ctx context.Context, n *node, force bool) (*outcome, error) {
	if !force {
		if m := b.lookup(ctx, n.key); m != nil {
			return &outcome{manifest: m, cached: true, log: b.existingLog(n.key)}, nil
		}
	}
	unlock, err := b.opts.Store.LockAction(ctx, n.key)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("locking cache entry: %w", err)
	}
	defer unlock()
	// Another process may have built it while we waited for the lock.
	if !force {
		if m := b.lookup(ctx, n.key); m != nil {
			return &outcome{manifest: m, cached: true, log: b.existingLog(n.key)}, nil
		}
	}
	m, err := b.run(ctx, n)
	if err != nil {
		return nil, err
	}
	return &outcome{manifest: m, log: logRel(n.key)}, nil
}

// lookup reads and decodes the action entry for key; nil on a miss. An
// entry that does not decode is evicted with a warning.
func (b *builder) lookup(ctx context.Context, key digest.Digest) *Manifest {
	data, err := b.opts.Store.GetAction(ctx, key)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			b.warn("cache lookup failed, rebuilding", "key", key, "err", err)
		}
		return nil
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		b.warn("evicting undecodable cache entry", "key", key, "err", err)
		_ = b.opts.Store.DeleteAction(ctx, key)
		return nil
	}
	return &m
}

func (n *node) record() record.Action {
	a := record.Action{
		ID:          n.step.ID,
		Description: n.step.Meta.Description,
		Kind:        n.step.Spec.Kind,
		Version:     n.step.Spec.Version,
		Image:       n.step.Spec.Image,
		Key:         n.key,
		Cached:      n.cached,
		DurationMS:  n.dur.Milliseconds(),
		Log:         n.log,
		Inputs:      []record.Input{},
	}
	if n.km != nil {
		for _, in := range n.step.Inputs {
			for _, ki := range n.km.Inputs {
				if ki.Name == in.Name {
					a.Inputs = append(a.Inputs, record.Input{Name: ki.Name, Digest: ki.Digest, Source: ki.Source})
				}
			}
		}
	}
	if n.manifest != nil {
		a.Outputs = *n.manifest
	}
	if a.Outputs.Entries == nil {
		a.Outputs.Entries = []Entry{}
	}
	return a
}

// logRel is the log file of a run of key, relative to the work dir.
func logRel(key digest.Digest) string {
	h := key.Encoded()
	return filepath.ToSlash(filepath.Join("logs", h[:2], h+".log"))
}

func (b *builder) absLog(rel string) string {
	if rel == "" {
		return ""
	}
	return filepath.Join(b.opts.WorkDir, filepath.FromSlash(rel))
}

// existingLog is the log of the run that stored key's entry: a run
// creates its log before its entry and prune removes both together, so no
// stat is needed on the hot path of a no-op build.
func (b *builder) existingLog(key digest.Digest) string {
	return logRel(key)
}
