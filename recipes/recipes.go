package recipes

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/uvmbuild/uvmbuild/builder/graph"
)

// Recipe is a set of targets and variables that plan a build graph.
type Recipe interface {
	// Name is what --recipe selects, e.g. "demo".
	Name() string
	// Vars declares the variables, in display order.
	Vars() []Var
	// Targets declares the targets, in display order.
	Targets() []Target
	// Plan turns targets and resolved variables into the steps to build. It
	// validates everything (policy, sources): an error stops the build
	// before any step runs.
	Plan(ctx context.Context, env Env, targets []string, vals Values) (*Plan, error)
}

// Target is a make-style target, e.g. "all" or "uvm-confpods".
type Target struct {
	Name, Description string
}

// Env is what a recipe may know about the invocation besides variables.
type Env struct {
	// ProjectDir holds uvmbuild.lock; the recipe's inputs are relative to
	// it.
	ProjectDir string
	// KataSrc is the kata-containers source tree (--kata-src), if given.
	KataSrc string
	// OutDir is the output directory the artifacts will be materialised
	// into. Recipes must not write there; it is informational (deploy).
	OutDir string
	// CacheDir is the build cache directory (--cache-dir, UVMBUILD_CACHE,
	// XDG_CACHE_HOME), resolved by the caller; recipes keep their image
	// store there.
	CacheDir string
	// Logger receives warnings.
	Logger *slog.Logger
}

// Plan is what a recipe asks the graph to do for one invocation.
type Plan struct {
	// Artifacts are step outputs materialised into the output directory.
	Artifacts []Artifact
	// Clean are slash paths under the output directory that this
	// invocation removes (clean targets), before building anything.
	Clean []string
	// Record are extra facts for build.json (e.g. "policy.digest"), also
	// printed at the end of the build.
	Record map[string]string
}

// Artifact is a step output materialised into the output directory under
// the name As (a slash path, e.g. "agent-install" or
// "kata-containers.img").
type Artifact = graph.Artifact

// Steps returns the distinct steps of the plan's artifacts, in order of
// first appearance.
func (p *Plan) Steps() []*graph.Step {
	seen := map[*graph.Step]bool{}
	var out []*graph.Step
	for _, a := range p.Artifacts {
		if !seen[a.Step] {
			seen[a.Step] = true
			out = append(out, a.Step)
		}
	}
	return out
}

// Find returns the recipe called name from rs, or an error listing the
// closest names.
func Find(rs []Recipe, name string) (Recipe, error) {
	names := make([]string, 0, len(rs))
	for _, r := range rs {
		if r.Name() == name {
			return r, nil
		}
		names = append(names, r.Name())
	}
	return nil, fmt.Errorf("unknown recipe %q%s", name, suggest(name, names))
}

// CheckTargets verifies that every target is declared by r. The error names
// the first unknown target and the closest valid names.
func CheckTargets(r Recipe, targets []string) error {
	decl := r.Targets()
	names := make([]string, len(decl))
	for i, t := range decl {
		names[i] = t.Name
	}
	for _, t := range targets {
		if !contains(names, t) {
			return fmt.Errorf("unknown target %q for recipe %s%s", t, r.Name(), suggest(t, names))
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest formats the closest names to name, or a pointer to the listing.
func suggest(name string, names []string) string {
	c := Closest(name, names)
	switch len(c) {
	case 0:
		if len(names) == 0 {
			return ""
		}
		sorted := append([]string(nil), names...)
		sort.Strings(sorted)
		if len(sorted) > 8 {
			sorted = append(sorted[:8], "…")
		}
		return "; valid: " + strings.Join(sorted, ", ")
	case 1:
		return fmt.Sprintf(" (did you mean %s?)", c[0])
	default:
		return fmt.Sprintf(" (did you mean one of %s?)", strings.Join(c, ", "))
	}
}

// Closest returns the names within a small edit distance of name (case
// insensitive), nearest first, at most three.
func Closest(name string, names []string) []string {
	type cand struct {
		name string
		d    int
	}
	limit := len(name)/3 + 1
	if limit < 2 {
		limit = 2
	}
	var cs []cand
	lname := strings.ToLower(name)
	for _, n := range names {
		d := editDistance(lname, strings.ToLower(n))
		// A prefix ("uvm" for "uvm-confpods") is close too.
		if d > limit && !(len(lname) >= 3 && strings.HasPrefix(strings.ToLower(n), lname)) {
			continue
		}
		cs = append(cs, cand{n, d})
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].d != cs[j].d {
			return cs[i].d < cs[j].d
		}
		return cs[i].name < cs[j].name
	})
	var out []string
	for i := 0; i < len(cs) && i < 3; i++ {
		out = append(out, cs[i].name)
	}
	return out
}

// editDistance is the Damerau (optimal string alignment) distance, so that
// a transposition ("relase"/"release" is a deletion, "BUILD_TPYE" a swap)
// costs one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
