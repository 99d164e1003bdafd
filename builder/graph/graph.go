package graph

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// node is the scheduler's state for one step. The fields below done are
// written by the node's own goroutine before done is closed and read by
// others only after.
type node struct {
	step  *Step
	deps  []*node // distinct upstream nodes, in input order
	order int     // position in topological order
	done  chan struct{}

	km       *KeyMaterial
	key      digest.Digest
	manifest *Manifest
	cached   bool
	dur      time.Duration
	log      string // relative to the work dir
	err      error  // *StepError for a failure of this step
	skipped  error  // why the step did not run (a dependency failed, cancelled)
}

// dag is a validated graph: every step reachable from the roots, in
// topological order (inputs first, ties broken by ID).
type dag struct {
	nodes  []*node
	byStep map[*Step]*node
}

// newDAG collects and validates every step reachable from roots: IDs are
// unique and non-empty, every input sets exactly one of Path, Blob and
// From, input names are unique, From outputs exist, outputs are clean
// relative paths, Exec is set, and there is no cycle.
func newDAG(roots []*Step) (*dag, error) {
	g := &dag{byStep: map[*Step]*node{}}
	ids := map[string]*Step{}
	const (
		visiting = 1
		visited  = 2
	)
	state := map[*Step]int{}
	var post []*node
	var visit func(s *Step, path []string) error
	visit = func(s *Step, path []string) error {
		switch state[s] {
		case visiting:
			return fmt.Errorf("dependency cycle: %s", strings.Join(append(path, s.ID), " → "))
		case visited:
			return nil
		}
		if err := checkStep(s); err != nil {
			return err
		}
		if other, ok := ids[s.ID]; ok && other != s {
			return fmt.Errorf("two different steps share the ID %q", s.ID)
		}
		ids[s.ID] = s
		state[s] = visiting
		n := &node{step: s, done: make(chan struct{})}
		seen := map[*Step]bool{}
		for _, in := range s.Inputs {
			if in.From == nil {
				continue
			}
			if err := visit(in.From, append(path, s.ID)); err != nil {
				return err
			}
			if !seen[in.From] {
				seen[in.From] = true
				n.deps = append(n.deps, g.byStep[in.From])
			}
		}
		state[s] = visited
		g.byStep[s] = n
		post = append(post, n)
		return nil
	}
	// Visit roots in ID order so the order does not depend on the recipe's
	// artifact order more than necessary.
	sorted := append([]*Step(nil), roots...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	for _, s := range sorted {
		if s == nil {
			return nil, fmt.Errorf("nil step")
		}
		if err := visit(s, nil); err != nil {
			return nil, err
		}
	}
	g.nodes = topoOrder(post)
	for i, n := range g.nodes {
		n.order = i
	}
	return g, nil
}

// topoOrder is Kahn's algorithm with the ready set ordered by ID, so the
// order is deterministic and readable (a record of the same graph always
// lists actions the same way).
func topoOrder(nodes []*node) []*node {
	indeg := map[*node]int{}
	users := map[*node][]*node{}
	for _, n := range nodes {
		indeg[n] += 0
		for _, d := range n.deps {
			indeg[n]++
			users[d] = append(users[d], n)
		}
	}
	var ready []*node
	for _, n := range nodes {
		if indeg[n] == 0 {
			ready = append(ready, n)
		}
	}
	var out []*node
	for len(ready) > 0 {
		sort.Slice(ready, func(i, j int) bool { return ready[i].step.ID < ready[j].step.ID })
		n := ready[0]
		ready = ready[1:]
		out = append(out, n)
		for _, u := range users[n] {
			indeg[u]--
			if indeg[u] == 0 {
				ready = append(ready, u)
			}
		}
	}
	return out
}

func checkStep(s *Step) error {
	if s.ID == "" {
		return fmt.Errorf("step with kind %q has no ID", s.Spec.Kind)
	}
	if s.Spec.Kind == "" {
		return fmt.Errorf("step %s: Spec.Kind is empty", s.ID)
	}
	if s.Exec == nil {
		return fmt.Errorf("step %s: no executor", s.ID)
	}
	if len(s.Outputs) == 0 {
		return fmt.Errorf("step %s: declares no outputs", s.ID)
	}
	outs := map[string]bool{}
	for _, o := range s.Outputs {
		if !validOutputName(o) {
			return fmt.Errorf("step %s: output %q is not a clean relative path", s.ID, o)
		}
		if outs[o] {
			return fmt.Errorf("step %s: output %q declared twice", s.ID, o)
		}
		outs[o] = true
	}
	for _, o := range s.Outputs {
		for p := o; strings.Contains(p, "/"); {
			p = p[:strings.LastIndex(p, "/")]
			if outs[p] {
				return fmt.Errorf("step %s: output %q is inside output %q", s.ID, o, p)
			}
		}
	}
	names := map[string]bool{}
	for _, in := range s.Inputs {
		if in.Name == "" || strings.ContainsAny(in.Name, "/\x00") || in.Name == "." || in.Name == ".." {
			return fmt.Errorf("step %s: input name %q must be a non-empty file name", s.ID, in.Name)
		}
		if names[in.Name] {
			return fmt.Errorf("step %s: input %q declared twice", s.ID, in.Name)
		}
		names[in.Name] = true
		set := 0
		if in.Path != "" {
			set++
		}
		if in.Blob != nil {
			set++
		}
		if in.From != nil {
			set++
		}
		if set != 1 {
			return fmt.Errorf("step %s: input %q must set exactly one of Path, Blob and From", s.ID, in.Name)
		}
		if in.From != nil && in.Output != "" {
			ok := false
			for _, o := range in.From.Outputs {
				if in.Output == o || strings.HasPrefix(in.Output, o+"/") {
					ok = true
				}
			}
			if !ok {
				return fmt.Errorf("step %s: input %q wants output %q of step %s, which declares %s",
					s.ID, in.Name, in.Output, in.From.ID, strings.Join(in.From.Outputs, ", "))
			}
		}
	}
	return nil
}

// inputSource names where an input comes from, for records and plans.
func inputSource(in Input, hostKind string) string {
	switch {
	case in.From != nil && in.Output != "":
		return "step:" + in.From.ID + "/" + in.Output
	case in.From != nil:
		return "step:" + in.From.ID
	case in.Blob != nil:
		return "blob"
	}
	return hostKind
}
