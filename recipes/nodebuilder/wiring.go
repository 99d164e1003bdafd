package nodebuilder

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/actions"
	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/images"
	"github.com/uvmbuild/uvmbuild/builder/lockfile"
)

// wiring connects the steps to the machine: the lock file, the image store
// and the Debian mirror. None of it is part of any step's key.
type wiring struct {
	lock   *lockfile.File
	images *images.Store
	// mirror is the Debian archive of the machine's apt configuration, used
	// only to form download URLs (fetch keys hold digests, not URLs).
	mirror string
	// sources are where pinned registry images may be pulled from.
	sources []images.Source
}

func (w *wiring) container() graph.Executor {
	return &actions.Container{Images: w.images, Sources: w.sources}
}

func (w *wiring) debianImage(lockName string) graph.Executor {
	return &actions.DebianImage{Lock: w.lock, LockName: lockName}
}

func (w *wiring) fetch(lockName string, files []actions.FetchFile) graph.Executor {
	return &actions.Fetch{Files: files, Lock: w.lock, LockName: lockName}
}

// debianURLs are the download URLs of a pool path on the machine's mirror.
func (w *wiring) debianURLs(pool string) []string {
	if w.mirror == "" {
		return nil
	}
	return []string{strings.TrimSuffix(w.mirror, "/") + "/" + pool}
}

// container turns a containerStep into a graph step: a step whose image is
// an upstream OCI layout gets it as the input "image".
func (p *planner) container(cs containerStep) *graph.Step {
	params := actions.ContainerParams{Script: cs.script, SourceDateEpoch: p.cfg.epoch}
	inputs := cs.inputs
	var img digest.Digest
	if cs.image.step != nil {
		params.ImageInput = "image"
		inputs = append([]graph.Input{{Name: "image", From: cs.image.step, Output: "image"}}, inputs...)
	} else {
		img = cs.image.digest
	}
	return &graph.Step{
		ID:      cs.id,
		Meta:    graph.Meta{Description: cs.desc},
		Spec:    actions.ContainerSpec(img, params),
		Inputs:  inputs,
		Outputs: cs.outputs,
		Exec:    p.w.container(),
	}
}

// mkfsUTF8 is a private adapter until builder/ext4 runs mkfs.ext4 under a
// UTF-8 locale: mkfs.ext4 -d reads the tar with libarchive, which converts
// names to the current locale's charset and fails in the C locale on the
// non-ASCII file names Debian's ca-certificates ships
// (NetLock_Arany_=Class_Gold=_Főtanúsítvány.crt). The wrapper only sets
// LC_ALL=C.UTF-8 (file name bytes are kept as they are) and runs the same
// mkfs.ext4, so the image bytes and the version keyed by ImageSpec are
// unchanged. It is written once into the cache directory.
func (w *wiring) mkfsUTF8() (string, error) {
	real, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		return "", fmt.Errorf(`mkfs.ext4 not found: install e2fsprogs (>= 1.47.1, bookworm-backports): %w`, err)
	}
	script := "#!/bin/sh\n# written by uvmbuild (recipes/nodebuilder): mkfs.ext4 under a UTF-8 locale\n" +
		"LC_ALL=C.UTF-8 LANG=C.UTF-8\nexport LC_ALL LANG\nexec " + real + " \"$@\"\n"
	dir := filepath.Join(w.images.Dir, "nodebuilder")
	path := filepath.Join(dir, "mkfs.ext4-utf8")
	if b, err := os.ReadFile(path); err == nil && string(b) == script {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".mkfs-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(script); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		return "", err
	}
	return path, os.Rename(tmp.Name(), path)
}
