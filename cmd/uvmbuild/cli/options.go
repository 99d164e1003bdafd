package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/uvmbuild/uvmbuild/builder/cache"
	"github.com/uvmbuild/uvmbuild/builder/progress"
	"github.com/uvmbuild/uvmbuild/recipes"
	"github.com/uvmbuild/uvmbuild/recipes/nodebuilder"
	"github.com/uvmbuild/uvmbuild/recipes/sample"
)

// composeRecipes is the composition root's list of recipes. Add a recipe by
// adding its constructor here; --recipe selects one by name.
func composeRecipes() []recipes.Recipe {
	return []recipes.Recipe{
		sample.New(),
		nodebuilder.NewDemo(),
		nodebuilder.NewAzureLinux(),
		// recipes: one per line, keep this marker
	}
}

// defaultRecipe is "demo" (the node-builder demo) when it is compiled in,
// else "sample".
func defaultRecipe(rs []recipes.Recipe) string {
	for _, r := range rs {
		if r.Name() == "demo" {
			return "demo"
		}
	}
	return "sample"
}

// Options are the flags shared by the build-graph commands (the root build,
// build, targets, vars, plan, graph, cache) plus what the composition root
// provides (recipes, environment).
type Options struct {
	Recipe     string
	ProjectDir string
	KataSrc    string
	OutDir     string
	CacheDir   string
	Jobs       int
	KeepGoing  bool
	Progress   string
	DryRun     bool // -n on the build commands only
	// Expect is a measurement file or endorsement the built launch
	// measurement must equal; ExpectPub the key the endorsement must verify with.
	Expect, ExpectPub string

	// Recipes are the recipes --recipe chooses from.
	Recipes []recipes.Recipe
	// Environ is the process environment (VAR=value), for variables and
	// the cache location.
	Environ []string
}

// newOptions returns the options of a real process.
func newOptions() *Options {
	return &Options{Recipes: composeRecipes(), Environ: os.Environ()}
}

// addFlags binds the shared flags. Each graph command gets its own copy
// (not persistent flags) so that they never clash with other commands' flags.
func (o *Options) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Recipe, "recipe", defaultRecipe(o.Recipes), "recipe to build (see 'uvmbuild targets')")
	fs.StringVarP(&o.ProjectDir, "project-dir", "C", ".", "project directory (holds uvmbuild.lock; recipe inputs are relative to it)")
	fs.StringVar(&o.KataSrc, "kata-src", "", "kata-containers source tree")
	fs.StringVar(&o.OutDir, "out", "out", "output directory for artifacts and build.json")
	fs.StringVar(&o.CacheDir, "cache-dir", "", "cache directory (default $UVMBUILD_CACHE, else $XDG_CACHE_HOME/uvmbuild, else ~/.cache/uvmbuild)")
	fs.IntVarP(&o.Jobs, "jobs", "j", runtime.NumCPU(), "number of actions to run at once")
	fs.BoolVarP(&o.KeepGoing, "keep-going", "k", false, "keep building independent actions after a failure")
	fs.StringVar(&o.Progress, "progress", "auto", "progress output: auto, tty, plain or json")
	fs.StringVar(&o.Expect, "expect", "", "exit 3 unless a built launch measurement equals this measurement file or endorsement")
	fs.StringVar(&o.ExpectPub, "expect-pub", "", "public key the --expect endorsement must verify with")
}

func (o *Options) getenv(name string) string {
	for i := len(o.Environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(o.Environ[i], "="); ok && k == name {
			return v
		}
	}
	return ""
}

// validate checks flag values that do not need the recipe.
func (o *Options) validate() error {
	if o.Jobs < 1 {
		return usageError(fmt.Errorf("--jobs %d: want at least 1", o.Jobs))
	}
	switch o.Progress {
	case "auto", "tty", "plain", "json":
	default:
		return usageError(fmt.Errorf("--progress %q: want auto, tty, plain or json", o.Progress))
	}
	return nil
}

// recipe returns the selected recipe.
func (o *Options) recipe() (recipes.Recipe, error) {
	return recipes.Find(o.Recipes, o.Recipe)
}

// cacheDir resolves --cache-dir, UVMBUILD_CACHE, XDG_CACHE_HOME, HOME.
func (o *Options) cacheDir() (string, error) {
	if o.CacheDir != "" {
		return o.CacheDir, nil
	}
	return cache.DefaultDir(o.getenv)
}

// openCache opens the cache for a build.
func (o *Options) openCache(ctx context.Context, log *slog.Logger) (*cache.Store, error) {
	dir, err := o.cacheDir()
	if err != nil {
		return nil, err
	}
	return cache.Open(ctx, dir, cache.WithLogger(log))
}

// env is the recipe environment.
func (o *Options) env(log *slog.Logger) (recipes.Env, error) {
	proj, err := filepath.Abs(o.ProjectDir)
	if err != nil {
		return recipes.Env{}, err
	}
	out, err := filepath.Abs(o.OutDir)
	if err != nil {
		return recipes.Env{}, err
	}
	cacheDir, err := o.cacheDir()
	if err != nil {
		return recipes.Env{}, err
	}
	if cacheDir, err = filepath.Abs(cacheDir); err != nil {
		return recipes.Env{}, err
	}
	e := recipes.Env{ProjectDir: proj, OutDir: out, CacheDir: cacheDir, Logger: log}
	if o.KataSrc != "" {
		if e.KataSrc, err = filepath.Abs(o.KataSrc); err != nil {
			return recipes.Env{}, err
		}
	}
	return e, nil
}

// newLogger writes warnings and errors to stderr, one line each:
// "uvmbuild: warning: MESSAGE key=value …".
func newLogger(stderr io.Writer) *slog.Logger {
	return slog.New(&lineHandler{w: stderr})
}

// lineHandler is a minimal slog.Handler for human-readable one-line
// warnings (slog's text handler would add time and level keys).
type lineHandler struct {
	mu    sync.Mutex
	w     io.Writer
	attrs []slog.Attr
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString("uvmbuild: ")
	if r.Level >= slog.LevelError {
		b.WriteString("error: ")
	} else {
		b.WriteString("warning: ")
	}
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *lineHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &lineHandler{w: h.w, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *lineHandler) WithGroup(string) slog.Handler { return h }

// sink returns the progress renderer chosen by --progress and a function
// that flushes it.
func (o *Options) sink(stderr io.Writer) (progress.Sink, func()) {
	mode := o.Progress
	width := 0
	if mode == "auto" || mode == "tty" {
		mode = "plain"
		if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			mode = "tty"
			width, _, _ = term.GetSize(int(f.Fd()))
		} else if o.Progress == "tty" {
			mode = "tty"
		}
	}
	switch mode {
	case "tty":
		t := progress.NewTTY(stderr, width)
		return t, func() { t.Close() }
	case "json":
		return progress.NewJSON(stderr), func() {}
	}
	return progress.NewPlain(stderr), func() {}
}

// splitArgs separates targets from VAR=value; no target means the
// recipe's "all" (like make's first target), else its first target.
func splitArgs(r recipes.Recipe, args []string) (targets, assigns []string, err error) {
	targets, assigns = recipes.SplitArgs(args)
	if len(targets) == 0 {
		ts := r.Targets()
		if len(ts) == 0 {
			return nil, nil, fmt.Errorf("recipe %s declares no targets", r.Name())
		}
		targets = []string{ts[0].Name}
		for _, t := range ts {
			if t.Name == "all" {
				targets = []string{"all"}
			}
		}
	}
	if err := recipes.CheckTargets(r, targets); err != nil {
		return nil, nil, err
	}
	return targets, assigns, nil
}

// planFor resolves variables and asks the recipe for its plan.
func (o *Options) planFor(ctx context.Context, args []string, log *slog.Logger) (recipes.Recipe, []string, recipes.Values, *recipes.Plan, error) {
	r, err := o.recipe()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	targets, assigns, err := splitArgs(r, args)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	vals, err := recipes.Resolve(r, assigns, o.Environ)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	env, err := o.env(log)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	plan, err := r.Plan(ctx, env, targets, vals)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("recipe %s: %w", r.Name(), err)
	}
	return r, targets, vals, plan, nil
}

// addDryRunFlag binds -n to the build commands (root and build) only: other
// commands that build prerequisites (deploy) must not silently skip them.
func (o *Options) addDryRunFlag(fs *pflag.FlagSet) {
	fs.BoolVarP(&o.DryRun, "dry-run", "n", false, "print what would run and why, run nothing (like make -n; same as 'uvmbuild plan')")
}
