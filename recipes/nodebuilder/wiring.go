package nodebuilder

import (
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
