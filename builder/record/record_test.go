package record_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/record"
)

func sample() *record.Build {
	return &record.Build{
		SchemaVersion: record.SchemaVersion,
		Recipe:        "demo",
		Targets:       []string{"all"},
		Vars:          map[string]string{"B": "2", "A": "1"},
		Actions: []record.Action{{
			ID: "a", Kind: "k", Key: digest.FromString("k"),
			Inputs:  []record.Input{{Name: "src", Digest: digest.FromString("s"), Source: "file"}},
			Outputs: record.Manifest{Entries: []record.Entry{{Path: "f", Type: record.TypeFile, Mode: 0o644, Digest: digest.FromString("f"), Size: 1}}},
		}},
		Artifacts: []record.Artifact{{Name: "f.img", Step: "a", Output: "f", Type: "file", Digest: digest.FromString("f"), Size: 1}},
		Record:    map[string]string{"policy.digest": "sha256:00"},
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, record.FileName)
	if err := record.Write(p, sample()); err != nil {
		t.Fatal(err)
	}
	b, err := record.Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if b.Action("a") == nil || b.Action("a").Outputs.Entries[0].Mode != 0o644 || b.Vars["A"] != "1" || b.Action("zz") != nil {
		t.Errorf("round trip: %+v", b)
	}
	// Deterministic bytes: maps are sorted, HTML is not escaped.
	x, _ := record.Marshal(sample())
	y, _ := record.Marshal(sample())
	if string(x) != string(y) || !strings.Contains(string(x), `"A": "1",`+"\n"+`    "B": "2"`) {
		t.Errorf("encoding not deterministic:\n%s", x)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temp files left: %v", ents)
	}
}

func TestWriteKeepsOldOnError(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, record.FileName)
	os.WriteFile(p, []byte("old"), 0o644)
	// A record under a regular file cannot be written (root ignores
	// permission bits, so use ENOTDIR).
	if err := record.Write(filepath.Join(p, "x.json"), sample()); err == nil {
		t.Fatal("write under a file succeeded")
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Errorf("old record damaged: %q", b)
	}
}

func TestParseRejectsOtherSchema(t *testing.T) {
	if _, err := record.Parse([]byte(`{"schemaVersion":"uvmbuild.build/v0"}`), "x.json"); err == nil || !strings.Contains(err.Error(), `schemaVersion "uvmbuild.build/v0"`) {
		t.Errorf("err = %v", err)
	}
	if _, err := record.Parse([]byte(`{`), "x.json"); err == nil || !strings.Contains(err.Error(), "x.json") {
		t.Errorf("err = %v", err)
	}
}
