package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
)

// PlannedAction is one step of a dry run.
type PlannedAction struct {
	ID          string `json:"id"`
	Description string `json:"description,omitempty"`
	Kind        string `json:"kind"`
	// Key is the step's key, empty when it cannot be known before an
	// upstream step runs.
	Key digest.Digest `json:"key,omitempty"`
	// Cached is true when the store holds the step's outputs.
	Cached bool `json:"cached"`
	// Reasons say why a step would run, against the last build of the same
	// step ID.
	Reasons []Reason `json:"reasons,omitempty"`
}

// Reason is one cause of a cache miss.
type Reason struct {
	// What changed: "new step", "kind", "version", "image", "param NAME",
	// "input NAME", "outputs", "upstream", "cache entry".
	What string `json:"what"`
	// Old and New are the previous and current values (digests for
	// inputs), empty when not applicable.
	Old string `json:"old,omitempty"`
	New string `json:"new,omitempty"`
	// Note explains, e.g. "produced by step X, which will run".
	Note string `json:"note,omitempty"`
}

func (r Reason) String() string {
	s := r.What
	switch {
	case len(r.Old) > maxShown || len(r.New) > maxShown:
		s += ": " + longChange(r.Old, r.New)
	case r.Old != "" && r.New != "":
		s += fmt.Sprintf(": %s → %s", r.Old, r.New)
	case r.New != "":
		s += fmt.Sprintf(": (none) → %s", r.New)
	case r.Old != "":
		s += fmt.Sprintf(": %s → (none)", r.Old)
	}
	if r.Note != "" {
		if r.Old != "" || r.New != "" {
			s += " (" + r.Note + ")"
		} else {
			s += ": " + r.Note
		}
	}
	return s
}

// Explain is a dry run of Build: for every step reachable from roots, in
// build order, whether its outputs are cached and, if not, why — each
// difference of its key material against the last build of the same step
// ID. It runs nothing and writes nothing.
func Explain(ctx context.Context, roots []*Step, opts Options) ([]PlannedAction, error) {
	b, err := newBuilder(roots, opts)
	if err != nil {
		return nil, err
	}
	var out []PlannedAction
	for _, n := range b.g.nodes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pa := PlannedAction{ID: n.step.ID, Description: n.step.Meta.Description, Kind: n.step.Spec.Kind}
		var pending []Reason
		for _, in := range n.step.Inputs {
			if in.From != nil && b.g.byStep[in.From].manifest == nil {
				pending = append(pending, Reason{What: "input " + in.Name, Note: "produced by step " + in.From.ID + ", which will run"})
			}
		}
		hist := b.readHistory(n.step.ID)
		if len(pending) > 0 {
			// The key depends on outputs not yet made; still report what
			// else is known to differ.
			km, err := newKeyMaterial(n.step, nil)
			if err != nil {
				return nil, err
			}
			if hist != nil {
				for _, r := range diffMaterial(fromHistory(hist.Material), km) {
					if r.What[:min(len(r.What), 6)] != "input " {
						pending = append(pending, r)
					}
				}
			}
			pa.Reasons = pending
			out = append(out, pa)
			continue
		}
		ins, err := b.inputDigests(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("step %s: %w", n.step.ID, err)
		}
		km, err := newKeyMaterial(n.step, ins)
		if err != nil {
			return nil, err
		}
		n.km, n.key = km, km.Key()
		pa.Key = n.key
		if m := b.lookup(ctx, n.key); m != nil {
			n.manifest = m
			pa.Cached = true
			out = append(out, pa)
			continue
		}
		switch {
		case hist == nil:
			pa.Reasons = []Reason{{What: "new step", Note: "no earlier build of this step ID"}}
		case hist.Key == n.key:
			pa.Reasons = []Reason{{What: "cache entry", Note: "same key as the last build, but its outputs are no longer cached (pruned or evicted)"}}
		default:
			pa.Reasons = diffMaterial(fromHistory(hist.Material), km)
			if len(pa.Reasons) == 0 {
				pa.Reasons = []Reason{{What: "key schema", Old: string(hist.Key), New: string(n.key)}}
			}
		}
		out = append(out, pa)
	}
	return out, nil
}

// diffMaterial lists the differences between two key materials.
func diffMaterial(old, cur *KeyMaterial) []Reason {
	var rs []Reason
	if old.Schema != cur.Schema {
		rs = append(rs, Reason{What: "key schema", Old: old.Schema, New: cur.Schema})
	}
	if old.Kind != cur.Kind {
		rs = append(rs, Reason{What: "kind", Old: old.Kind, New: cur.Kind})
	}
	if old.Version != cur.Version {
		rs = append(rs, Reason{What: "version", Old: old.Version, New: cur.Version})
	}
	if old.Image != cur.Image {
		rs = append(rs, Reason{What: "image", Old: string(old.Image), New: string(cur.Image)})
	}
	rs = append(rs, diffParams(old.Params, cur.Params)...)
	oldIn := map[string]KeyInput{}
	for _, in := range old.Inputs {
		oldIn[in.Name] = in
	}
	curIn := map[string]bool{}
	for _, in := range cur.Inputs {
		curIn[in.Name] = true
		o, ok := oldIn[in.Name]
		switch {
		case !ok:
			rs = append(rs, Reason{What: "input " + in.Name, New: string(in.Digest), Note: "added"})
		case o.Digest != in.Digest && in.Digest != "":
			note := in.Source
			if note != "" {
				note = "from " + note
			}
			rs = append(rs, Reason{What: "input " + in.Name, Old: string(o.Digest), New: string(in.Digest), Note: note})
		}
	}
	for _, in := range old.Inputs {
		if !curIn[in.Name] {
			rs = append(rs, Reason{What: "input " + in.Name, Old: string(in.Digest), Note: "removed"})
		}
	}
	if fmt.Sprint(old.Outputs) != fmt.Sprint(cur.Outputs) {
		rs = append(rs, Reason{What: "outputs", Old: fmt.Sprint(old.Outputs), New: fmt.Sprint(cur.Outputs)})
	}
	return rs
}

// diffParams compares canonical params by top-level name.
func diffParams(old, cur json.RawMessage) []Reason {
	if bytes.Equal(old, cur) {
		return nil
	}
	var o, c map[string]json.RawMessage
	_ = json.Unmarshal(old, &o)
	_ = json.Unmarshal(cur, &c)
	names := map[string]bool{}
	for k := range o {
		names[k] = true
	}
	for k := range c {
		names[k] = true
	}
	sorted := make([]string, 0, len(names))
	for k := range names {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var rs []Reason
	for _, k := range sorted {
		ov, oo := o[k]
		cv, co := c[k]
		if oo {
			ov = recanonical(ov)
		}
		if co {
			cv = recanonical(cv)
		}
		if oo && co && bytes.Equal(ov, cv) {
			continue
		}
		rs = append(rs, Reason{What: "param " + k, Old: string(ov), New: string(cv)})
	}
	return rs
}

// recanonical re-encodes a JSON value canonically (older history files
// escaped HTML characters).
func recanonical(raw json.RawMessage) json.RawMessage {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw
	}
	out, err := marshalNoEscape(v)
	if err != nil {
		return raw
	}
	return out
}

// maxShown is the longest value String shows whole.
const maxShown = 100

// longChange summarises a change of long values (e.g. a step's script):
// their sizes and the first line that differs.
func longChange(old, cur string) string {
	// JSON strings read better as their text, with real line breaks.
	text := func(v string) string {
		var s string
		if json.Unmarshal([]byte(v), &s) == nil {
			return s
		}
		return v
	}
	o, c := strings.Split(text(old), "\n"), strings.Split(text(cur), "\n")
	clip := func(l string) string {
		if r := []rune(l); len(r) > 60 {
			return string(r[:60]) + "…"
		}
		return l
	}
	for i := 0; i < max(len(o), len(c)); i++ {
		var ol, cl string
		if i < len(o) {
			ol = o[i]
		}
		if i < len(c) {
			cl = c[i]
		}
		if ol != cl {
			return fmt.Sprintf("%d → %d bytes, line %d: %q → %q", len(old), len(cur), i+1, clip(ol), clip(cl))
		}
	}
	return fmt.Sprintf("%d → %d bytes", len(old), len(cur))
}
