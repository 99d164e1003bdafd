package actions_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uvmbuild/uvmbuild/builder/actions"
	"github.com/uvmbuild/uvmbuild/builder/ext4"
	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/verity"
)

func runNative(t *testing.T, s *graph.Step, inputs map[string]string) (string, error) {
	t.Helper()
	base := t.TempDir()
	out, tmp := filepath.Join(base, "out"), filepath.Join(base, "tmp")
	os.Mkdir(out, 0o755)
	os.Mkdir(tmp, 0o700)
	var log bytes.Buffer
	err := s.Exec.Run(context.Background(), &graph.Exec{Step: s, Inputs: inputs, OutDir: out, TempDir: tmp, Log: &log})
	return out, err
}

func TestVerityStep(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	b := make([]byte, 200*4096)
	for i := range b {
		b[i] = byte(i / 4096)
	}
	os.WriteFile(data, b, 0o644)
	s := &graph.Step{ID: "v", Spec: actions.VeritySpec(actions.VerityParams{NoSuperblock: true, Salt: "00ff"}),
		Outputs: []string{"hash.img", "root_hash.txt", "verity.json"}, Exec: actions.Verity{}}
	out, err := runNative(t, s, map[string]string{"data": data})
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := os.ReadFile(filepath.Join(out, "hash.img"))
	var info verity.Info
	j, _ := os.ReadFile(filepath.Join(out, "verity.json"))
	if err := json.Unmarshal(j, &info); err != nil {
		t.Fatal(err)
	}
	root, _ := hex.DecodeString(info.RootHash)
	if _, err := verity.Verify(context.Background(), bytes.NewReader(b), int64(len(b)), bytes.NewReader(hash),
		verity.Params{Salt: []byte{0, 0xff}, NoSuperblock: true}, root); err != nil {
		t.Errorf("step output does not verify: %v", err)
	}
	txt, _ := os.ReadFile(filepath.Join(out, "root_hash.txt"))
	if !strings.Contains(string(txt), "Salt:            \t00ff\n") {
		t.Errorf("root_hash.txt:\n%s", txt)
	}
	os.WriteFile(data, b[:4097], 0o644)
	if _, err := runNative(t, s, map[string]string{"data": data}); err == nil || !strings.Contains(err.Error(), "not a multiple") {
		t.Errorf("bad size: %v", err)
	}
}

func TestImageStep(t *testing.T) {
	if _, err := ext4.CheckVersion(context.Background(), ""); err != nil {
		t.Skipf("mkfs.ext4 ≥ 1.47.1 needed: %v", err)
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, h := range []tar.Header{
		{Name: "usr/lib/systemd/systemd", Typeflag: tar.TypeReg, Mode: 0o755, Size: 5000},
		{Name: "sbin/init", Typeflag: tar.TypeSymlink, Linkname: "/usr/lib/systemd/systemd"},
	} {
		tw.WriteHeader(&h)
		tw.Write(make([]byte, h.Size))
	}
	tw.Close()
	tarPath := filepath.Join(t.TempDir(), "rootfs.tar")
	os.WriteFile(tarPath, tb.Bytes(), 0o644)
	spec, err := actions.ImageSpec(context.Background(), actions.ImageParams{Measured: true, SourceDateEpoch: 1700000000, Seed: "test"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(spec.Version, "+mke2fs-1.47") {
		t.Errorf("spec version %q lacks the mke2fs version", spec.Version)
	}
	s := &graph.Step{ID: "img", Spec: spec, Outputs: []string{"kata-containers.img", "root_hash.txt", "verity.json", "image.json"}, Exec: actions.Image{}}
	var imgs [][]byte
	for range 2 {
		out, err := runNative(t, s, map[string]string{"rootfs": tarPath})
		if err != nil {
			t.Fatal(err)
		}
		img, _ := os.ReadFile(filepath.Join(out, "kata-containers.img"))
		imgs = append(imgs, img)
		ents, _ := os.ReadDir(out)
		if len(ents) != 4 {
			t.Errorf("outputs: %v", ents)
		}
		j, _ := os.ReadFile(filepath.Join(out, "verity.json"))
		var info verity.Info
		if err := json.Unmarshal(j, &info); err != nil || !strings.HasPrefix(info.DMModCreate, `dm-mod.create="dm-verity,,,ro,0 `) {
			t.Errorf("verity.json: %s (%v)", j, err)
		}
	}
	if !bytes.Equal(imgs[0], imgs[1]) {
		t.Error("two runs differ")
	}
	s.Spec.Version = "1+ext4-conf-1+mke2fs-1.0"
	if _, err := runNative(t, s, map[string]string{"rootfs": tarPath}); err == nil || !strings.Contains(err.Error(), "installed mkfs.ext4") {
		t.Errorf("version mismatch: %v", err)
	}
}

// TestImageSpecCoversParams: every ImageParams field and the mke2fs version
// change the Spec (so the step key).
func TestImageSpecCoversParams(t *testing.T) {
	enc := func(s graph.Spec) string {
		b, _ := json.Marshal(s)
		return string(b)
	}
	three := 3
	base := enc(actions.ImageSpecFor(actions.ImageParams{}, "1.47.2"))
	for name, p := range map[string]actions.ImageParams{
		"measured": {Measured: true}, "superblock": {VeritySuperblock: true}, "sde": {SourceDateEpoch: 1},
		"seed": {Seed: "x"}, "size": {SizeMiB: 10}, "align": {AlignMiB: 128}, "reserved": {ReservedPercent: &three},
		"salt": {Salt: "-"}, "fs_uuid": {FSUUID: "u"}, "hash_seed": {HashSeed: "h"}, "drop": {Drop: []string{"a"}},
		"empty": {Empty: []string{"b"}}, "init": {SkipInitCheck: true},
	} {
		if enc(actions.ImageSpecFor(p, "1.47.2")) == base {
			t.Errorf("%s does not change the spec", name)
		}
	}
	if enc(actions.ImageSpecFor(actions.ImageParams{}, "1.47.3")) == base {
		t.Error("the mke2fs version does not change the spec")
	}
	vbase := enc(actions.VeritySpec(actions.VerityParams{}))
	for name, p := range map[string]actions.VerityParams{
		"hash": {Hash: "sha1"}, "dbs": {DataBlockSize: 512}, "hbs": {HashBlockSize: 512}, "salt": {Salt: "00"},
		"uuid": {UUID: "u"}, "nosb": {NoSuperblock: true},
	} {
		if enc(actions.VeritySpec(p)) == vbase {
			t.Errorf("verity %s does not change the spec", name)
		}
	}
}
