package sample_test

import (
	"context"
	"strings"
	"testing"

	"github.com/uvmbuild/uvmbuild/recipes"
	"github.com/uvmbuild/uvmbuild/recipes/sample"
)

func plan(t *testing.T, targets []string, cmdline ...string) (*recipes.Plan, error) {
	t.Helper()
	r := sample.New()
	vals, err := recipes.Resolve(r, cmdline, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r.Plan(context.Background(), recipes.Env{}, targets, vals)
}

func TestPlanShapes(t *testing.T) {
	p, err := plan(t, []string{"all"}, "COUNT=4")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Artifacts) != 2 || p.Artifacts[0].As != "sample-report.txt" || p.Record["sample.count"] != "4" {
		t.Errorf("all: %+v", p)
	}
	combine := p.Artifacts[0].Step
	if len(combine.Inputs) != 5 || combine.Inputs[4].From == nil || combine.Inputs[4].From.Inputs[0].From.ID != "sample/generate-4" {
		t.Errorf("combine is not wired to 4 transforms of 4 generates")
	}
	p, _ = plan(t, []string{"all"}, "BUILD_TYPE=debug")
	if p.Artifacts[0].As != "sample-report-debug.txt" {
		t.Errorf("derived SUFFIX not used: %s", p.Artifacts[0].As)
	}
	p, _ = plan(t, []string{"parts", "clean"}, "COUNT=2")
	if len(p.Artifacts) != 2 || len(p.Clean) == 0 {
		t.Errorf("parts clean: %+v", p)
	}
	if _, err := plan(t, []string{"all"}, "COUNT=101"); err == nil || !strings.Contains(err.Error(), "COUNT: 101 out of range") {
		t.Errorf("COUNT=101: %v", err)
	}
}
