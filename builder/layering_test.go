package builder_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/uvmbuild/uvmbuild/"

// artifactLibs may import only each other and a few leaf modules: they
// are pure format code (bytes in, bytes out).
var artifactLibs = []string{
	"builder/kernel", "builder/igvm", "builder/snp", "builder/acpi", "builder/igvmgen",
	"builder/verity", "builder/disk", "builder/ext4", "builder/rootfs",
}

var artifactLeafModules = []string{"github.com/klauspost/compress/", "golang.org/x/sync/", "golang.org/x/sys/"}

// allowed lists, per package (or package tree, with a trailing "/"), the
// non-standard imports it may use directly: module packages relative to
// the module root, third-party ones as full path prefixes. This is the
// "Allowed imports" column of style.md §2.
var allowed = map[string][]string{
	"cmd/uvmbuild": {"cmd/uvmbuild/cli"},
	// The CLI reaches executors only through recipes: never builder/actions
	// or builder/sandbox directly.
	"cmd/uvmbuild/cli": append([]string{"recipes", "recipes/", "builder/graph", "builder/cache", "builder/progress",
		"builder/record", "builder/diff", "builder/attest", "builder/deploy", "builder/images", "builder/lockfile",
		"github.com/spf13/", "golang.org/x/term", "github.com/opencontainers/go-digest"}, libsSlash()...),
	"recipes":          {"builder/graph"},
	"recipes/":         {"recipes", "builder/graph", "builder/actions", "builder/lockfile", "builder/images", "policy", "github.com/opencontainers/go-digest"},
	"policy":           {"github.com/open-policy-agent/opa/", "github.com/opencontainers/go-digest"},
	"builder/graph":    {"builder/progress", "builder/record", "github.com/opencontainers/go-digest", "golang.org/x/sync/", "golang.org/x/sys/unix"},
	"builder/cache":    {"github.com/opencontainers/go-digest", "github.com/gofrs/flock", "golang.org/x/sys/unix"},
	"builder/progress": {"golang.org/x/term"},
	"builder/record":   {"github.com/opencontainers/go-digest"},
	"builder/lockfile": {"github.com/opencontainers/go-digest"},
	"builder/sandbox":  {"github.com/opencontainers/runtime-spec/"},
	"builder/images":   {"builder/lockfile", "github.com/google/go-containerregistry/", "github.com/klauspost/compress/", "github.com/opencontainers/go-digest"},
	"builder/actions": append([]string{"builder/graph", "builder/sandbox", "builder/images", "builder/lockfile",
		"github.com/opencontainers/go-digest"}, libsSlash()...),
	"builder/attest":   {"builder/record", "github.com/in-toto/attestation/", "github.com/veraison/go-cose", "google.golang.org/protobuf/"},
	"builder/diff":     append([]string{"builder/record", "github.com/klauspost/compress/"}, libsSlash()...),
	"builder/deploy":   {"builder/record", "github.com/opencontainers/go-digest"},
	"builder/regcache": {"builder/cache", "github.com/google/go-containerregistry/", "github.com/opencontainers/go-digest"},
}

// libsSlash returns the artifact libraries as package-tree prefixes.
func libsSlash() []string {
	var out []string
	for _, l := range artifactLibs {
		out = append(out, l, l+"/")
	}
	return out
}

// denied lists, per package tree, module packages and modules that must not
// appear anywhere in its transitive dependencies.
var denied = []struct {
	pkgs []string
	deps []string
}{
	{libsSlash(), []string{"builder/graph", "builder/cache", "builder/sandbox", "builder/actions", "builder/images",
		"recipes", "cmd/", "github.com/spf13/cobra"}},
	{[]string{"builder/verity", "builder/igvm", "builder/snp", "builder/kernel"}, []string{"os/exec"}},
	{[]string{"builder/graph"}, []string{"builder/sandbox", "builder/actions", "builder/images", "builder/cache",
		"recipes", "cmd/", "github.com/spf13/cobra", "github.com/google/go-containerregistry"}},
	{[]string{"builder/cache"}, []string{"builder/graph", "builder/record", "recipes", "cmd/"}},
	{[]string{"builder/progress", "builder/record"}, []string{"builder/graph", "builder/cache", "recipes", "cmd/"}},
	{[]string{"builder/", "recipes", "recipes/", "policy"}, []string{"cmd/", "github.com/spf13/cobra"}},
	{[]string{"builder/"}, []string{"recipes", "recipes/"}},
}

type pkg struct {
	ImportPath string
	Doc        string
	Imports    []string
	Deps       []string
}

// rel strips the module prefix; third-party paths stay as they are.
func rel(p string) string { return strings.TrimPrefix(p, module) }

func isStd(p string) bool { return !strings.Contains(strings.SplitN(p, "/", 2)[0], ".") }

// matches reports whether p (module-relative or full) is one of the
// patterns: an exact path, or a tree when the pattern ends in "/".
func matches(p string, patterns []string) bool {
	for _, pat := range patterns {
		if p == pat || (strings.HasSuffix(pat, "/") && strings.HasPrefix(p, pat)) {
			return true
		}
	}
	return false
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not on PATH; cannot check the layering")
	}
	cmd := exec.Command(gobin, "list", "-e", "-json=ImportPath,Doc,Imports,Deps", module+"...")
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bufio.NewReader(bytes.NewReader(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// rulesFor returns the allow-list of a package: its own row, else its
// tree's row, else (for an unlisted builder package) the artifact-library
// rule.
func rulesFor(p string) ([]string, bool) {
	if r, ok := allowed[p]; ok {
		return r, true
	}
	for k, r := range allowed {
		if strings.HasSuffix(k, "/") && strings.HasPrefix(p, k) {
			return r, true
		}
	}
	if matches(p, libsSlash()) || strings.HasPrefix(p, "builder/") {
		return append(libsSlash(), artifactLeafModules...), true
	}
	return nil, false
}

func TestLayering(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, p := range pkgs {
		name := rel(p.ImportPath)
		if name == "builder" {
			continue
		}
		if p.Doc == "" {
			t.Errorf("%s has no package doc comment (put one in doc.go)", name)
		}
		rules, ok := rulesFor(name)
		if !ok {
			t.Errorf("%s is not in the layering table of builder/layering_test.go (style.md §2): add its row", name)
			continue
		}
		for _, imp := range p.Imports {
			if isStd(imp) || rel(imp) == name {
				continue
			}
			if !matches(rel(imp), rules) {
				t.Errorf("%s imports %s, which style.md §2 does not allow", name, rel(imp))
			}
		}
		for _, d := range denied {
			if !matches(name, d.pkgs) {
				continue
			}
			for _, dep := range p.Deps {
				if matches(rel(dep), d.deps) {
					t.Errorf("%s depends (transitively) on %s, which style.md §2 forbids", name, rel(dep))
				}
			}
		}
	}
}

// TestLayeringRules makes sure the checker itself can fail.
func TestLayeringRules(t *testing.T) {
	if r, _ := rulesFor("builder/verity"); matches("builder/graph", r) {
		t.Error("an artifact library may import the graph")
	}
	if r, _ := rulesFor("builder/newformat"); matches("builder/cache", r) {
		t.Error("an unlisted builder package may import the cache")
	}
	if r, _ := rulesFor("recipes/nodebuilder"); !matches("builder/actions", r) || matches("cmd/uvmbuild/cli", r) {
		t.Error("recipe rules wrong")
	}
	if r, _ := rulesFor("cmd/uvmbuild/cli"); matches("builder/sandbox", r) || matches("builder/actions", r) || !matches("builder/disk/image", r) {
		t.Error("cli rules wrong")
	}
	if isStd("github.com/x/y") || !isStd("os/exec") {
		t.Error("isStd")
	}
}
