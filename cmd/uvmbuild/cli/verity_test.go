package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func runVerityCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = Main(t.Context(), args, strings.NewReader(""), &o, &e)
	return o.String(), e.String(), code
}

func TestVerityCmd(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 300*4096)
	for i := range data {
		data[i] = byte(i / 4096)
	}
	df := filepath.Join(dir, "data.img")
	if err := os.WriteFile(df, data, 0o644); err != nil {
		t.Fatal(err)
	}
	hf := filepath.Join(dir, "hash.img")
	salt := strings.Repeat("ab", 32)
	out, errOut, code := runVerityCLI(t, "verity", df, hf, "--salt", salt, "--no-superblock")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "Salt:            \t"+salt+"\n") || !strings.HasPrefix(out, "VERITY header information for "+hf+"\n") {
		t.Errorf("report:\n%s", out)
	}
	got, err := os.ReadFile(hf)
	if err != nil {
		t.Fatal(err)
	}
	if vs, err := exec.LookPath("veritysetup"); err == nil {
		ref := filepath.Join(dir, "ref.img")
		want, err := exec.Command(vs, "format", df, ref, "--salt", salt, "--no-superblock").Output()
		if err != nil {
			t.Fatal(err)
		}
		refb, _ := os.ReadFile(ref)
		if !bytes.Equal(got, refb) {
			t.Error("hash file differs from veritysetup's")
		}
		if strings.Replace(string(want), ref, hf, 1) != out {
			t.Errorf("report differs from veritysetup's:\n%s\nwant\n%s", out, want)
		}
	} else {
		t.Log("veritysetup not installed; not comparing with it")
	}

	// Derived salt and UUID: same data, same output, from another directory.
	out1, _, code1 := runVerityCLI(t, "verity", df, filepath.Join(dir, "h1"))
	out2, _, code2 := runVerityCLI(t, "verity", df, filepath.Join(dir, "h2"))
	h1, _ := os.ReadFile(filepath.Join(dir, "h1"))
	h2, _ := os.ReadFile(filepath.Join(dir, "h2"))
	if code1 != 0 || code2 != 0 || !bytes.Equal(h1, h2) || strings.ReplaceAll(out1, "h1", "h2") != out2 {
		t.Errorf("derived runs differ or failed (%d, %d)", code1, code2)
	}
	if strings.Contains(out1, "UUID:            \t\n") {
		t.Error("no derived UUID with a superblock")
	}
	jsonOut, _, code := runVerityCLI(t, "verity", df, filepath.Join(dir, "h3"), "--salt", "-", "--json")
	if code != 0 || !strings.Contains(jsonOut, `"salt": "-"`) || !strings.Contains(jsonOut, ` 300 1 sha256 `) {
		t.Errorf("json: %d %s", code, jsonOut)
	}
}

func TestVerityCmdBadInput(t *testing.T) {
	dir := t.TempDir()
	df := filepath.Join(dir, "data.img")
	os.WriteFile(df, make([]byte, 4096*2+1), 0o644)
	good := filepath.Join(dir, "good.img")
	os.WriteFile(good, make([]byte, 4096*2), 0o644)
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"size", []string{df, "h"}, 1, "not a multiple of the data block size"},
		{"salt not hex", []string{good, "h", "--salt", "xyz"}, 1, "not hex"},
		{"salt too long", []string{good, "h", "--salt", strings.Repeat("00", 257)}, 1, "257 bytes"},
		{"unknown hash", []string{good, "h", "--hash", "md5"}, 1, "unknown hash algorithm"},
		{"bad uuid", []string{good, "h", "--uuid", "nope"}, 1, "--uuid"},
		{"block size", []string{good, "h", "--data-block-size", "1000"}, 1, "power of two"},
		{"missing data", []string{filepath.Join(dir, "nope"), "h"}, 1, "no such file"},
		{"usage", []string{good}, 2, "accepts 2 arg"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"verity"}, c.args...)
			if len(c.args) > 1 {
				args[2] = filepath.Join(dir, c.args[1])
			}
			_, errOut, code := runVerityCLI(t, args...)
			if code != c.code || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, c.code, c.want)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 2 {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("output left behind: %v", names)
			}
		})
	}
}
