package sample

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/recipes"
)

// Executor versions: bump when the bytes a step writes change.
const (
	generateVersion  = "1"
	transformVersion = "1"
	combineVersion   = "1"
)

// Recipe is the sample recipe.
type Recipe struct{}

// New returns the sample recipe.
func New() *Recipe { return &Recipe{} }

var _ recipes.Recipe = (*Recipe)(nil)

// Name is "sample".
func (*Recipe) Name() string { return "sample" }

// Vars declares COUNT, STYLE, GREETING, BUILD_TYPE, SUFFIX, SLEEP_MS, FAIL,
// NOTES.
func (*Recipe) Vars() []recipes.Var {
	return []recipes.Var{
		{Name: "COUNT", Type: recipes.Int, Default: "3", Description: "number of parts to generate (1-100)"},
		{Name: "STYLE", Type: recipes.Enum, Enum: []string{"plain", "shout"}, Default: "plain", Description: "how parts are transformed"},
		{Name: "GREETING", Type: recipes.String, Default: "hello", Description: "text each part starts with"},
		{Name: "BUILD_TYPE", Type: recipes.Enum, Enum: []string{"release", "debug"}, Default: "release", Description: "release or debug"},
		{Name: "SUFFIX", Type: recipes.String, Description: "report name suffix (default: -debug for BUILD_TYPE=debug)",
			Derive: func(v recipes.Values) string {
				if v.Get("BUILD_TYPE") == "debug" {
					return "-debug"
				}
				return ""
			}},
		{Name: "SLEEP_MS", Type: recipes.Int, Default: "0", Description: "milliseconds each transform step sleeps (to watch parallelism)"},
		{Name: "FAIL", Type: recipes.String, Default: "", Description: "ID of a step to make fail (to see failure handling)"},
		{Name: "NOTES", Type: recipes.Path, Default: "", Description: "file appended to the report (relative to the project directory)"},
	}
}

// Targets declares all, parts and clean.
func (*Recipe) Targets() []recipes.Target {
	return []recipes.Target{
		{Name: "all", Description: "the combined report and the parts directory"},
		{Name: "parts", Description: "the transformed parts only"},
		{Name: "clean", Description: "remove the sample's artifacts from the output directory"},
	}
}

// Plan builds the graph for targets.
func (r *Recipe) Plan(ctx context.Context, env recipes.Env, targets []string, v recipes.Values) (*recipes.Plan, error) {
	n := v.Int("COUNT")
	if n < 1 || n > 100 {
		return nil, fmt.Errorf("COUNT: %d out of range: want 1 to 100", n)
	}
	sleep := v.Int("SLEEP_MS")
	if sleep < 0 {
		return nil, fmt.Errorf("SLEEP_MS: %d is negative", sleep)
	}
	fail := v.Get("FAIL")
	var parts []*graph.Step
	for i := 1; i <= n; i++ {
		gen := &graph.Step{
			ID:      fmt.Sprintf("sample/generate-%d", i),
			Meta:    graph.Meta{Description: fmt.Sprintf("generate part %d", i)},
			Spec:    graph.Spec{Kind: "sample/generate", Version: generateVersion, Params: map[string]any{"index": i, "greeting": v.Get("GREETING")}},
			Outputs: []string{"part.txt"},
			Exec:    executor(generate, fail),
		}
		tr := &graph.Step{
			ID:      fmt.Sprintf("sample/transform-%d", i),
			Meta:    graph.Meta{Description: fmt.Sprintf("transform part %d (%s)", i, v.Get("STYLE"))},
			Spec:    graph.Spec{Kind: "sample/transform", Version: transformVersion, Params: map[string]any{"style": v.Get("STYLE"), "sleepMS": sleep}},
			Inputs:  []graph.Input{{Name: "part", From: gen, Output: "part.txt"}},
			Outputs: []string{"part.txt"},
			Exec:    executor(transform, fail),
		}
		parts = append(parts, tr)
	}
	combine := &graph.Step{
		ID:      "sample/combine",
		Meta:    graph.Meta{Description: fmt.Sprintf("combine %d parts", n)},
		Spec:    graph.Spec{Kind: "sample/combine", Version: combineVersion, Params: map[string]any{"count": n}},
		Inputs:  []graph.Input{{Name: "title", Blob: []byte(fmt.Sprintf("sample report (%s)\n", v.Get("BUILD_TYPE")))}},
		Outputs: []string{"report.txt", "parts"},
		Exec:    executor(combineParts, fail),
	}
	for i, p := range parts {
		combine.Inputs = append(combine.Inputs, graph.Input{Name: fmt.Sprintf("part-%03d", i+1), From: p, Output: "part.txt"})
	}
	if notes := v.Get("NOTES"); notes != "" {
		if !filepath.IsAbs(notes) {
			notes = filepath.Join(env.ProjectDir, notes)
		}
		if fi, err := os.Stat(notes); err != nil || !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("NOTES: %s is not a readable file", v.Get("NOTES"))
		}
		combine.Inputs = append(combine.Inputs, graph.Input{Name: "notes", Path: notes})
	}
	plan := &recipes.Plan{Record: map[string]string{"sample.count": strconv.Itoa(n)}}
	report := "sample-report" + v.Get("SUFFIX") + ".txt"
	for _, t := range targets {
		switch t {
		case "all":
			plan.Artifacts = append(plan.Artifacts,
				recipes.Artifact{Step: combine, Output: "report.txt", As: report},
				recipes.Artifact{Step: combine, Output: "parts", As: "sample-parts"})
		case "parts":
			for i, p := range parts {
				plan.Artifacts = append(plan.Artifacts, recipes.Artifact{Step: p, Output: "part.txt", As: fmt.Sprintf("sample-parts/part-%03d.txt", i+1)})
			}
		case "clean":
			plan.Clean = append(plan.Clean, "sample-report.txt", "sample-report-debug.txt", "sample-parts")
		default:
			return nil, fmt.Errorf("sample: unknown target %q", t)
		}
	}
	return plan, nil
}

// executor wraps f so that the step named by FAIL fails, after writing to
// its log.
func executor(f graph.ExecFunc, fail string) graph.Executor {
	return graph.ExecFunc(func(ctx context.Context, x *graph.Exec) error {
		if fail != "" && x.Step.ID == fail {
			for i := 1; i <= 50; i++ {
				fmt.Fprintf(x.Log, "%s: log line %d\n", x.Step.ID, i)
			}
			return fmt.Errorf("failing as asked by FAIL=%s", fail)
		}
		return f(ctx, x)
	})
}

func generate(ctx context.Context, x *graph.Exec) error {
	p := x.Step.Spec.Params
	text := fmt.Sprintf("%v %v\n", p["greeting"], p["index"])
	fmt.Fprintf(x.Log, "generated %q\n", text)
	return os.WriteFile(filepath.Join(x.OutDir, "part.txt"), []byte(text), 0o644)
}

func transform(ctx context.Context, x *graph.Exec) error {
	if ms, _ := x.Step.Spec.Params["sleepMS"].(int); ms > 0 {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	data, err := os.ReadFile(x.Inputs["part"])
	if err != nil {
		return err
	}
	if x.Step.Spec.Params["style"] == "shout" {
		data = bytes.ToUpper(bytes.TrimRight(data, "\n"))
		data = append(data, "!\n"...)
	}
	fmt.Fprintf(x.Log, "transformed %d bytes\n", len(data))
	return os.WriteFile(filepath.Join(x.OutDir, "part.txt"), data, 0o644)
}

func combineParts(ctx context.Context, x *graph.Exec) error {
	title, err := os.ReadFile(x.Inputs["title"])
	if err != nil {
		return err
	}
	var names []string
	for name := range x.Inputs {
		if strings.HasPrefix(name, "part-") {
			names = append(names, name)
		}
	}
	// Input names are zero-padded: lexical order is part order.
	sort.Strings(names)
	report := append([]byte(nil), title...)
	dir := filepath.Join(x.OutDir, "parts")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	for _, name := range names {
		data, err := os.ReadFile(x.Inputs[name])
		if err != nil {
			return err
		}
		report = append(report, data...)
		if err := os.WriteFile(filepath.Join(dir, name+".txt"), data, 0o644); err != nil {
			return err
		}
	}
	if p, ok := x.Inputs["notes"]; ok {
		notes, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		report = append(report, notes...)
	}
	fmt.Fprintf(x.Log, "combined %d parts\n", len(names))
	return os.WriteFile(filepath.Join(x.OutDir, "report.txt"), report, 0o644)
}
