package deploy

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// outArtifacts are the node-builder outputs a deploy reads, with the mode a
// build leaves them in (deliberately not what they are installed with, to
// prove Install sets modes itself).
var outArtifacts = map[string]fs.FileMode{
	SourceShim: 0o700, SourceRuntime: 0o700, SourceMonitor: 0o700, SourceCollectData: 0o644,
	SourceConfig: 0o600, SourceDebugConfig: 0o600, SourceSNPConfig: 0o600, SourceSNPDebugConfig: 0o600,
	SourceUtarfs: 0o700, SourceOverlay: 0o700, SourceTardev: 0o700, SourceTardevUnit: 0o600,
	SourceImage: 0o600, SourceIGVM: 0o600, SourceIGVMDebug: 0o600, SourceMeasurement: 0o600, SourceMeasurementDebug: 0o600,
	"agent-install/usr/bin/kata-agent":                            0o700,
	"agent-install/usr/lib/systemd/system/kata-agent.service":     0o600,
	"agent-install/usr/lib/systemd/system/kata-containers.target": 0o600,
}

// artifactContent is the content of a fake artifact; images are large enough
// that a kill can land in the middle of copying one.
func artifactContent(name, tag string, big int) []byte {
	line := []byte(name + " " + tag + "\n")
	if strings.HasSuffix(name, ".img") && big > 0 {
		return bytes.Repeat(line, big/len(line)+1)
	}
	return line
}

// makeOut writes a fake build output directory in the shape the node-builder
// recipe produces.
func makeOut(t testing.TB, dir, tag string, big int) string {
	t.Helper()
	for name, mode := range outArtifacts {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, artifactContent(name, tag, big), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// makeKataSrc writes the files package-tools copies from a kata-containers
// checkout.
func makeKataSrc(t testing.TB, dir string) string {
	t.Helper()
	for _, rel := range []string{
		"tools/osbuilder/Makefile", "tools/osbuilder/scripts/lib.sh",
		"tools/osbuilder/rootfs-builder/rootfs.sh",
		"tools/osbuilder/rootfs-builder/cbl-mariner/config.sh",
		"tools/osbuilder/rootfs-builder/cbl-mariner/rootfs_lib.sh",
		"tools/osbuilder/image-builder/image_builder.sh", "tools/osbuilder/image-builder/nsdax.gpl.c",
		"tools/osbuilder/node-builder/azure-linux/Makefile", "tools/osbuilder/node-builder/azure-linux/clean.sh",
		"tools/osbuilder/node-builder/azure-linux/common.sh", "tools/osbuilder/node-builder/azure-linux/uvm_build.sh",
		"tools/osbuilder/node-builder/azure-linux/uvm_install.sh",
		"tools/osbuilder/node-builder/azure-linux/package_install.sh",
		"tools/osbuilder/igvm-builder/igvm_builder.sh", "tools/osbuilder/igvm-builder/azure-linux/config.sh",
		"tools/osbuilder/igvm-builder/azure-linux/igvm_lib.sh",
		"src/kata-opa/allow-all.rego", "src/kata-opa/allow-set-policy.rego",
		"src/kata-opa/allow-all-except-exec-process.rego",
		"src/tarfs/Makefile", "src/tarfs/tarfs.c",
	} {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(rel+"\n"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// entry is one object of a tree listing.
type entry struct {
	mode    fs.FileMode
	content string
}

// listTree returns every file and directory under root (relative slash
// paths; directories with a trailing "/").
func listTree(t testing.TB, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel = "/" + filepath.ToSlash(rel)
		if d.IsDir() {
			out[rel+"/"] = entry{mode: st.Mode().Perm()}
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = entry{mode: st.Mode().Perm(), content: string(data)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
