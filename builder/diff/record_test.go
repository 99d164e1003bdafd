package diff

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/uvmbuild/uvmbuild/builder/record"
)

func build(steps ...record.Action) *record.Build {
	return &record.Build{SchemaVersion: record.SchemaVersion, Recipe: "t", Targets: []string{"all"}, Vars: map[string]string{"V": "1"}, Actions: steps}
}

func fileAction(id, key, path, content string) record.Action {
	return record.Action{ID: id, Kind: "go/test", Key: digest.FromString(key), Outputs: record.Manifest{Entries: []record.Entry{
		{Path: path, Type: record.TypeFile, Mode: 0o644, Digest: digest.FromString(content), Size: int64(len(content))}}}}
}

func TestRecordsFirstDivergence(t *testing.T) {
	a := build(fileAction("src", "k1", "src.txt", "x"), fileAction("stamp", "k2", "stamp.txt", "built 2024-01-01\n"), fileAction("image", "k3a", "img", "A"))
	b := build(fileAction("src", "k1", "src.txt", "x"), fileAction("stamp", "k2", "stamp.txt", "built 2025-06-30\n"), fileAction("image", "k3b", "img", "B"))
	contents := map[digest.Digest]string{}
	for _, s := range []string{"built 2024-01-01\n", "built 2025-06-30\n"} {
		contents[digest.FromString(s)] = s
	}
	dir := t.TempDir()
	fetch := func(ctx context.Context, side int, action string, e record.Entry) (string, error) {
		c, ok := contents[e.Digest]
		if !ok {
			return "", nil
		}
		p := filepath.Join(dir, e.Digest.Encoded())
		return p, os.WriteFile(p, []byte(c), 0o644)
	}
	rr, err := Records(context.Background(), a, b, &RecordOptions{Fetch: fetch})
	if err != nil {
		t.Fatal(err)
	}
	txt := reportText(rr.Report)
	t.Log(txt)
	if rr.First != "stamp" || !rr.SameInputs || len(rr.Diverging) != 2 {
		t.Fatalf("first %q same %v diverging %v", rr.First, rr.SameInputs, rr.Diverging)
	}
	if !strings.Contains(txt, "-built 2024-01-01") || !strings.Contains(txt, "downstream of stamp") {
		t.Errorf("report:\n%s", txt)
	}

	// Equal actions but a different materialised artifact is reported.
	c1, c2 := build(fileAction("src", "k1", "src.txt", "x")), build(fileAction("src", "k1", "src.txt", "x"))
	c1.Artifacts = []record.Artifact{{Name: "src.txt", Step: "src", Output: "src.txt", Type: "file", Digest: digest.FromString("x"), Size: 1}}
	c2.Artifacts = []record.Artifact{{Name: "src.txt", Step: "src", Output: "src.txt", Type: "file", Digest: digest.FromString("y"), Size: 1}}
	if rr, err := Records(context.Background(), c1, c2, nil); err != nil || rr.Same() || rr.First != "" || !strings.HasPrefix(rr.Items[0].Where, "artifact src.txt") {
		t.Errorf("artifact difference: %v %+v", err, rr)
	}

	same, err := Records(context.Background(), a, a, nil)
	if err != nil || !same.Same() || same.First != "" {
		t.Fatalf("same record: %v %+v", err, same)
	}

	c := build()
	c.Targets = []string{"uvm"}
	if _, err := Records(context.Background(), a, c, nil); !errors.Is(err, ErrIncomparable) {
		t.Errorf("different targets: %v", err)
	}
}
