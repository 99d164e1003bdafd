package cli

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func imageTestTar(t *testing.T, path string, extra ...tar.Header) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	files := []tar.Header{
		{Name: "usr/lib/systemd/systemd", Typeflag: tar.TypeReg, Mode: 0o755, Size: 300000},
		{Name: "sbin/init", Typeflag: tar.TypeSymlink, Linkname: "/usr/lib/systemd/systemd"},
		{Name: "etc/os-release", Typeflag: tar.TypeReg, Mode: 0o644, Size: 20},
	}
	for _, h := range append(files, extra...) {
		tw.WriteHeader(&h)
		tw.Write(bytes.Repeat([]byte{'u'}, int(h.Size)))
	}
	tw.Close()
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestImageCmd(t *testing.T) {
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 not installed (e2fsprogs ≥ 1.47.1)")
	}
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "rootfs.tar")
	imageTestTar(t, tarPath)
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	img := filepath.Join(dir, "kata-containers.img")
	rh := filepath.Join(dir, "root_hash.txt")
	out, errOut, code := runVerityCLI(t, "image", "--rootfs", tarPath, "--measured", "-o", img, "--root-hash-file", rh)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	txt, _ := os.ReadFile(rh)
	if out != string(txt) || !strings.Contains(out, "VERITY header information for /dev/vda2\n") || !strings.Contains(out, "Hash type:       \t1\n") {
		t.Errorf("stdout %q, root_hash.txt %q", out, txt)
	}
	if st, err := os.Stat(img); err != nil || st.Size()%(1<<20) != 0 {
		t.Errorf("image: %v", err)
	}
	out2, _, code := runVerityCLI(t, "image", "--rootfs", tarPath, "--measured", "-o", img+"2")
	if code != 0 || out2 != out {
		t.Errorf("second build differs or failed (%d)", code)
	}
	a, _ := os.ReadFile(img)
	b, _ := os.ReadFile(img + "2")
	if !bytes.Equal(a, b) {
		t.Error("images differ")
	}
	_, _, code = runVerityCLI(t, "image", "--rootfs", tarPath, "-o", filepath.Join(dir, "plain.img"), "--salt", "-", "--json")
	if code != 0 {
		t.Errorf("plain image: exit %d", code)
	}
}

func TestImageCmdBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.tar")
	imageTestTar(t, bad, tar.Header{Name: "/abs", Typeflag: tar.TypeReg})
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--rootfs", bad, "-o", filepath.Join(out, "x.img")}, 1, "absolute path"},
		{[]string{"--rootfs", bad}, 2, "required"},
		{[]string{"--rootfs", bad, "-o", filepath.Join(out, "x.img"), "--salt", "zz"}, 1, "not hex"},
		{[]string{"--rootfs", bad, "-o", filepath.Join(out, "x.img"), "--bogus"}, 2, "unknown flag"},
	} {
		_, errOut, code := runVerityCLI(t, append([]string{"image"}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, %q; want %d, %q", c.args, code, errOut, c.code, c.want)
		}
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("output left behind: %v", ents)
	}
}
