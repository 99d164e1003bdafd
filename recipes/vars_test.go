package recipes_test

import (
	"context"
	"strings"
	"testing"

	"github.com/uvmbuild/uvmbuild/recipes"
)

// fake is a recipe with the node-builder's variable shapes.
type fake struct{}

func (fake) Name() string { return "fake" }
func (fake) Vars() []recipes.Var {
	return []recipes.Var{
		{Name: "BUILD_TYPE", Type: recipes.Enum, Enum: []string{"release", "debug"}, Default: "release"},
		{Name: "CONF_PODS", Type: recipes.Bool, Default: "no"},
		{Name: "IGVM_SVN", Type: recipes.Int, Default: "0"},
		{Name: "PREFIX", Type: recipes.Path},
		{Name: "SHIM_REDEPLOY_CONFIG", Type: recipes.Bool, Default: "yes", IgnoreEnv: true},
		{Name: "AGENT_POLICY_FILE", Type: recipes.String, Derive: func(v recipes.Values) string {
			if v.Get("BUILD_TYPE") == "debug" {
				return "allow-all.rego"
			}
			return "allow-set-policy.rego"
		}},
	}
}
func (fake) Targets() []recipes.Target {
	return []recipes.Target{{Name: "all"}, {Name: "uvm"}, {Name: "uvm-confpods"}, {Name: "package"}, {Name: "clean"}}
}
func (fake) Plan(context.Context, recipes.Env, []string, recipes.Values) (*recipes.Plan, error) {
	return &recipes.Plan{}, nil
}

func TestResolvePrecedence(t *testing.T) {
	cases := []struct {
		name    string
		cmdline []string
		environ []string
		want    map[string]string
		source  map[string]recipes.Source
	}{
		{
			name:   "defaults",
			want:   map[string]string{"BUILD_TYPE": "release", "CONF_PODS": "no", "IGVM_SVN": "0", "PREFIX": "", "AGENT_POLICY_FILE": "allow-set-policy.rego"},
			source: map[string]recipes.Source{"BUILD_TYPE": recipes.FromDefault, "AGENT_POLICY_FILE": recipes.FromDerived},
		},
		{
			name:    "environment beats default",
			environ: []string{"PATH=/bin", "BUILD_TYPE=debug", "CONF_PODS=true"},
			want:    map[string]string{"BUILD_TYPE": "debug", "CONF_PODS": "yes", "AGENT_POLICY_FILE": "allow-all.rego"},
			source:  map[string]recipes.Source{"BUILD_TYPE": recipes.FromEnvironment},
		},
		{
			name:    "command line beats environment",
			cmdline: []string{"BUILD_TYPE=release", "CONF_PODS=1"},
			environ: []string{"BUILD_TYPE=debug", "CONF_PODS=no"},
			want:    map[string]string{"BUILD_TYPE": "release", "CONF_PODS": "yes", "AGENT_POLICY_FILE": "allow-set-policy.rego"},
			source:  map[string]recipes.Source{"BUILD_TYPE": recipes.FromCommandLine, "CONF_PODS": recipes.FromCommandLine},
		},
		{
			name:    "explicit value beats derived",
			cmdline: []string{"BUILD_TYPE=debug"},
			environ: []string{"AGENT_POLICY_FILE=custom.rego"},
			want:    map[string]string{"AGENT_POLICY_FILE": "custom.rego"},
			source:  map[string]recipes.Source{"AGENT_POLICY_FILE": recipes.FromEnvironment},
		},
		{
			name:    "a Makefile-assigned variable ignores the environment",
			environ: []string{"SHIM_REDEPLOY_CONFIG=no"},
			want:    map[string]string{"SHIM_REDEPLOY_CONFIG": "yes"},
			source:  map[string]recipes.Source{"SHIM_REDEPLOY_CONFIG": recipes.FromDefault},
		},
		{
			name:    "but not the command line",
			cmdline: []string{"SHIM_REDEPLOY_CONFIG=no"},
			want:    map[string]string{"SHIM_REDEPLOY_CONFIG": "no"},
		},
		{
			name:    "last command-line assignment wins",
			cmdline: []string{"IGVM_SVN=1", "IGVM_SVN=2"},
			want:    map[string]string{"IGVM_SVN": "2"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vals, src, err := recipes.ResolveSources(fake{}, tc.cmdline, tc.environ)
			if err != nil {
				t.Fatal(err)
			}
			if len(vals) != 6 {
				t.Errorf("resolved %d variables, want all 6", len(vals))
			}
			for k, v := range tc.want {
				if vals[k] != v {
					t.Errorf("%s = %q, want %q", k, vals[k], v)
				}
			}
			for k, s := range tc.source {
				if src[k] != s {
					t.Errorf("source of %s = %q, want %q", k, src[k], s)
				}
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	cases := []struct {
		cmdline, environ []string
		want             string
	}{
		{[]string{"BUILD_TYPE=relase"}, nil, `BUILD_TYPE: invalid value "relase": want one of release, debug`},
		{[]string{"CONF_PODS=maybe"}, nil, `CONF_PODS: invalid value "maybe": want yes or no`},
		{[]string{"IGVM_SVN=x1"}, nil, `IGVM_SVN: invalid value "x1": want an integer`},
		{nil, []string{"IGVM_SVN=one"}, `IGVM_SVN: invalid value "one": want an integer (from the environment)`},
		{[]string{"BUILD_TPYE=debug"}, nil, `unknown variable BUILD_TPYE for recipe fake (did you mean BUILD_TYPE?)`},
		{[]string{"CONF_POD=yes"}, nil, `did you mean CONF_PODS?`},
		{[]string{"ZZZZZZZZ=1"}, nil, `unknown variable ZZZZZZZZ for recipe fake; valid: AGENT_POLICY_FILE, BUILD_TYPE`},
		{[]string{"=x"}, nil, `malformed variable assignment "=x"`},
	}
	for _, tc := range cases {
		_, err := recipes.Resolve(fake{}, tc.cmdline, tc.environ)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Resolve(%v, %v) error = %v, want %q", tc.cmdline, tc.environ, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("error is not one line: %q", err)
		}
	}
	// Undeclared environment variables are ignored, as make ignores them.
	if _, err := recipes.Resolve(fake{}, nil, []string{"BUILD_TPYE=x", "HOME=/root"}); err != nil {
		t.Errorf("undeclared environment variable: %v", err)
	}
}

func TestCheckTargets(t *testing.T) {
	if err := recipes.CheckTargets(fake{}, []string{"all", "uvm"}); err != nil {
		t.Fatal(err)
	}
	for target, want := range map[string]string{
		"uvm-confpod": `unknown target "uvm-confpod" for recipe fake (did you mean uvm-confpods?)`,
		"packge":      `(did you mean package?)`,
		"al":          `(did you mean all?)`,
		"xyzzy":       `; valid: all, clean, package, uvm, uvm-confpods`,
	} {
		err := recipes.CheckTargets(fake{}, []string{"all", target})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("target %q: err = %v, want %q", target, err, want)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	targets, assigns := recipes.SplitArgs([]string{"uvm", "BUILD_TYPE=debug", "x=y=z", "dir/a=b", "all", "_V=1"})
	if strings.Join(targets, ",") != "uvm,dir/a=b,all" {
		t.Errorf("targets %v", targets)
	}
	if strings.Join(assigns, ",") != "BUILD_TYPE=debug,x=y=z,_V=1" {
		t.Errorf("assigns %v", assigns)
	}
}

func TestFindRecipe(t *testing.T) {
	rs := []recipes.Recipe{fake{}}
	if r, err := recipes.Find(rs, "fake"); err != nil || r.Name() != "fake" {
		t.Fatal(err)
	}
	if _, err := recipes.Find(rs, "fak"); err == nil || !strings.Contains(err.Error(), "did you mean fake?") {
		t.Errorf("err = %v", err)
	}
}

func TestBoolCanonical(t *testing.T) {
	v := recipes.Var{Name: "B", Type: recipes.Bool}
	for in, want := range map[string]string{"yes": "yes", "TRUE": "yes", "1": "yes", "no": "no", "false": "no", "0": "no"} {
		if got, err := v.Check(in); err != nil || got != want {
			t.Errorf("Check(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := v.Check(""); err == nil {
		t.Error("empty bool accepted")
	}
}
