package deploy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// want is one expected installed file: its mode and the artifact (out/ name)
// or kata source path its content comes from ("" for generated files).
type want struct {
	mode fs.FileMode
	from string
}

func expectedTree(v Variant, profile string, debug bool) map[string]want {
	w := map[string]want{}
	tools := func(osb, src string, confpods bool) {
		add := func(rel string, mode fs.FileMode) { w[osb+"/"+rel] = want{mode, "src:tools/osbuilder/" + rel} }
		add("Makefile", 0o644)
		add("scripts/lib.sh", 0o644)
		add("rootfs-builder/rootfs.sh", 0o755)
		add("rootfs-builder/cbl-mariner/config.sh", 0o644)
		add("rootfs-builder/cbl-mariner/rootfs_lib.sh", 0o644)
		add("image-builder/image_builder.sh", 0o755)
		if profile == ProfileMsftMain {
			add("image-builder/nsdax.gpl.c", 0o644)
		}
		add("node-builder/azure-linux/Makefile", 0o644)
		add("node-builder/azure-linux/clean.sh", 0o755)
		add("node-builder/azure-linux/common.sh", 0o755)
		add("node-builder/azure-linux/uvm_build.sh", 0o755)
		add("node-builder/azure-linux/uvm_install.sh", 0o755)
		ai := osb + "/node-builder/azure-linux/agent-install/"
		w[ai+"usr/bin/kata-agent"] = want{0o755, "agent-install/usr/bin/kata-agent"}
		w[ai+"usr/lib/systemd/system/kata-agent.service"] = want{0o644, "agent-install/usr/lib/systemd/system/kata-agent.service"}
		w[ai+"usr/lib/systemd/system/kata-containers.target"] = want{0o644, "agent-install/usr/lib/systemd/system/kata-containers.target"}
		if confpods {
			add("igvm-builder/igvm_builder.sh", 0o755)
			add("igvm-builder/azure-linux/config.sh", 0o644)
			add("igvm-builder/azure-linux/igvm_lib.sh", 0o644)
			for _, rel := range []string{"kata-opa/allow-all.rego", "kata-opa/allow-set-policy.rego", "tarfs/Makefile", "tarfs/tarfs.c"} {
				w[src+"/"+rel] = want{0o644, "src:src/" + rel}
			}
		}
	}
	switch v {
	case Kata:
		w["/usr/local/bin/kata-monitor"] = want{0o755, SourceMonitor}
		w["/usr/local/bin/kata-runtime"] = want{0o755, SourceRuntime}
		w["/usr/local/bin/kata-collect-data.sh"] = want{0o755, SourceCollectData}
		w["/usr/local/bin/containerd-shim-kata-v2"] = want{0o755, SourceShim}
		cfg := "/usr/share/defaults/kata-containers/"
		if profile == ProfileMsftMain {
			w[cfg+"configuration-clh-debug.toml"] = want{0o644, SourceDebugConfig}
			if debug {
				w[cfg+"configuration.toml"] = want{0o644, SourceDebugConfig}
			} else {
				w[cfg+"configuration.toml"] = want{0o644, SourceConfig}
			}
		} else {
			w[cfg+"configuration.toml"] = want{0o644, SourceConfig}
		}
		w["/usr/share/uvmbuild/host/containerd-kata.toml"] = want{0o644, ""}
		w["/usr/share/uvmbuild/host/runtimeclass-kata.yaml"] = want{0o644, ""}
		tools("/opt/kata-containers/uvm/tools/osbuilder", "/opt/kata-containers/uvm/src", false)
		w["/usr/share/kata-containers/kata-containers.img"] = want{0o644, SourceImage}
	case Confpods:
		w["/usr/sbin/mount.tar"] = want{0o755, SourceUtarfs}
		w["/usr/bin/kata-overlay"] = want{0o755, SourceOverlay}
		w["/usr/bin/tardev-snapshotter"] = want{0o755, SourceTardev}
		w["/usr/lib/systemd/system/tardev-snapshotter.service"] = want{0o644, SourceTardevUnit}
		w["/opt/confidential-containers/bin/kata-monitor"] = want{0o755, SourceMonitor}
		w["/opt/confidential-containers/bin/kata-runtime"] = want{0o755, SourceRuntime}
		w["/opt/confidential-containers/bin/kata-collect-data.sh"] = want{0o755, SourceCollectData}
		w["/usr/local/bin/containerd-shim-kata-cc-v2"] = want{0o755, SourceShim}
		cfg := "/opt/confidential-containers/share/defaults/kata-containers/"
		w[cfg+"configuration-clh-snp-debug.toml"] = want{0o644, SourceSNPDebugConfig}
		if debug {
			w[cfg+"configuration-clh-snp.toml"] = want{0o644, SourceSNPDebugConfig}
		} else {
			w[cfg+"configuration-clh-snp.toml"] = want{0o644, SourceSNPConfig}
		}
		w["/usr/share/uvmbuild/host/containerd-kata-cc.toml"] = want{0o644, ""}
		w["/usr/share/uvmbuild/host/runtimeclass-kata-cc.yaml"] = want{0o644, ""}
		tools("/opt/confidential-containers/uvm/tools/osbuilder", "/opt/confidential-containers/uvm/src", true)
		uvm := "/opt/confidential-containers/share/kata-containers/"
		for _, n := range []string{SourceImage, SourceIGVM, SourceIGVMDebug, SourceMeasurement, SourceMeasurementDebug} {
			w[uvm+n] = want{0o644, n}
		}
	}
	return w
}

// checkTree compares the staged tree with the expectation: exactly these
// files (plus the manifest), with these modes and contents, and every
// directory 0755.
func checkTree(t *testing.T, root string, w map[string]want, tag string) {
	t.Helper()
	got := listTree(t, root)
	for _, p := range sortedKeys(got) {
		e := got[p]
		if strings.HasSuffix(p, "/") {
			if e.mode != 0o755 {
				t.Errorf("directory %s has mode %04o, want 0755", p, e.mode)
			}
			continue
		}
		if p == ManifestPath {
			continue
		}
		exp, ok := w[p]
		if !ok {
			t.Errorf("unexpected file %s", p)
			continue
		}
		if e.mode != exp.mode {
			t.Errorf("%s has mode %04o, want %04o", p, e.mode, exp.mode)
		}
		var content string
		switch {
		case exp.from == "":
			if e.content == "" {
				t.Errorf("%s is empty", p)
			}
			continue
		case strings.HasPrefix(exp.from, "src:"):
			content = strings.TrimPrefix(exp.from, "src:") + "\n"
		default:
			content = string(artifactContent(exp.from, tag, 0))
		}
		if e.content != content {
			t.Errorf("%s has content %q, want that of %s (%q)", p, e.content, exp.from, content)
		}
	}
	for _, p := range sortedKeys(w) {
		if _, ok := got[p]; !ok {
			t.Errorf("missing %s", p)
		}
	}
	if _, ok := got[ManifestPath]; !ok {
		t.Errorf("no manifest at %s", ManifestPath)
	}
}

type statKey struct {
	ino   uint64
	mtime time.Time
	mode  fs.FileMode
}

func statTree(t *testing.T, root string) map[string]statKey {
	t.Helper()
	out := map[string]statKey{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = statKey{inodeOf(st), st.ModTime(), st.Mode()}
		return nil
	})
	return out
}

func TestDeployTree(t *testing.T) {
	ctx := context.Background()
	out := makeOut(t, t.TempDir(), "v1", 0)
	src := makeKataSrc(t, t.TempDir())
	for _, tc := range []struct {
		variant Variant
		profile string
	}{
		{Kata, ProfileMsftMain},
		{Kata, ProfileRelease3_15},
		{Confpods, ProfileRelease3_15},
	} {
		for _, buildType := range []string{"release", "debug"} {
			t.Run(fmt.Sprintf("%s/%s/%s", tc.variant, tc.profile, buildType), func(t *testing.T) {
				root := t.TempDir()
				target := "deploy"
				if tc.variant == Confpods {
					target = "deploy-confpods"
				}
				p, err := ParamsFromVars(target, map[string]string{"BUILD_TYPE": buildType, "PROFILE": tc.profile}, out, src)
				if err != nil {
					t.Fatal(err)
				}
				p.Parts = append(p.Parts, PackageTools)
				p.StartServices = false
				res, err := Deploy(ctx, root, p, os.Stderr)
				if err != nil {
					t.Fatal(err)
				}
				w := expectedTree(tc.variant, tc.profile, buildType == "debug")
				checkTree(t, root, w, "v1")
				if len(res.Installed) != len(w) || len(res.Unchanged) != 0 {
					t.Errorf("first deploy: %d installed, %d unchanged; want %d, 0", len(res.Installed), len(res.Unchanged), len(w))
				}
				m, err := ReadManifest(root)
				if err != nil {
					t.Fatal(err)
				}
				if len(m.Files) != len(w) {
					t.Errorf("manifest records %d files, want %d", len(m.Files), len(w))
				}
				for _, f := range m.Files {
					if f.Mode != fmt.Sprintf("%04o", uint32(w[f.Path].mode)) || !strings.HasPrefix(f.Digest, "sha256:") || f.Variant != tc.variant {
						t.Errorf("manifest entry %+v", f)
					}
				}

				// Deploy again: nothing is written, nothing is backed up.
				before := statTree(t, root)
				res, err = Deploy(ctx, root, p, os.Stderr)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Installed) != 0 || len(res.Unchanged) != len(w) {
					t.Errorf("second deploy installed %v", res.Installed)
				}
				after := statTree(t, root)
				for path, st := range after {
					if b, ok := before[path]; !ok {
						t.Errorf("second deploy created %s", path)
					} else if b != st {
						t.Errorf("second deploy changed %s: %+v → %+v", path, b, st)
					}
				}
				for path := range before {
					if _, ok := after[path]; !ok {
						t.Errorf("second deploy removed %s", path)
					}
				}

				// Undeploy: the root is empty again.
				ures, err := Undeploy(ctx, root, p)
				if err != nil {
					t.Fatal(err)
				}
				if len(ures.Removed) != len(w) || len(ures.Modified) != 0 {
					t.Errorf("undeploy removed %d (%d modified), want %d", len(ures.Removed), len(ures.Modified), len(w))
				}
				if left := listTree(t, root); len(left) != 0 {
					t.Errorf("after undeploy the root still holds %v", sortedKeys(left))
				}
			})
		}
	}
}

func TestDeployUpdatesAndKeeps(t *testing.T) {
	ctx := context.Background()
	out1 := makeOut(t, t.TempDir(), "v1", 0)
	out2 := makeOut(t, t.TempDir(), "v2", 0)
	root := t.TempDir()
	p, err := ParamsFromVars("deploy-confpods", nil, out1, "")
	if err != nil {
		t.Fatal(err)
	}
	p.StartServices = false
	if _, err := Deploy(ctx, root, p, os.Stderr); err != nil {
		t.Fatal(err)
	}
	// A new build; the shim configuration is not redeployed (the admin
	// edited it), so it keeps its old content and stays recorded.
	cfg := filepath.Join(root, "opt/confidential-containers/share/defaults/kata-containers/configuration-clh-snp.toml")
	if err := os.WriteFile(cfg, []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.OutDir, p.RedeployShimConfig = out2, false
	res, err := Deploy(ctx, root, p, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(res.Installed, "/opt/confidential-containers/share/defaults/kata-containers/configuration-clh-snp.toml") {
		t.Error("configuration redeployed with SHIM_REDEPLOY_CONFIG=no")
	}
	if got, _ := os.ReadFile(cfg); string(got) != "edited\n" {
		t.Errorf("configuration overwritten: %q", got)
	}
	shim, _ := os.ReadFile(filepath.Join(root, "usr/local/bin/containerd-shim-kata-cc-v2"))
	if string(shim) != string(artifactContent(SourceShim, "v2", 0)) {
		t.Errorf("shim not updated: %q", shim)
	}
	for p := range listTree(t, root) {
		if strings.Contains(p, "~") || strings.Contains(p, tempInfix) {
			t.Errorf("backup or temporary file left: %s", p)
		}
	}
	// Undeploy only the UVM: the package stays.
	uv := p
	uv.Parts = []Part{UVM}
	if _, err := Undeploy(ctx, root, uv); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "opt/confidential-containers/share/kata-containers/kata-containers.img")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("UVM image still there after undeploy-uvm: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/local/bin/containerd-shim-kata-cc-v2")); err != nil {
		t.Errorf("package removed by an UVM undeploy: %v", err)
	}
	// Undeploy everything: the edited configuration is removed (it is
	// recorded) and reported as modified.
	ures, err := Uninstall(ctx, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ures.Modified) != 1 || !strings.HasSuffix(ures.Modified[0], "configuration-clh-snp.toml") {
		t.Errorf("modified = %v", ures.Modified)
	}
	if left := listTree(t, root); len(left) != 0 {
		t.Errorf("after undeploy the root still holds %v", sortedKeys(left))
	}
}

func TestDeployPrefixAndUVMPath(t *testing.T) {
	ctx := context.Background()
	out := makeOut(t, t.TempDir(), "v1", 0)
	root := t.TempDir()
	p, err := ParamsFromVars("deploy", map[string]string{"PREFIX": "/buildroot", "UVM_PATH": "/srv/uvm"}, out, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Deploy(ctx, root, p, os.Stderr); err != nil {
		t.Fatal(err)
	}
	tree := listTree(t, root)
	for _, p := range []string{
		"/buildroot/usr/local/bin/containerd-shim-kata-v2",
		"/buildroot/usr/share/defaults/kata-containers/configuration.toml",
		"/srv/uvm/kata-containers.img", // PREFIX does not apply to the UVM
	} {
		if _, ok := tree[p]; !ok {
			t.Errorf("missing %s; have %v", p, sortedKeys(tree))
		}
	}
	// The containerd fragment names the live path, not the staged one.
	frag := tree["/buildroot/usr/share/uvmbuild/host/containerd-kata.toml"].content
	if !strings.Contains(frag, `"/usr/share/defaults/kata-containers/configuration.toml"`) || strings.Contains(frag, "buildroot") {
		t.Errorf("fragment: %s", frag)
	}

	// PREFIX alone (RPM %install) is a staging root for package targets:
	// no privileges needed, the manifest lands under it.
	prefix := t.TempDir()
	pp, err := ParamsFromVars("deploy-package", map[string]string{"PREFIX": prefix}, out, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Deploy(ctx, "", pp, os.Stderr, withEUID(1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(prefix, "usr/local/bin/containerd-shim-kata-v2")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(prefix, filepath.FromSlash(ManifestPath))); err != nil {
		t.Error(err)
	}
	if _, err := Undeploy(ctx, "", pp, withEUID(1000)); err != nil {
		t.Fatal(err)
	}
	if left := listTree(t, prefix); len(left) != 0 {
		t.Errorf("after undeploy PREFIX still holds %v", sortedKeys(left))
	}
}

func TestDeployRefusesBeforeTouching(t *testing.T) {
	ctx := context.Background()
	out := makeOut(t, t.TempDir(), "v1", 0)
	p, err := ParamsFromVars("deploy-confpods", nil, out, "")
	if err != nil {
		t.Fatal(err)
	}
	// Live deploy without root.
	_, err = Deploy(ctx, "", p, os.Stderr, withEUID(1000))
	if !errors.Is(err, ErrNeedRoot) || !strings.Contains(err.Error(), "--root") {
		t.Errorf("live deploy as non-root: %v", err)
	}
	_, err = Undeploy(ctx, "/", p, withEUID(1000))
	if !errors.Is(err, ErrNeedRoot) {
		t.Errorf("live undeploy as non-root: %v", err)
	}

	// A missing artifact stops the deploy before anything is written.
	root := t.TempDir()
	os.Remove(filepath.Join(out, SourceIGVMDebug))
	_, err = Deploy(ctx, root, p, os.Stderr)
	if err == nil || !strings.Contains(err.Error(), SourceIGVMDebug) {
		t.Errorf("missing artifact: %v", err)
	}
	if left := listTree(t, root); len(left) != 0 {
		t.Errorf("a failed deploy wrote %v", sortedKeys(left))
	}

	// A source that differs from what the build recorded is refused.
	makeOut(t, out, "v1", 0)
	files, err := Layout(p)
	if err != nil {
		t.Fatal(err)
	}
	exp := map[string]string{files[0].Src: "sha256:" + strings.Repeat("0", 64)}
	_, err = Install(ctx, root, files, WithExpectedDigests(exp))
	if err == nil || !strings.Contains(err.Error(), "rebuild") {
		t.Errorf("stale artifact: %v", err)
	}
	if left := listTree(t, root); len(left) != 0 {
		t.Errorf("a refused deploy wrote %v", sortedKeys(left))
	}

	// package-tools without a kata source, bad variables, bad targets.
	if _, err := ParamsFromVars("deploy-confpods-package", map[string]string{"START_SERVICES": "maybe"}, out, ""); err == nil {
		t.Error("START_SERVICES=maybe accepted")
	}
	if _, err := ParamsFromVars("deploy-pakage", nil, out, ""); err == nil {
		t.Error("deploy-pakage accepted")
	}
	pt, _ := ParamsFromVars("deploy-package-tools", nil, out, "")
	if _, err := Layout(pt); err == nil || !strings.Contains(err.Error(), "kata-src") {
		t.Errorf("package-tools without source: %v", err)
	}
	rel, _ := ParamsFromVars("deploy", map[string]string{"UVM_PATH": "relative/dir"}, out, "")
	if _, err := Layout(rel); err == nil || !strings.Contains(err.Error(), "UVM_PATH") {
		t.Errorf("relative UVM_PATH: %v", err)
	}
}

func TestTargets(t *testing.T) {
	for _, tc := range []struct {
		target string
		v      Variant
		parts  []Part
		builds []string
	}{
		{"deploy", Kata, []Part{Package, UVM}, []string{"package", "uvm"}},
		{"deploy-package", Kata, []Part{Package}, []string{"package"}},
		{"deploy-package-tools", Kata, []Part{PackageTools}, []string{"package"}},
		{"deploy-uvm", Kata, []Part{UVM}, []string{"uvm"}},
		{"deploy-confpods", Confpods, []Part{Package, UVM}, []string{"package-confpods", "uvm-confpods"}},
		{"deploy-confpods-package", Confpods, []Part{Package}, []string{"package-confpods"}},
		{"deploy-confpods-package-tools", Confpods, []Part{PackageTools}, []string{"package-confpods"}},
		{"deploy-confpods-uvm", Confpods, []Part{UVM}, []string{"uvm-confpods"}},
	} {
		v, parts, err := TargetParts(tc.target)
		if err != nil || v != tc.v || !slices.Equal(parts, tc.parts) {
			t.Errorf("TargetParts(%s) = %v %v %v", tc.target, v, parts, err)
		}
		b, err := BuildTargets(tc.target)
		if err != nil || !slices.Equal(b, tc.builds) {
			t.Errorf("BuildTargets(%s) = %v %v", tc.target, b, err)
		}
	}
	if len(Targets()) != 8 {
		t.Errorf("Targets() = %v", Targets())
	}
	p, _ := ParamsFromVars("deploy-confpods", map[string]string{"BUILD_TYPE": "debug"}, "out", "")
	if !p.UseDebugShimConfig || !p.RedeployShimConfig || !p.StartServices || p.Profile != ProfileRelease3_15 {
		t.Errorf("debug confpods params %+v", p)
	}
	if got := ServiceCommands(p); len(got) != 3 || got[2][1] != "restart" {
		t.Errorf("ServiceCommands = %v", got)
	}
	p.UseDebugShimConfig = false
	p2, _ := ParamsFromVars("deploy-confpods", map[string]string{"BUILD_TYPE": "debug", "SHIM_USE_DEBUG_CONFIG": "no"}, "out", "")
	if p2.UseDebugShimConfig {
		t.Error("SHIM_USE_DEBUG_CONFIG=no did not override BUILD_TYPE=debug")
	}
	k, _ := ParamsFromVars("deploy", nil, "out", "")
	if ServiceCommands(k) != nil {
		t.Error("kata deploy starts services")
	}
}

func TestDeployStaysInsideRoot(t *testing.T) {
	ctx := context.Background()
	out := makeOut(t, t.TempDir(), "v1", 0)
	root := t.TempDir()
	outside := t.TempDir()
	// A staging root whose usr is a link to a directory elsewhere.
	if err := os.Symlink(outside, filepath.Join(root, "usr")); err != nil {
		t.Fatal(err)
	}
	p, _ := ParamsFromVars("deploy-package", nil, out, "")
	_, err := Deploy(ctx, root, p, os.Stderr)
	if err == nil || !strings.Contains(err.Error(), "outside the staging root") {
		t.Errorf("deploy through an escaping link: %v", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("deploy wrote outside the root: %v", ents)
	}
}

func TestRunServiceCommands(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	var out strings.Builder
	err := RunServiceCommands(context.Background(), [][]string{
		{"sh", "-c", "echo first"}, {"sh", "-c", "exit 3"}, {"sh", "-c", "echo never"},
	}, &out)
	if err == nil || !strings.Contains(err.Error(), "exit 3") {
		t.Errorf("error = %v", err)
	}
	if out.String() != "first\n" {
		t.Errorf("output %q: commands after a failure must not run", out.String())
	}
}
