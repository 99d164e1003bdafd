package actions_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/actions"
	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/lockfile"
)

func fetchServer(t *testing.T, files map[string]string) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(b))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestFetchVerifiesAndLocks(t *testing.T) {
	srv, _ := fetchServer(t, map[string]string{"/a.tar": "tarball", "/pool/x.deb": "deb-x", "/bad": "tampered"})
	lockPath := filepath.Join(t.TempDir(), lockfile.Name)
	lock := lockfile.Open(lockPath)
	files := []actions.FetchFile{
		{Name: "a.tar", URLs: []string{srv.URL + "/missing", srv.URL + "/a.tar"}, Digest: digest.FromString("tarball")},
		{Name: "debs/x.deb", URLs: []string{srv.URL + "/pool/x.deb"}, Digest: digest.FromString("deb-x")},
	}
	s := &graph.Step{ID: "fetch/src", Spec: actions.FetchSpec(files), Exec: &actions.Fetch{Files: files, Lock: lock, LockName: "sources"}}
	out, log, err := run(t, context.Background(), s, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "debs/x.deb")); string(b) != "deb-x" {
		t.Errorf("x.deb = %q", b)
	}
	e, ok, _ := lock.Lookup("sources")
	if !ok || e.Checksums["a.tar"] != digest.FromString("tarball") || e.Checksums["debs/x.deb"] != digest.FromString("deb-x") {
		t.Errorf("lock entry = %+v", e)
	}

	// A file whose content does not match: refused, nothing left in the output.
	bad := []actions.FetchFile{{Name: "bad", URLs: []string{srv.URL + "/bad"}, Digest: digest.FromString("expected")}}
	s = &graph.Step{ID: "fetch/bad", Spec: actions.FetchSpec(bad), Exec: &actions.Fetch{Files: bad}}
	out, _, err = run(t, context.Background(), s, nil)
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") || !strings.Contains(err.Error(), digest.FromString("expected").String()) {
		t.Errorf("tampered download: %v", err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("half-written output left: %v", ents)
	}

	// The recipe changes a declared checksum (a new upstream version): the
	// recipe is the pin, the lock entry follows it.
	changed := []actions.FetchFile{{Name: "a.tar", URLs: []string{srv.URL + "/bad"}, Digest: digest.FromString("tampered")}}
	s = &graph.Step{ID: "fetch/src", Spec: actions.FetchSpec(changed), Exec: &actions.Fetch{Files: changed, Lock: lock, LockName: "sources"}}
	if _, _, err = run(t, context.Background(), s, nil); err != nil {
		t.Fatalf("changed declared checksum: %v", err)
	}
	if e, _, _ := lock.Lookup("sources"); len(e.Checksums) != 1 || e.Checksums["a.tar"] != digest.FromString("tampered") {
		t.Errorf("lock entry not re-pinned: %+v", e)
	}
}

func TestFetchTrustOnFirstUse(t *testing.T) {
	files := map[string]string{"/f": "first"}
	srv, _ := fetchServer(t, files)
	lock := lockfile.Open(filepath.Join(t.TempDir(), lockfile.Name))
	ff := []actions.FetchFile{{Name: "f", URLs: []string{srv.URL + "/f"}}}
	s := &graph.Step{ID: "fetch/f", Spec: actions.FetchSpec(ff), Exec: &actions.Fetch{Files: ff, Lock: lock}}
	if _, _, err := run(t, context.Background(), s, nil); err != nil {
		t.Fatal(err)
	}
	if e, ok, _ := lock.Lookup("fetch/f"); !ok || e.Checksums["f"] != digest.FromString("first") {
		t.Fatalf("not recorded: %+v", e)
	}
	files["/f"] = "changed upstream"
	_, _, err := run(t, context.Background(), s, nil)
	if !errors.Is(err, lockfile.ErrMismatch) ||
		!strings.Contains(err.Error(), digest.FromString("first").String()) || !strings.Contains(err.Error(), digest.FromString("changed upstream").String()) {
		t.Errorf("upstream change not caught naming both digests: %v", err)
	}
	if e, _, _ := lock.Lookup("fetch/f"); e.Checksums["f"] != digest.FromString("first") {
		t.Errorf("lock changed by a failed fetch: %+v", e)
	}
}

func TestFetchSpecKey(t *testing.T) {
	a := actions.FetchSpec([]actions.FetchFile{{Name: "f", URLs: []string{"http://one/f"}, Digest: digest.FromString("x")}})
	b := actions.FetchSpec([]actions.FetchFile{{Name: "f", URLs: []string{"http://mirror/f"}, Digest: digest.FromString("x")}})
	c := actions.FetchSpec([]actions.FetchFile{{Name: "f", URLs: []string{"http://one/f"}, Digest: digest.FromString("y")}})
	if !equalJSON(t, a.Params, b.Params) {
		t.Error("a mirror change must not change the key")
	}
	if equalJSON(t, a.Params, c.Params) {
		t.Error("a checksum change must change the key")
	}
}

func TestAptMirror(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/apt/sources.list.d"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/debian.sources"), []byte(
		"Types: deb\nURIs: http://security.example.org/debian-security\nSuites: bookworm-security\n\nTypes: deb\nURIs: http://archive.example.org/debian\nSuites: bookworm\n"), 0o644)
	if m, err := actions.AptMirror(root); err != nil || m != "http://archive.example.org/debian" {
		t.Errorf("deb822: %q, %v", m, err)
	}
	root2 := t.TempDir()
	os.MkdirAll(filepath.Join(root2, "etc/apt"), 0o755)
	os.WriteFile(filepath.Join(root2, "etc/apt/sources.list"), []byte("# comment\ndeb [arch=amd64] https://m.example.net/debian bookworm main\n"), 0o644)
	if m, err := actions.AptMirror(root2); err != nil || m != "https://m.example.net/debian" {
		t.Errorf("one-line: %q, %v", m, err)
	}
	if _, err := actions.AptMirror(t.TempDir()); err == nil {
		t.Error("no apt configuration accepted")
	}
}
