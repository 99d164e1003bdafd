package actions_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/actions"
	"github.com/uvmbuild/uvmbuild/builder/cache"
	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/images"
	"github.com/uvmbuild/uvmbuild/builder/lockfile"
)

// pipeline is fetch → image-producing step → container step reading both,
// the shape the node-builder recipe uses.
func pipeline(t *testing.T, srvURL string, lock *lockfile.File, store *images.Store, bbDir string) *graph.Step {
	files := []actions.FetchFile{{Name: "src.txt", URLs: []string{srvURL + "/src.txt"}, Digest: digest.FromString("fetched source\n")}}
	fetch := &graph.Step{ID: "fetch", Spec: actions.FetchSpec(files), Outputs: []string{"src.txt"},
		Exec: &actions.Fetch{Files: files, Lock: lock, LockName: "sources"}}
	// Stands in for a DebianImage step: an OCI layout as a step output.
	image := &graph.Step{ID: "image", Spec: graph.Spec{Kind: "test/copy-layout", Version: "1"},
		Inputs: []graph.Input{{Name: "layout", Path: bbDir}}, Outputs: []string{"image"},
		Exec: graph.ExecFunc(func(ctx context.Context, x *graph.Exec) error {
			return os.CopyFS(filepath.Join(x.OutDir, "image"), os.DirFS(x.Inputs["layout"]))
		})}
	return &graph.Step{
		ID: "assemble",
		Spec: actions.ContainerSpec("", actions.ContainerParams{
			ImageInput: "image", SourceDateEpoch: testEpoch,
			// A reproducible step clamps the times it archives (busybox tar
			// has no --clamp-mtime; touch does it; TZ is UTC).
			Script: `mkdir -p /out/rootfs/etc && cp /in/src.txt /out/rootfs/etc/motd && echo built > /out/rootfs/etc/stamp
find /out/rootfs -exec touch -h -d "$(date -u -d @$SOURCE_DATE_EPOCH '+%Y-%m-%d %H:%M:%S')" {} +
tar -C /out/rootfs -cf /out/rootfs.tar . && rm -r /out/rootfs`,
		}),
		Inputs: []graph.Input{
			{Name: "image", From: image, Output: "image"},
			{Name: "src.txt", From: fetch, Output: "src.txt"},
		},
		Outputs: []string{"rootfs.tar"},
		Exec:    &actions.Container{Images: store, StateRoot: filepath.Join(t.TempDir(), "runc")},
	}
}

// TestGraphBuildTwiceAndElsewhere runs a fetch + image + container pipeline
// through graph.Build: the second build is all cache hits with no network,
// and a build in another cache under another umask gives the same output
// digests.
func TestGraphBuildTwiceAndElsewhere(t *testing.T) {
	needContainers(t)
	srv, hits := fetchServer(t, map[string]string{"/src.txt": "fetched source\n"})
	bbDir, _ := busyboxLayout(t)
	ctx := context.Background()

	build := func(cacheDir string) (digest.Digest, int) {
		t.Helper()
		store, err := cache.Open(ctx, cacheDir)
		if err != nil {
			t.Fatal(err)
		}
		lock := lockfile.Open(filepath.Join(cacheDir, lockfile.Name))
		root := pipeline(t, srv.URL, lock, &images.Store{Dir: cacheDir, Lock: lock}, bbDir)
		res, err := graph.Build(ctx, []*graph.Step{root}, graph.Options{Store: store, WorkDir: cacheDir, Jobs: 2})
		if err != nil {
			t.Fatalf("build: %v", err)
		}
		m := res.Manifest(root)
		for _, e := range m.Entries {
			if e.Path == "rootfs.tar" {
				return e.Digest, res.Summary.Run
			}
		}
		t.Fatalf("no rootfs.tar in %+v", m)
		return "", 0
	}
	dir1 := t.TempDir()
	d1, ran := build(dir1)
	if ran != 3 {
		t.Errorf("first build ran %d steps, want 3", ran)
	}
	before := hits.Load()
	d2, ran := build(dir1)
	if ran != 0 || d2 != d1 {
		t.Errorf("second build ran %d steps (want 0), digest %s vs %s", ran, d2, d1)
	}
	if hits.Load() != before {
		t.Error("a warm build used the network")
	}
	old := syscall.Umask(0o077)
	d3, _ := build(t.TempDir())
	syscall.Umask(old)
	if d3 != d1 {
		t.Errorf("another cache and umask gave %s, want %s", d3, d1)
	}
}
