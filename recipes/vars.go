package recipes

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// VarType is the type of a variable's value.
type VarType string

// Variable types.
const (
	// String is any text, including empty.
	String VarType = "string"
	// Bool is yes or no; true/false/1/0 (any case) are accepted and
	// canonicalised to yes/no, as the node-builder scripts compare with
	// "yes".
	Bool VarType = "bool"
	// Int is a decimal integer.
	Int VarType = "int"
	// Enum is one of Var.Enum.
	Enum VarType = "enum"
	// Path is a file system path (may be empty).
	Path VarType = "path"
)

// Var is a make-style variable a recipe declares.
type Var struct {
	Name        string
	Description string
	Type        VarType
	// Enum lists the allowed values of an Enum variable.
	Enum []string
	// Default is the value used when neither the command line nor the
	// environment sets the variable (and Derive is nil).
	Default string
	// Derive, if set, computes the default from the other variables, e.g.
	// AGENT_POLICY_FILE from BUILD_TYPE. It sees every non-derived variable
	// and the derived variables declared before this one.
	Derive func(v Values) string
	// IgnoreEnv makes the variable behave like one the node-builder
	// Makefile assigns itself (BUILD_TYPE := release): only the command
	// line overrides it, an environment value is ignored.
	IgnoreEnv bool
}

// Values are resolved variables: every declared variable has a value, in
// canonical form (bools as yes/no).
type Values map[string]string

// Get returns the value of name ("" if undeclared).
func (v Values) Get(name string) string { return v[name] }

// Bool reports whether name is "yes".
func (v Values) Bool(name string) bool { return v[name] == "yes" }

// Int returns name as an integer (0 if it is not one; Resolve has checked
// declared Int variables).
func (v Values) Int(name string) int {
	n, _ := strconv.Atoi(v[name])
	return n
}

// Sorted returns the variable names in sorted order.
func (v Values) Sorted() []string {
	names := make([]string, 0, len(v))
	for n := range v {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Source says where a resolved value came from.
type Source string

// Value sources, by precedence.
const (
	FromCommandLine Source = "command line"
	FromEnvironment Source = "environment"
	FromDerived     Source = "derived"
	FromDefault     Source = "default"
)

// Resolve computes every variable of r: cmdline entries (VAR=value) beat
// environ entries (VAR=value, e.g. os.Environ(); undeclared names there are
// ignored), which beat Derive, which beats Default. A command-line variable
// that r does not declare is an error naming the closest declared ones; a
// value of the wrong type is an error naming the variable and what it
// accepts.
func Resolve(r Recipe, cmdline []string, environ []string) (Values, error) {
	vals, _, err := ResolveSources(r, cmdline, environ)
	return vals, err
}

// ResolveSources is Resolve that also reports where each value came from.
func ResolveSources(r Recipe, cmdline []string, environ []string) (Values, map[string]Source, error) {
	decl := r.Vars()
	byName := make(map[string]*Var, len(decl))
	names := make([]string, 0, len(decl))
	for i := range decl {
		v := &decl[i]
		if _, dup := byName[v.Name]; dup {
			return nil, nil, fmt.Errorf("recipe %s declares variable %s twice", r.Name(), v.Name)
		}
		byName[v.Name] = v
		names = append(names, v.Name)
	}
	set := map[string]string{}
	src := map[string]Source{}
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || byName[name] == nil || byName[name].IgnoreEnv {
			continue
		}
		set[name], src[name] = val, FromEnvironment
	}
	for _, kv := range cmdline {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, nil, fmt.Errorf("malformed variable assignment %q: want VAR=value", kv)
		}
		if byName[name] == nil {
			return nil, nil, fmt.Errorf("unknown variable %s for recipe %s%s", name, r.Name(), suggest(name, names))
		}
		set[name], src[name] = val, FromCommandLine
	}
	vals := make(Values, len(decl))
	for name, raw := range set {
		c, err := byName[name].Check(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("%w (from the %s)", err, src[name])
		}
		vals[name] = c
	}
	for i := range decl {
		v := &decl[i]
		if _, ok := vals[v.Name]; ok || v.Derive != nil {
			continue
		}
		c, err := v.Check(v.Default)
		if err != nil {
			return nil, nil, fmt.Errorf("recipe %s: default of %w", r.Name(), err)
		}
		vals[v.Name], src[v.Name] = c, FromDefault
	}
	for i := range decl {
		v := &decl[i]
		if _, ok := vals[v.Name]; ok || v.Derive == nil {
			continue
		}
		c, err := v.Check(v.Derive(vals))
		if err != nil {
			return nil, nil, fmt.Errorf("recipe %s: derived default of %w", r.Name(), err)
		}
		vals[v.Name], src[v.Name] = c, FromDerived
	}
	return vals, src, nil
}

// Check validates raw against the variable's type and returns its
// canonical form. The error names the variable and what it accepts, e.g.
// `BUILD_TYPE: invalid value "relase": want one of release, debug`.
func (v *Var) Check(raw string) (string, error) {
	switch v.Type {
	case String, Path, "":
		return raw, nil
	case Bool:
		switch strings.ToLower(raw) {
		case "yes", "true", "1", "y", "on":
			return "yes", nil
		case "no", "false", "0", "n", "off":
			return "no", nil
		}
		return "", fmt.Errorf("%s: invalid value %q: want yes or no", v.Name, raw)
	case Int:
		if _, err := strconv.ParseInt(raw, 10, 64); err != nil {
			return "", fmt.Errorf("%s: invalid value %q: want an integer", v.Name, raw)
		}
		return raw, nil
	case Enum:
		if contains(v.Enum, raw) {
			return raw, nil
		}
		hint := ""
		if c := Closest(raw, v.Enum); len(c) > 0 && raw != "" {
			hint = fmt.Sprintf(" (did you mean %s?)", c[0])
		}
		return "", fmt.Errorf("%s: invalid value %q: want one of %s%s", v.Name, raw, strings.Join(v.Enum, ", "), hint)
	}
	return "", fmt.Errorf("%s: unknown variable type %q", v.Name, v.Type)
}

// SplitArgs separates make-style arguments into targets and VAR=value
// assignments: an argument is an assignment when the text before its first
// "=" is a variable name (letters, digits and "_", not starting with a
// digit).
func SplitArgs(args []string) (targets, assigns []string) {
	for _, a := range args {
		if name, _, ok := strings.Cut(a, "="); ok && isVarName(name) {
			assigns = append(assigns, a)
		} else {
			targets = append(targets, a)
		}
	}
	return targets, assigns
}

func isVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
