package cache_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/cache"
)

func open(t *testing.T, dir string) *cache.Store {
	t.Helper()
	s, err := cache.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// put stores content as a blob with mode.
func put(t *testing.T, s *cache.Store, content string, mode fs.FileMode) digest.Digest {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	d, n, err := s.PutFile(context.Background(), p, mode)
	if err != nil {
		t.Fatal(err)
	}
	if d != digest.FromString(content) || n != int64(len(content)) {
		t.Fatalf("PutFile = %s %d", d, n)
	}
	return d
}

func TestDefaultDir(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"UVMBUILD_CACHE": "/c", "XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/c"},
		{map[string]string{"XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/x/uvmbuild"},
		{map[string]string{"XDG_CACHE_HOME": "relative", "HOME": "/h"}, "/h/.cache/uvmbuild"},
		{map[string]string{"HOME": "/h"}, "/h/.cache/uvmbuild"},
	}
	for _, tc := range cases {
		if got, err := cache.DefaultDir(env(tc.env)); err != nil || got != tc.want {
			t.Errorf("DefaultDir(%v) = %q, %v; want %q", tc.env, got, err, tc.want)
		}
	}
	if _, err := cache.DefaultDir(env(nil)); err == nil {
		t.Error("no HOME: no error")
	}
}

func TestOpenUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("keep"), 0o644)
	_, err := cache.Open(context.Background(), filepath.Join(file, "cache"))
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "cache directory") {
		t.Errorf("err = %v, want a one-line cache directory error", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Error("file damaged")
	}
}

func TestLinkFileModesAndLinks(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "c"))
	ctx := context.Background()
	d := put(t, s, "tool", 0o755)
	dst := t.TempDir()
	a := filepath.Join(dst, "a")
	if err := s.LinkFile(ctx, d, 0o755, a); err != nil {
		t.Fatal(err)
	}
	// Another mode of the same content is derived from the stored copy.
	b := filepath.Join(dst, "b")
	if err := s.LinkFile(ctx, d, 0o644, b); err != nil {
		t.Fatal(err)
	}
	fa, _ := os.Stat(a)
	fb, _ := os.Stat(b)
	if fa.Mode().Perm() != 0o755 || fb.Mode().Perm() != 0o644 {
		t.Errorf("modes %v %v", fa.Mode(), fb.Mode())
	}
	if got, _ := os.ReadFile(b); string(got) != "tool" {
		t.Errorf("content %q", got)
	}
	// Linking again over an existing destination replaces it atomically.
	os.WriteFile(b, []byte("stale"), 0o644)
	if err := s.LinkFile(ctx, d, 0o644, b); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(b); string(got) != "tool" {
		t.Errorf("content after relink %q", got)
	}
	if err := s.LinkFile(ctx, digest.FromString("absent"), 0o644, filepath.Join(dst, "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing blob: err = %v", err)
	}
	ents, _ := os.ReadDir(dst)
	if len(ents) != 2 {
		t.Errorf("destination holds %d entries, want 2 (no temp files)", len(ents))
	}
}

func TestCorruptBlobEvicted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	s := open(t, dir)
	d := put(t, s, "content", 0o644)
	blobs, _ := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*", d.Encoded()+".*"))
	if len(blobs) != 1 {
		t.Fatalf("blobs %v", blobs)
	}
	os.WriteFile(blobs[0], []byte("CONTENT"), 0o644) // same size, other bytes
	dst := filepath.Join(t.TempDir(), "x")
	err := s.LinkFile(context.Background(), d, 0o644, dst)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("err = %v, want corrupt and not-exist", err)
	}
	if _, err := os.Stat(blobs[0]); err == nil {
		t.Error("corrupt blob not evicted")
	}
	if _, err := os.Stat(dst); err == nil {
		t.Error("corrupt content reached the destination")
	}
}

func TestActionEntries(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	s := open(t, dir)
	ctx := context.Background()
	key := digest.FromString("key")
	if _, err := s.GetAction(ctx, key); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("miss: err = %v", err)
	}
	if err := s.PutAction(ctx, key, []byte(`{"m":1}`), []digest.Digest{digest.FromString("nope")}); err == nil {
		t.Error("entry referencing an absent blob accepted")
	}
	d := put(t, s, "x", 0o644)
	if err := s.PutAction(ctx, key, []byte(`{"m":1}`), []digest.Digest{d}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAction(ctx, key)
	if err != nil || string(got) != `{"m":1}` {
		t.Fatalf("GetAction = %q, %v", got, err)
	}
	// Tamper with the manifest: the entry is evicted and reported missing.
	p := filepath.Join(dir, "ac", key.Encoded()[:2], key.Encoded()+".json")
	data, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(data), `"m":1`, `"m":2`, 1)), 0o644)
	if _, err := s.GetAction(ctx, key); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("tampered entry: err = %v", err)
	}
	if _, err := os.Stat(p); err == nil {
		t.Error("tampered entry not evicted")
	}
	if err := s.DeleteAction(ctx, key); err != nil {
		t.Errorf("deleting a missing entry: %v", err)
	}
}

func TestLockActionExcludes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	s1 := open(t, dir)
	s2 := open(t, dir)
	key := digest.FromString("k")
	unlock, err := s1.LockAction(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s2.LockAction(ctx, key); err == nil {
		t.Fatal("second lock acquired while the first is held")
	}
	unlock()
	u2, err := s2.LockAction(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	u2()
}

func TestPrune(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	s, err := cache.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	big := strings.Repeat("x", 10000)
	var keys []digest.Digest
	for i, content := range []string{big + "1", big + "2", big + "3"} {
		d := put(t, s, content, 0o644)
		k := digest.FromString(content)
		if err := s.PutAction(ctx, k, []byte(`{}`), []digest.Digest{d}); err != nil {
			t.Fatal(err)
		}
		// Oldest first: entry i was last used i hours ago… reversed.
		when := time.Now().Add(time.Duration(i-3) * time.Hour)
		os.Chtimes(filepath.Join(dir, "ac", k.Encoded()[:2], k.Encoded()+".json"), when, when)
		keys = append(keys, k)
	}
	orphan := put(t, s, "orphan", 0o644)

	// Prune waits for builds holding the cache.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := cache.Prune(short, dir, 0); err == nil {
		t.Fatal("prune ran while a build held the cache")
	}
	s.Close()

	st, err := cache.Prune(ctx, dir, 25000)
	if err != nil {
		t.Fatal(err)
	}
	if st.After > 25000 || st.After >= st.Before {
		t.Errorf("stats %+v", st)
	}
	s = open(t, dir)
	if _, err := s.GetAction(ctx, keys[0]); err == nil {
		t.Error("least recently used entry kept")
	}
	for _, k := range keys[1:] {
		if _, err := s.GetAction(ctx, k); err != nil {
			t.Errorf("recent entry pruned: %v", err)
		}
	}
	if err := s.LinkFile(ctx, orphan, 0o644, filepath.Join(t.TempDir(), "o")); err == nil {
		t.Error("unreferenced blob kept")
	}
	if err := s.LinkFile(ctx, digest.FromString(big+"3"), 0o644, filepath.Join(t.TempDir(), "o")); err != nil {
		t.Errorf("referenced blob: %v", err)
	}
	s.Close()
	if _, err := cache.Prune(ctx, dir, 0); err != nil {
		t.Fatal(err)
	}
	if n, _ := cache.Usage(dir); n != 0 {
		t.Errorf("cache holds %d bytes after prune to 0", n)
	}
}
