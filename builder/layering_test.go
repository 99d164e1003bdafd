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

// artifactLibs are pure format code (bytes in, bytes out). Each has its
// own row in allowed; the list also defines what actions, the CLI and diff
// may reach and what must never depend on the build machinery.
var artifactLibs = []string{
	"builder/kernel", "builder/igvm", "builder/snp", "builder/acpi", "builder/igvmgen",
	"builder/verity", "builder/disk", "builder/ext4", "builder/rootfs",
}

// leaves are small stdlib-only packages any layer may use.
var leaves = []string{"builder/atomicfile", "builder/filemode"}

// artifactLeafModules are the third-party modules an unlisted builder
// package (a new format) may use before it gets its own row.
var artifactLeafModules = []string{"github.com/klauspost/compress/", "golang.org/x/sync/", "golang.org/x/sys/"}

// allowed lists, per package (or package tree, with a trailing "/"), the
// non-standard imports it may use directly: module packages relative to
// the module root, third-party ones as full path prefixes. This is the
// "Allowed imports" column of style.md §2.
var allowed = map[string][]string{
	"cmd/uvmbuild": {"cmd/uvmbuild/cli"},
	// The CLI reaches executors only through recipes: never builder/actions
	// or builder/sandbox directly. The libraries are those of its standalone
	// commands (igvm, measure, inspect, verity, image).
	"cmd/uvmbuild/cli": {"recipes", "recipes/", "builder/graph", "builder/cache", "builder/progress",
		"builder/record", "builder/diff", "builder/attest", "builder/deploy", "builder/images", "builder/lockfile",
		"builder/igvmgen", "builder/igvm", "builder/verity", "builder/disk/image", "builder/acpi/iasl", "builder/rootfs",
		"builder/atomicfile", "github.com/spf13/", "golang.org/x/term", "github.com/opencontainers/go-digest"},
	"recipes":          {"builder/graph"},
	"recipes/":         {"recipes", "builder/graph", "builder/actions", "builder/lockfile", "builder/images", "policy", "github.com/opencontainers/go-digest"},
	"policy":           {"github.com/open-policy-agent/opa/", "github.com/opencontainers/go-digest"},
	"builder/graph":    {"builder/progress", "builder/record", "builder/atomicfile", "builder/filemode", "github.com/opencontainers/go-digest", "golang.org/x/sync/", "golang.org/x/sys/unix"},
	"builder/cache":    {"builder/atomicfile", "builder/filemode", "github.com/opencontainers/go-digest", "github.com/gofrs/flock", "golang.org/x/sys/unix"},
	"builder/progress": {"golang.org/x/term"},
	"builder/record":   {"builder/atomicfile", "github.com/opencontainers/go-digest"},
	"builder/lockfile": {"builder/atomicfile", "github.com/opencontainers/go-digest"},
	"builder/sandbox":  {"github.com/opencontainers/runtime-spec/"},
	"builder/images":   {"builder/lockfile", "github.com/google/go-containerregistry/", "github.com/klauspost/compress/", "github.com/opencontainers/go-digest"},
	"builder/actions": append([]string{"builder/graph", "builder/sandbox", "builder/images", "builder/lockfile",
		"github.com/opencontainers/go-digest"}, libsSlash()...),
	// attest reads and writes the measurement JSON through igvmgen, which
	// owns that format.
	"builder/attest": {"builder/record", "builder/igvmgen", "builder/snp", "builder/atomicfile", "github.com/in-toto/attestation/", "github.com/veraison/go-cose",
		"google.golang.org/protobuf/"},
	"builder/diff":     {"builder/record", "builder/igvm", "builder/disk", "builder/verity", "builder/rootfs", "github.com/klauspost/compress/"},
	"builder/deploy":   {},
	"builder/regcache": {"builder/cache", "github.com/google/go-containerregistry/", "github.com/opencontainers/go-digest"},

	// Artifact libraries and leaves: stdlib unless listed.
	"builder/atomicfile":   {},
	"builder/filemode":     {},
	"builder/kernel":       {},
	"builder/igvm":         {},
	"builder/snp":          {},
	"builder/snp/pagehash": {"golang.org/x/sys/cpu"},
	"builder/acpi":         {},
	"builder/acpi/clh":     {},
	// iasl runs the iasl compiler: only actions and the CLI use it, never
	// igvmgen.
	"builder/acpi/iasl": {"builder/acpi"},
	// igvmgen maps the kernel and starts the output's writeback early
	// (mmap, sync_file_range).
	"builder/igvmgen": {"builder/igvm", "builder/snp", "builder/snp/pagehash", "builder/kernel", "builder/acpi",
		"builder/acpi/clh", "builder/atomicfile", "golang.org/x/sys/unix"},
	"builder/verity": {"golang.org/x/sync/"},
	"builder/disk":   {},
	// ext4 runs mkfs.ext4 (os/exec, allowed here and for disk/image only).
	"builder/ext4":       {},
	"builder/disk/image": {"builder/disk", "builder/ext4", "builder/rootfs", "builder/verity"},
	"builder/rootfs":     {"builder/filemode", "github.com/klauspost/compress/", "golang.org/x/sys/unix"},
}

// libsSlash returns the artifact libraries as package-tree prefixes.
func libsSlash() []string {
	var out []string
	for _, l := range append(artifactLibs, leaves...) {
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
	// Pure format code runs no tools: only ext4, disk/image and acpi/iasl
	// (and the machinery above them) may reach os/exec.
	{[]string{"builder/verity", "builder/verity/", "builder/igvm", "builder/igvm/", "builder/snp", "builder/snp/",
		"builder/kernel", "builder/kernel/", "builder/igvmgen", "builder/igvmgen/", "builder/disk", "builder/rootfs",
		"builder/rootfs/", "builder/acpi", "builder/acpi/clh", "builder/atomicfile", "builder/filemode", "builder/attest", "builder/record",
		"builder/lockfile", "builder/diff"}, []string{"os/exec"}},
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
	for _, l := range append(artifactLibs, leaves...) {
		if _, ok := allowed[l]; !ok {
			t.Errorf("%s has no row of its own in allowed", l)
		}
	}
	if r, _ := rulesFor("builder/igvmgen"); matches("builder/acpi/iasl", r) || !matches("builder/snp/pagehash", r) {
		t.Error("igvmgen rules wrong: it may use pagehash but never run iasl")
	}
	if r, _ := rulesFor("builder/atomicfile"); len(r) != 0 {
		t.Errorf("atomicfile may import %v, want the standard library only", r)
	}
	if isStd("github.com/x/y") || !isStd("os/exec") {
		t.Error("isStd")
	}
}
