package diff

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/uvmbuild/uvmbuild/builder/record"
)

// RecordOptions tune [Records].
type RecordOptions struct {
	Options
	// Fetch, when set, returns a local file holding the content of a
	// differing output entry of side 0 (A) or 1 (B), e.g. a blob extracted
	// from that build's cache or the file in its out/ directory; the
	// first diverging action's files are then compared structurally.
	// Returning ("", nil) means the content is not available.
	Fetch func(ctx context.Context, side int, action string, e record.Entry) (string, error)
}

// RecordReport is the comparison of two build records.
type RecordReport struct {
	*Report
	// First is the ID of the first action in graph order whose outputs
	// differ; "" if every action matches. Later divergences are usually
	// its consequences.
	First string
	// Diverging lists every action whose outputs differ, in graph order.
	Diverging []string
	// SameInputs is true when the first diverging action had the same
	// key (so the same inputs) in both builds: the step itself is not
	// deterministic.
	SameInputs bool
}

// Records compares two build records action by action in graph order.
// Records of different recipes, targets or variables are not comparable
// (an error matching ErrIncomparable).
func Records(ctx context.Context, a, b *record.Build, opt *RecordOptions) (*RecordReport, error) {
	if opt == nil {
		opt = &RecordOptions{}
	}
	o := opt.Options.norm()
	if a.Recipe != b.Recipe {
		return nil, fmt.Errorf("%w: recipe %q versus %q", ErrIncomparable, a.Recipe, b.Recipe)
	}
	if !slices.Equal(a.Targets, b.Targets) {
		return nil, fmt.Errorf("%w: targets %q versus %q", ErrIncomparable, a.Targets, b.Targets)
	}
	if !maps.Equal(a.Vars, b.Vars) {
		var ks []string
		for k := range mapsUnion(a.Vars, b.Vars) {
			if a.Vars[k] != b.Vars[k] {
				ks = append(ks, fmt.Sprintf("%s=%q versus %q", k, a.Vars[k], b.Vars[k]))
			}
		}
		slices.Sort(ks)
		return nil, fmt.Errorf("%w: variables differ: %s", ErrIncomparable, strings.Join(ks, ", "))
	}
	rr := &RecordReport{Report: &Report{A: label(o.LabelA, "A"), B: label(o.LabelB, "B"), Kind: "record"}}
	r := rr.Report
	for i := range a.Actions {
		x := &a.Actions[i]
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		y := b.Action(x.ID)
		if y == nil {
			r.add(o.MaxItems, Item{Where: "action " + x.ID + ": only in " + r.A})
			continue
		}
		ents := entryDiffs(x.Outputs.Entries, y.Outputs.Entries)
		if len(ents) == 0 {
			continue
		}
		rr.Diverging = append(rr.Diverging, x.ID)
		if rr.First != "" {
			r.add(o.MaxItems, Item{Where: fmt.Sprintf("action %s: outputs differ (%d entries; downstream of %s)", x.ID, len(ents), rr.First)})
			continue
		}
		rr.First = x.ID
		rr.SameInputs = x.Key == y.Key
		head := Item{Where: fmt.Sprintf("FIRST DIVERGING ACTION %s (%s)", x.ID, x.Kind)}
		if x.Description != "" {
			head.Where += ": " + x.Description
		}
		if rr.SameInputs {
			head.Detail = fmt.Sprintf("same key %s in both builds: same inputs, different outputs, so this step is not deterministic", x.Key)
		} else {
			head.Detail = "the keys differ: its inputs or parameters differ (see below)"
		}
		if x.Log != "" {
			head.Detail += "\nlog of build A: " + x.Log
		}
		if y.Log != "" {
			head.Detail += "\nlog of build B: " + y.Log
		}
		r.add(o.MaxItems, head)
		if !rr.SameInputs {
			for _, it := range inputDiffs(x, y) {
				r.add(o.MaxItems, it)
			}
		}
		for _, e := range ents {
			it := Item{Where: fmt.Sprintf("action %s output %s", x.ID, e.path), A: entryDesc(e.a), B: entryDesc(e.b)}
			if e.a != nil && e.b != nil && e.a.Type == record.TypeFile && e.b.Type == record.TypeFile && e.a.Digest != e.b.Digest && opt.Fetch != nil {
				sub, err := fetchAndCompare(ctx, opt, x.ID, *e.a, *e.b, o)
				if err != nil {
					it.Detail = "content not compared: " + err.Error()
				} else {
					it.Sub = sub
				}
			}
			r.add(o.MaxItems, it)
		}
	}
	for _, y := range b.Actions {
		if a.Action(y.ID) == nil {
			r.add(o.MaxItems, Item{Where: "action " + y.ID + ": only in " + r.B})
		}
	}
	// The materialised artifacts follow from the actions' outputs; a
	// difference here with equal actions points at materialisation.
	arts := map[string][2]*record.Artifact{}
	for i := range a.Artifacts {
		arts[a.Artifacts[i].Name] = [2]*record.Artifact{&a.Artifacts[i], nil}
	}
	for i := range b.Artifacts {
		p := arts[b.Artifacts[i].Name]
		p[1] = &b.Artifacts[i]
		arts[b.Artifacts[i].Name] = p
	}
	for _, name := range slices.Sorted(maps.Keys(arts)) {
		p := arts[name]
		desc := func(x *record.Artifact) string {
			if x == nil {
				return ""
			}
			return fmt.Sprintf("%s %s %d bytes from %s/%s", x.Type, x.Digest, x.Size, x.Step, x.Output)
		}
		if x, y := desc(p[0]), desc(p[1]); x != y && (rr.First == "" || !slices.Contains(rr.Diverging, artifactStep(p))) {
			r.add(o.MaxItems, Item{Where: "artifact " + name, A: x, B: y})
		}
	}
	return rr, nil
}

func mapsUnion(a, b map[string]string) map[string]bool {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}

type entryPair struct {
	path string
	a, b *record.Entry
}

func entryDiffs(xa, xb []record.Entry) []entryPair {
	ma := map[string]*record.Entry{}
	for i := range xa {
		ma[xa[i].Path] = &xa[i]
	}
	mb := map[string]*record.Entry{}
	for i := range xb {
		mb[xb[i].Path] = &xb[i]
	}
	var paths []string
	for p := range ma {
		paths = append(paths, p)
	}
	for p := range mb {
		if ma[p] == nil {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	var out []entryPair
	for _, p := range paths {
		x, y := ma[p], mb[p]
		if x != nil && y != nil && *x == *y {
			continue
		}
		out = append(out, entryPair{p, x, y})
	}
	return out
}

func entryDesc(e *record.Entry) string {
	if e == nil {
		return ""
	}
	s := fmt.Sprintf("%s %04o", e.Type, uint32(e.Mode.Perm())|uint32(e.Mode)&0o7000)
	switch e.Type {
	case record.TypeFile:
		s += fmt.Sprintf(" %d bytes %s", e.Size, e.Digest)
	case record.TypeSymlink:
		s += " -> " + e.Target
	}
	return s
}

func inputDiffs(x, y *record.Action) []Item {
	var out []Item
	if x.Kind != y.Kind || x.Version != y.Version || x.Image != y.Image {
		out = append(out, Item{Where: "kind/version/image", A: fmt.Sprintf("%s %s %s", x.Kind, x.Version, x.Image), B: fmt.Sprintf("%s %s %s", y.Kind, y.Version, y.Image)})
	}
	ia := map[string]record.Input{}
	for _, in := range x.Inputs {
		ia[in.Name] = in
	}
	ib := map[string]record.Input{}
	for _, in := range y.Inputs {
		ib[in.Name] = in
	}
	names := map[string]bool{}
	for k := range ia {
		names[k] = true
	}
	for k := range ib {
		names[k] = true
	}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		p, q := ia[n], ib[n]
		if p != q {
			out = append(out, Item{Where: "input " + n, A: strings.TrimSpace(string(p.Digest) + " " + p.Source), B: strings.TrimSpace(string(q.Digest) + " " + q.Source)})
		}
	}
	if len(out) == 0 {
		out = append(out, Item{Where: "inputs are equal: the key differs by parameters not listed in build.json"})
	}
	return out
}

func fetchAndCompare(ctx context.Context, opt *RecordOptions, action string, ea, eb record.Entry, o *Options) (*Report, error) {
	pa, err := opt.Fetch(ctx, 0, action, ea)
	if err != nil {
		return nil, err
	}
	pb, err := opt.Fetch(ctx, 1, action, eb)
	if err != nil {
		return nil, err
	}
	if pa == "" || pb == "" {
		return nil, fmt.Errorf("the content of %s is not available on both sides", ea.Path)
	}
	sub := &Report{A: "A/" + ea.Path, B: "B/" + eb.Path}
	if err := compareFile(ctx, pa, pb, ea.Size, eb.Size, sub, o); err != nil {
		return nil, err
	}
	return sub, nil
}

func artifactStep(p [2]*record.Artifact) string {
	if p[0] != nil {
		return p[0].Step
	}
	return p[1].Step
}
