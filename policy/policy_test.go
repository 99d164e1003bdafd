package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

func TestBuiltinsLoad(t *testing.T) {
	for _, name := range BuiltinNames() {
		src, ok := Builtin(name)
		if !ok {
			t.Fatalf("Builtin(%q) missing", name)
		}
		p, err := Load(name, src)
		if err != nil {
			t.Fatalf("Load(%q): %v", name, err)
		}
		sum := sha256.Sum256(src)
		if got, want := p.Digest().String(), "sha256:"+hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s digest %s, want %s", name, got, want)
		}
		if p.Name() != name {
			t.Errorf("Name() = %q, want %q", p.Name(), name)
		}
		// Every request the agent queries is defined explicitly, so no
		// request falls through to the agent's "undefined" error path.
		for _, req := range Requests() {
			if !slices.Contains(p.Rules(), req) {
				t.Errorf("%s does not define %s", name, req)
			}
		}
		// Both dialects must accept the builtins (agent: v0; OPA 1.x: v1).
		if _, err := ast.ParseModuleWithOpts(name, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1}); err != nil {
			t.Errorf("%s is not valid rego v1: %v", name, err)
		}
	}
	if _, ok := Builtin("allow-all-except-exec-process.rego"); ok {
		t.Error("Builtin returned a policy this project does not ship")
	}
	a, _ := Builtin("allow-all.rego")
	a[0] = 'X'
	if b, _ := Builtin("allow-all.rego"); b[0] == 'X' {
		t.Error("Builtin returned shared bytes")
	}
}

func TestBuiltinsEvaluate(t *testing.T) {
	ctx := context.Background()
	for _, version := range []ast.RegoVersion{ast.RegoV0, ast.RegoV1} {
		for _, tc := range []struct {
			file    string
			allowed func(req string) bool
		}{
			{"allow-all.rego", func(string) bool { return true }},
			{"allow-set-policy.rego", func(req string) bool { return req == "SetPolicyRequest" }},
		} {
			src, _ := Builtin(tc.file)
			for _, req := range Requests() {
				got := evalRule(ctx, t, version, tc.file, src, req)
				if got != tc.allowed(req) {
					t.Errorf("%v %s: %s = %v, want %v", version, tc.file, req, got, tc.allowed(req))
				}
			}
			// The agent asks this once per loaded policy; true would turn
			// every denial into a logged allow.
			if evalRule(ctx, t, version, tc.file, src, "AllowRequestsFailingPolicy") {
				t.Errorf("%v %s: AllowRequestsFailingPolicy is true", version, tc.file)
			}
		}
	}
}

// evalRule evaluates data.agent_policy.<rule> as the agent does, with a
// request-shaped input; undefined counts as denied.
func evalRule(ctx context.Context, t *testing.T, version ast.RegoVersion, file string, src []byte, rule string) bool {
	t.Helper()
	r := rego.New(
		rego.Query("data."+PackageName+"."+rule),
		rego.Module(file, string(src)),
		rego.SetRegoVersion(version),
		rego.Input(map[string]any{"container_id": "c1", "exec_id": "e1"}),
	)
	rs, err := r.Eval(ctx)
	if err != nil {
		t.Fatalf("eval %s in %s: %v", rule, file, err)
	}
	if len(rs) == 0 {
		return false
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		t.Fatalf("eval %s in %s: unexpected result %v", rule, file, rs)
	}
	b, ok := rs[0].Expressions[0].Value.(bool)
	if !ok {
		t.Fatalf("eval %s in %s: non-boolean %v", rule, file, rs[0].Expressions[0].Value)
	}
	return b
}

func TestLoadRejects(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src      string
		wantLine int
		want     []string
	}{
		{
			name:     "syntax",
			src:      "package agent_policy\n\ndefault CreateContainerRequest := true\ndefault ExecProcessRequest := }\ndefault SetPolicyRequest := true\n",
			wantLine: 4,
			want:     []string{"syntax.rego:4:", "rego_parse_error"},
		},
		{
			name:     "package",
			src:      "package kata_policy\n\ndefault CreateContainerRequest := true\n",
			wantLine: 1,
			want:     []string{"package.rego:1:", "package is kata_policy, want agent_policy"},
		},
		{
			name:     "misspelt",
			src:      "package agent_policy\n\ndefault SetPolicyRequest := true\n\ndefault CreateContainerReqest := true\n",
			wantLine: 5,
			want:     []string{"misspelt.rego:5:", "CreateContainerReqest", "did you mean CreateContainerRequest?"},
		},
		{
			name:     "case",
			src:      "package agent_policy\n\nexecProcessRequest := true\n",
			wantLine: 3,
			want:     []string{"did you mean ExecProcessRequest?"},
		},
		{
			name:     "suffix-typo",
			src:      "package agent_policy\n\nCreateContainerRequests := true\n",
			wantLine: 3,
			want:     []string{"did you mean CreateContainerRequest?"},
		},
		{
			name:     "unsafe",
			src:      "package agent_policy\n\nimport rego.v1\n\nExecProcessRequest if {\n\tx == input.process\n}\n",
			wantLine: 6,
			want:     []string{"rego_unsafe_var_error"},
		},
		{
			name:     "v1-only",
			src:      "package agent_policy\n\nExecProcessRequest if {\n\tinput.process\n}\n",
			wantLine: 3,
			want:     []string{"rego_parse_error", "add `import rego.v1`"},
		},
		{
			name:     "default-type",
			src:      "package agent_policy\n\ndefault ExecProcessRequest := \"yes\"\n",
			wantLine: 3,
			want:     []string{"only a boolean or an object"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.name + ".rego"
			_, err := Load(file, []byte(tc.src))
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not match ErrInvalid: %v", err)
			}
			var ce *CheckError
			if !errors.As(err, &ce) {
				t.Fatalf("error is not a *CheckError: %v", err)
			}
			if ce.Line != tc.wantLine || ce.File != file {
				t.Errorf("first problem at %s:%d, want %s:%d (%v)", ce.File, ce.Line, file, tc.wantLine, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadAccepts(t *testing.T) {
	for _, tc := range []struct{ name, src string }{
		{"helpers", `package agent_policy

import future.keywords.in
import future.keywords.if

default CreateContainerRequest := false
default AllowRequestsFailingPolicy := false

CreateContainerRequest if {
	CreateContainerRequestCommon
}

CreateContainerRequestCommon if {
	input.container_id in policy_data.ids
}

S_NAME_KEY := "io.kubernetes.pod.name"

policy_data := {"ids": ["c1"]}
`},
		{"rego-v1-import", `package agent_policy

import rego.v1

default ExecProcessRequest := false

ExecProcessRequest if {
	input.process.Args[0] == "/bin/true"
}
`},
		{"v0-style", `package agent_policy

default ExecProcessRequest = false

ExecProcessRequest {
	input.process.Args[0] == "/bin/true"
}
`},
		{"metadata-object", `package agent_policy

default CreateContainerRequest := {"allowed": false}
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Load(tc.name+".rego", []byte(tc.src)); err != nil {
				t.Fatalf("Load: %v", err)
			}
		})
	}
}

func TestLoadName(t *testing.T) {
	src, _ := Builtin("allow-all.rego")
	for _, name := range []string{"", "../allow-all.rego", "dir/allow-all.rego", "allow-all.txt", "."} {
		if _, err := Load(name, src); err == nil {
			t.Errorf("Load(%q) accepted a bad name", name)
		}
	}
}

func TestRequestsSortedUnique(t *testing.T) {
	reqs := Requests()
	if !slices.IsSorted(reqs) || len(slices.Compact(slices.Clone(reqs))) != len(reqs) {
		t.Errorf("Requests() not sorted and unique: %v", reqs)
	}
	for _, r := range reqs {
		if !strings.HasSuffix(r, "Request") {
			t.Errorf("request %q does not end in Request", r)
		}
	}
}
