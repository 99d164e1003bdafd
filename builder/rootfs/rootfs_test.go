package rootfs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const sde = 1700000000

type ent struct {
	name, link string
	typ        byte
	mode       int64
	body       string
	mtime      int64
	pax        map[string]string
}

func mkTar(t *testing.T, ents []ent) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body)),
			ModTime: time.Unix(e.mtime, 0), AccessTime: time.Unix(e.mtime+5, 0), Uname: "someone", Gname: "grp", Uid: 1000, Gid: 1000,
			PAXRecords: e.pax, Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	return b.Bytes()
}

func messy() []ent {
	return []ent{
		{name: "usr/bin/b", typ: tar.TypeReg, mode: 0o4755, body: "bbb", mtime: sde + 100,
			pax: map[string]string{"SCHILY.xattr.security.capability": "cap", "SCHILY.xattr.user.junk": "x"}},
		{name: "./etc/", typ: tar.TypeDir, mode: 0o755, mtime: 5},
		{name: "etc/machine-id", typ: tar.TypeReg, mode: 0o444, body: "0123456789abcdef", mtime: sde + 1},
		{name: "usr/bin/a", typ: tar.TypeLink, link: "usr/bin/b"},
		{name: "etc/localtime", typ: tar.TypeSymlink, link: "/usr/share/zoneinfo/UTC"},
		{name: "sbin", typ: tar.TypeSymlink, link: "usr/sbin"},
		{name: "var/cache/x/y", typ: tar.TypeReg, mode: 0o644, body: "cache"},
		{name: "a-b", typ: tar.TypeReg, mode: 0o600, body: "dash", mtime: 3},
		{name: "etc/hostname", typ: tar.TypeReg, mode: 0o644, body: "old"},
		{name: "etc/hostname", typ: tar.TypeReg, mode: 0o644, body: "new"},
	}
}

func norm(t *testing.T, in []byte, o Options) ([]byte, Summary) {
	t.Helper()
	var out bytes.Buffer
	sum, err := Normalize(context.Background(), bytes.NewReader(in), &out, o)
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), sum
}

func list(t *testing.T, b []byte) []*tar.Header {
	t.Helper()
	var hs []*tar.Header
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hs
		}
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
}

func TestNormalize(t *testing.T) {
	in := mkTar(t, messy())
	out, sum := norm(t, in, Options{SourceDateEpoch: sde})
	var names []string
	for _, h := range list(t, out) {
		names = append(names, h.Name)
		if h.Uname != "" || h.Gname != "" || !h.AccessTime.IsZero() || h.ModTime.Unix() > sde {
			t.Errorf("%s: not normalised: %+v", h.Name, h)
		}
		if h.Uid != 1000 && h.Name != "./" && !strings.HasSuffix(h.Name, "/") {
			t.Errorf("%s: uid %d", h.Name, h.Uid)
		}
		switch h.Name {
		case "./usr/bin/a":
			if h.Typeflag != tar.TypeReg || h.Mode != 0o4755 || h.PAXRecords["SCHILY.xattr.security.capability"] != "cap" || h.PAXRecords["SCHILY.xattr.user.junk"] != "" {
				t.Errorf("hardlink holder: %+v", h)
			}
		case "./usr/bin/b":
			if h.Typeflag != tar.TypeLink || h.Linkname != "./usr/bin/a" {
				t.Errorf("hardlink: %+v", h)
			}
		case "./etc/":
			if h.ModTime.Unix() != 5 {
				t.Errorf("old mtime not kept: %v", h.ModTime)
			}
		}
	}
	want := []string{"./", "./a-b", "./etc/", "./etc/hostname", "./etc/localtime", "./etc/machine-id", "./sbin",
		"./usr/", "./usr/bin/", "./usr/bin/a", "./usr/bin/b", "./var/", "./var/cache/", "./var/cache/x/", "./var/cache/x/y"}
	if !slices.Equal(names, want) {
		t.Errorf("order\n%q\nwant\n%q", names, want)
	}
	if sum.Files != 5 || sum.Hardlinks != 1 || sum.Symlinks != 2 || sum.Dirs != 7 || sum.Entries != len(want) {
		t.Errorf("summary %+v", sum)
	}
	if sum.DiskUsage != 7*4096+5*4096 {
		t.Errorf("disk usage %d", sum.DiskUsage)
	}
	// Idempotent, and the same from a pipe, from gzip and from a file.
	again, _ := norm(t, out, Options{SourceDateEpoch: sde})
	if !bytes.Equal(again, out) {
		t.Error("normalising the output changes it")
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(in)
	zw.Close()
	fromGz, _ := norm(t, gz.Bytes(), Options{SourceDateEpoch: sde})
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(func() error { _, err := pw.Write(in); return err }()) }()
	var fromPipe bytes.Buffer
	if _, err := Normalize(context.Background(), pr, &fromPipe, Options{SourceDateEpoch: sde}); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "in.tar")
	os.WriteFile(f, in, 0o644)
	fh, _ := os.Open(f)
	defer fh.Close()
	var fromFile bytes.Buffer
	if _, err := Normalize(context.Background(), fh, &fromFile, Options{SourceDateEpoch: sde}); err != nil {
		t.Fatal(err)
	}
	for what, b := range map[string][]byte{"gzip": fromGz, "pipe": fromPipe.Bytes(), "file": fromFile.Bytes()} {
		if !bytes.Equal(b, out) {
			t.Errorf("%s input gives different output", what)
		}
	}
	if c := list(t, out); len(c) > 3 {
		tr := tar.NewReader(bytes.NewReader(out))
		for h, err := tr.Next(); err == nil; h, err = tr.Next() {
			if h.Name == "./etc/hostname" {
				b, _ := io.ReadAll(tr)
				if string(b) != "new" {
					t.Errorf("duplicate: got %q, want the later entry", b)
				}
			}
		}
	}
}

func TestFilter(t *testing.T) {
	f, err := Rules{Drop: []string{"var/cache", "usr/bin/a"}, Empty: []string{"etc/machine-id"}}.Filter()
	if err != nil {
		t.Fatal(err)
	}
	out, sum := norm(t, mkTar(t, messy()), Options{SourceDateEpoch: sde, Filter: f,
		Add: []File{{Name: "etc/added", Mode: 0o644, Content: []byte("hi")}}})
	got := map[string]*tar.Header{}
	for _, h := range list(t, out) {
		got[h.Name] = h
	}
	for _, n := range []string{"./var/cache/", "./var/cache/x/y", "./usr/bin/a"} {
		if got[n] != nil {
			t.Errorf("%s not dropped", n)
		}
	}
	if h := got["./usr/bin/b"]; h == nil || h.Typeflag != tar.TypeReg || h.Size != 3 {
		t.Errorf("remaining hardlink member did not take the content: %+v", h)
	}
	if h := got["./etc/machine-id"]; h == nil || h.Size != 0 {
		t.Errorf("machine-id not emptied: %+v", h)
	}
	if h := got["./etc/added"]; h == nil || h.Size != 2 || h.ModTime.Unix() != sde {
		t.Errorf("added file: %+v", h)
	}
	if !slices.Equal(sum.Dropped, []string{"usr/bin/a", "var/cache"}) || !slices.Equal(sum.Emptied, []string{"etc/machine-id"}) {
		t.Errorf("summary dropped %v emptied %v", sum.Dropped, sum.Emptied)
	}
	if _, err := (Rules{Drop: []string{"["}}).Filter(); err == nil {
		t.Error("bad pattern accepted")
	}
}

func TestUnsafe(t *testing.T) {
	for _, c := range []struct {
		name string
		ents []ent
		want string
	}{
		{"absolute", []ent{{name: "/etc/passwd", typ: tar.TypeReg}}, "absolute path"},
		{"dotdot", []ent{{name: "a/../../x", typ: tar.TypeReg}}, `".." component`},
		{"symlink escape", []ent{{name: "a/b", typ: tar.TypeSymlink, link: "../../etc"}}, "escapes the root"},
		{"hardlink escape", []ent{{name: "a", typ: tar.TypeLink, link: "../x"}}, `".." component`},
		{"hardlink absolute", []ent{{name: "a", typ: tar.TypeLink, link: "/etc/shadow"}}, "absolute path"},
		{"hardlink missing", []ent{{name: "a", typ: tar.TypeLink, link: "b"}}, "target not in the archive"},
		{"below symlink", []ent{{name: "d", typ: tar.TypeSymlink, link: "/"}, {name: "d/x", typ: tar.TypeReg}}, "is not a directory"},
		{"socket-like type", []ent{{name: "x", typ: 'Z'}}, "unsupported type"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := Normalize(context.Background(), bytes.NewReader(mkTar(t, c.ents)), &out, Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			if out.Len() != 0 {
				t.Errorf("wrote %d bytes before failing", out.Len())
			}
		})
	}
	_, err := Normalize(context.Background(), bytes.NewReader(mkTar(t, []ent{{name: "/x", typ: tar.TypeReg}})), io.Discard, Options{})
	if !errors.Is(err, ErrUnsafe) {
		t.Errorf("not ErrUnsafe: %v", err)
	}
}

func TestWriteDirMatchesNormalize(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "etc"), 0o700))
	must(os.WriteFile(filepath.Join(root, "usr/bin/b"), []byte("bbb"), 0o755))
	must(os.Link(filepath.Join(root, "usr/bin/b"), filepath.Join(root, "usr/bin/a")))
	must(os.Symlink("/usr/share/zoneinfo/UTC", filepath.Join(root, "etc/localtime")))
	must(os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("h\n"), 0o644))
	must(os.Chmod(filepath.Join(root, "usr/bin/b"), 0o4755))
	for _, p := range []string{"", "usr", "usr/bin", "etc", "usr/bin/b", "etc/hostname"} {
		must(os.Chtimes(filepath.Join(root, p), time.Unix(10, 0), time.Unix(sde+50, 0)))
	}
	must(os.Lchown(filepath.Join(root, "etc/localtime"), 0, 0))
	var fromDir bytes.Buffer
	sum, err := WriteDir(context.Background(), root, &fromDir, Options{SourceDateEpoch: sde})
	must(err)
	// The same tree as a tar written in another order.
	in := mkTar(t, nil)
	_ = in
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range list(t, fromDir.Bytes()) {
		h.Uname = "x"
		must(tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			c, _ := os.ReadFile(filepath.Join(root, h.Name))
			tw.Write(c)
		}
	}
	tw.Close()
	fromTar, sum2 := norm(t, b.Bytes(), Options{SourceDateEpoch: sde})
	if !bytes.Equal(fromTar, fromDir.Bytes()) || sum.SHA256 != sum2.SHA256 {
		t.Error("WriteDir and Normalize disagree")
	}
	if sum.Hardlinks != 1 || sum.Files != 2 {
		t.Errorf("summary %+v", sum)
	}
}

func TestCompareNames(t *testing.T) {
	names := []string{"a-b", "a/x", "a", "", "b", "a/x/y", "a.c"}
	slices.SortFunc(names, compareNames)
	want := []string{"", "a", "a/x", "a/x/y", "a-b", "a.c", "b"}
	if !slices.Equal(names, want) {
		t.Errorf("%q, want %q", names, want)
	}
}
