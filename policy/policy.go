package policy

import (
	"embed"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/opencontainers/go-digest"
)

// PackageName is the rego package the kata agent loads policies into; it
// queries data.<PackageName>.<RequestName>.
const PackageName = "agent_policy"

// builtins are the policies of this project, installed by name.
//
//go:embed allow-all.rego allow-set-policy.rego
var builtins embed.FS

// BuiltinNames returns the names accepted by Builtin, sorted.
func BuiltinNames() []string { return []string{"allow-all.rego", "allow-set-policy.rego"} }

// Builtin returns a copy of the embedded policy called name
// ("allow-all.rego" or "allow-set-policy.rego").
func Builtin(name string) ([]byte, bool) {
	if !slices.Contains(BuiltinNames(), name) {
		return nil, false
	}
	b, err := builtins.ReadFile(name)
	if err != nil {
		return nil, false
	}
	return b, true
}

// Policy is a checked agent policy.
type Policy struct {
	name   string
	src    []byte
	digest digest.Digest
	rules  []string
}

// Name is the policy's file name, as installed under /etc/kata-opa/.
func (p *Policy) Name() string { return p.name }

// Digest is the SHA-256 of the exact bytes installed in the rootfs.
func (p *Policy) Digest() digest.Digest { return p.digest }

// Bytes returns a copy of the policy's bytes.
func (p *Policy) Bytes() []byte { return slices.Clone(p.src) }

// Rules returns the agent rule names the policy defines, sorted. A
// request not listed is denied by the agent (unless the policy sets
// AllowRequestsFailingPolicy).
func (p *Policy) Rules() []string { return slices.Clone(p.rules) }

// CheckError is one problem found in a policy file, with its position.
type CheckError struct {
	File string
	Line int // 1-based; 0 when the problem is not tied to a line
	Msg  string
}

func (e *CheckError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// ErrInvalid marks every error Load returns for a bad policy (as opposed to a
// bad name); match it with errors.Is.
var ErrInvalid = errors.New("invalid agent policy")

// invalid joins problems into one error that matches ErrInvalid and, through
// errors.As, the first *CheckError.
func invalid(problems []*CheckError) error {
	errs := make([]error, 0, len(problems)+1)
	for _, p := range problems {
		errs = append(errs, p)
	}
	return &loadError{errs: errs}
}

type loadError struct{ errs []error }

func (e *loadError) Error() string {
	var b strings.Builder
	for i, err := range e.errs {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e *loadError) Unwrap() []error { return append([]error{ErrInvalid}, e.errs...) }

// Load parses and checks the policy src, named name (a file name such as
// "allow-set-policy.rego"; it is used in messages and as the installed file
// name). See the package documentation for what is checked. Every problem is
// reported, one per line, as "name:line: message".
func Load(name string, src []byte) (*Policy, error) {
	if name == "" || name != path.Base(name) || name == "." || name == ".." || strings.Contains(name, `\`) {
		return nil, fmt.Errorf("policy name %q: must be a plain file name (it is installed as /etc/kata-opa/<name>)", name)
	}
	if !strings.HasSuffix(name, ".rego") {
		return nil, fmt.Errorf("policy name %q: must end in .rego", name)
	}
	mod, err := parse(name, src)
	if err != nil {
		return nil, err
	}
	var problems []*CheckError
	if got := mod.Package.Path.String(); got != "data."+PackageName {
		problems = append(problems, &CheckError{
			File: name, Line: line(mod.Package.Location),
			Msg: fmt.Sprintf("package is %s, want %s (the kata agent queries data.%s.<RequestName>)",
				strings.TrimPrefix(got, "data."), PackageName, PackageName),
		})
	}
	var rules []string
	for _, r := range mod.Rules {
		name, p := checkRule(name, r)
		if p != nil {
			problems = append(problems, p)
			continue
		}
		if name != "" && !slices.Contains(rules, name) {
			rules = append(rules, name)
		}
	}
	if len(problems) == 0 {
		problems = compile(name, mod)
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b *CheckError) int { return a.Line - b.Line })
		return nil, invalid(problems)
	}
	slices.Sort(rules)
	return &Policy{
		name:   name,
		src:    slices.Clone(src),
		digest: digest.FromBytes(src),
		rules:  rules,
	}, nil
}

// parse parses src as rego v0, the agent's dialect. When that fails but the
// module is valid v1, the error says how to make it acceptable.
func parse(name string, src []byte) (*ast.Module, error) {
	mod, err := ast.ParseModuleWithOpts(name, string(src), ast.ParserOptions{RegoVersion: ast.RegoV0})
	if err == nil {
		if mod == nil {
			return nil, invalid([]*CheckError{{File: name, Msg: "empty policy: no package declaration"}})
		}
		return mod, nil
	}
	problems := astProblems(name, err)
	if _, errV1 := ast.ParseModuleWithOpts(name, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1}); errV1 == nil {
		problems = append(problems, &CheckError{File: name, Msg: "the module is valid rego v1 but the kata agent " +
			"(regorus) parses rego v0: add `import rego.v1` after the package line"})
	}
	return nil, invalid(problems)
}

// compile runs OPA's compiler over the module (unsafe variables, type errors,
// recursion, unknown functions), as rego v0.
func compile(name string, mod *ast.Module) []*CheckError {
	c := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV0)
	c.Compile(map[string]*ast.Module{name: mod})
	if !c.Failed() {
		return nil
	}
	return astProblems(name, c.Errors)
}

func astProblems(name string, err error) []*CheckError {
	var errs ast.Errors
	if !errors.As(err, &errs) {
		return []*CheckError{{File: name, Msg: err.Error()}}
	}
	out := make([]*CheckError, 0, len(errs))
	for _, e := range errs {
		ce := &CheckError{File: name, Line: line(e.Location), Msg: e.Code + ": " + e.Message}
		// The parser often reports one mistake twice, the second time with
		// a hint appended; keep the longer one.
		if n := len(out); n > 0 && out[n-1].Line == ce.Line && strings.HasPrefix(ce.Msg, out[n-1].Msg) {
			out[n-1] = ce
			continue
		}
		out = append(out, ce)
	}
	return out
}

func line(loc *ast.Location) int {
	if loc == nil {
		return 0
	}
	return loc.Row
}

// checkRule checks one rule's name (and default value). It returns the
// agent rule name the rule defines, if any.
func checkRule(file string, r *ast.Rule) (string, *CheckError) {
	ref := r.Head.Ref()
	if len(ref) == 0 {
		return "", nil
	}
	v, ok := ref[0].Value.(ast.Var)
	if !ok {
		return "", nil
	}
	name := string(v)
	at := line(r.Location)
	if isAgentRule(name) {
		if len(ref) > 1 {
			return "", &CheckError{File: file, Line: at, Msg: fmt.Sprintf(
				"rule %s: the agent queries %s as a single value, not as %s", name, name, ref)}
		}
		if r.Default && r.Head.Value != nil {
			switch r.Head.Value.Value.(type) {
			case ast.Boolean, ast.Object:
			default:
				return "", &CheckError{File: file, Line: at, Msg: fmt.Sprintf(
					"default %s := %s: the agent accepts only a boolean or an object with an \"allowed\" field",
					name, r.Head.Value)}
			}
		}
		return name, nil
	}
	closest, dist := closestAgentRule(name)
	if isHelperName(name) && dist > 2 {
		return "", nil
	}
	return "", &CheckError{File: file, Line: at, Msg: fmt.Sprintf(
		"rule %s is not a kata agent request (did you mean %s?); helper rules must start with a lower-case letter "+
			"or be ALL_CAPS constants", name, closest)}
}

// isHelperName is the naming convention for rules the agent never queries:
// lower-case or underscore first letter, ALL_CAPS constants, or an agent
// request name with a suffix (CreateContainerRequestCommon).
func isHelperName(name string) bool {
	first := []rune(name)[0]
	if first == '_' || unicode.IsLower(first) {
		return true
	}
	if strings.ToUpper(name) == name {
		return true
	}
	for _, req := range Requests() {
		if strings.HasPrefix(name, req) && len(name) > len(req) {
			return true
		}
	}
	return false
}
