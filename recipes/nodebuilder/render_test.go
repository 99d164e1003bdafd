package nodebuilder

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/recipes"
)

// allSteps returns every step reachable from the plan's artifacts, inputs
// before consumers, ties in first-visit order.
func allSteps(p *recipes.Plan) []*graph.Step {
	var out []*graph.Step
	seen := map[*graph.Step]bool{}
	var visit func(s *graph.Step)
	visit = func(s *graph.Step) {
		if seen[s] {
			return
		}
		seen[s] = true
		for _, in := range s.Inputs {
			if in.From != nil {
				visit(in.From)
			}
		}
		out = append(out, s)
	}
	for _, s := range p.Steps() {
		visit(s)
	}
	return out
}

// render prints a plan for golden files: every step with its exact command
// (the container script verbatim), params, inputs and outputs, then the
// artifacts, clean paths and record. Host paths are shown relative to base.
//
// Values owned by other packages or by the machine's tools are masked so that
// the goldens pin only what this recipe decides: the policy bytes and digest
// (package policy), the CLH ACPI sources digest (builder/acpi/clh), and the
// iasl and mke2fs versions keyed into the IGVM and image steps.
func render(p *recipes.Plan, base string) string {
	out := renderRaw(p, base)
	if d := p.Record["policy.digest"]; d != "" {
		out = strings.ReplaceAll(out, d, "<policy digest>")
	}
	if v := p.Record["iasl.version"]; v != "" {
		out = strings.ReplaceAll(out, `"`+v+`"`, `"<iasl version>"`)
		out = strings.ReplaceAll(out, "iasl.version = "+v, "iasl.version = <iasl version>")
	}
	return out
}

func renderRaw(p *recipes.Plan, base string) string {
	var b strings.Builder
	for _, s := range allSteps(p) {
		fmt.Fprintf(&b, "== step %s\n", s.ID)
		fmt.Fprintf(&b, "   description: %s\n", s.Meta.Description)
		version := s.Spec.Version
		switch s.Spec.Kind {
		case "go/image":
			version = "<image action version>"
		case "go/igvm-verity":
			version = strings.SplitN(version, "+", 2)[0] + "+<igvm action version>"
		}
		fmt.Fprintf(&b, "   kind: %s (version %s)\n", s.Spec.Kind, version)
		if s.Spec.Image != "" {
			fmt.Fprintf(&b, "   image: %s\n", s.Spec.Image)
		}
		keys := make([]string, 0, len(s.Spec.Params))
		for k := range s.Spec.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := s.Spec.Params[k]
			switch {
			case k == "clh_sources":
				fmt.Fprintf(&b, "   %s: <digest of builder/acpi/clh sources>\n", k)
				continue
			case s.Spec.Kind == fileKind && k == "content":
				fmt.Fprintf(&b, "   %s: <policy bytes>\n", k)
				continue
			}
			if str, ok := v.(string); ok && strings.Contains(str, "\n") {
				fmt.Fprintf(&b, "   %s: |\n", k)
				for _, line := range strings.Split(strings.TrimSuffix(str, "\n"), "\n") {
					fmt.Fprintf(&b, "     %s\n", line)
				}
				continue
			}
			j, _ := json.Marshal(v)
			fmt.Fprintf(&b, "   %s: %s\n", k, j)
		}
		for _, in := range s.Inputs {
			switch {
			case in.From != nil && in.Output != "":
				fmt.Fprintf(&b, "   input %s <- %s:%s\n", in.Name, in.From.ID, in.Output)
			case in.From != nil:
				fmt.Fprintf(&b, "   input %s <- %s\n", in.Name, in.From.ID)
			default:
				rel, err := filepath.Rel(base, in.Path)
				if err != nil {
					rel = in.Path
				}
				fmt.Fprintf(&b, "   input %s <- path %s (ignore %s)\n", in.Name, filepath.ToSlash(rel), strings.Join(in.Ignore, " "))
			}
		}
		fmt.Fprintf(&b, "   outputs: %s\n", strings.Join(s.Outputs, " "))
	}
	b.WriteString("== artifacts\n")
	for _, a := range p.Artifacts {
		fmt.Fprintf(&b, "   %s <- %s:%s\n", a.As, a.Step.ID, a.Output)
	}
	if len(p.Clean) > 0 {
		fmt.Fprintf(&b, "== clean\n   %s\n", strings.Join(p.Clean, " "))
	}
	b.WriteString("== record\n")
	rk := make([]string, 0, len(p.Record))
	for k := range p.Record {
		rk = append(rk, k)
	}
	sort.Strings(rk)
	for _, k := range rk {
		v := p.Record[k]
		if strings.HasPrefix(v, base) {
			v = "<base>" + strings.TrimPrefix(v, base)
		}
		fmt.Fprintf(&b, "   %s = %s\n", k, v)
	}
	return b.String()
}
