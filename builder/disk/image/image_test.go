package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/uvmbuild/uvmbuild/builder/ext4"
	"github.com/uvmbuild/uvmbuild/builder/rootfs"
)

func needTools(t *testing.T) {
	t.Helper()
	if _, err := ext4.CheckVersion(context.Background(), ""); err != nil {
		t.Skipf("mkfs.ext4 ≥ 1.47.1 needed (Debian: e2fsprogs from bookworm-backports): %v", err)
	}
}

// testRootfs writes a small rootfs tar (about 4 MiB) in an unsorted order.
func testRootfs(t *testing.T, path string, extra ...*tar.Header) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	add := func(h *tar.Header, body []byte) {
		h.Size = int64(len(body))
		h.ModTime = h.ModTime.Add(0)
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	for i := 40; i > 0; i-- {
		body := make([]byte, r.IntN(200000))
		for j := range body {
			body[j] = byte(r.IntN(16))
		}
		add(&tar.Header{Name: fmt.Sprintf("usr/share/data/f%03d", i), Typeflag: tar.TypeReg, Mode: 0o644}, body)
	}
	add(&tar.Header{Name: "usr/lib/systemd/systemd", Typeflag: tar.TypeReg, Mode: 0o755}, []byte("#!/bin/sh\n"))
	add(&tar.Header{Name: "sbin/init", Typeflag: tar.TypeSymlink, Linkname: "../usr/lib/systemd/systemd", Mode: 0o777}, nil)
	add(&tar.Header{Name: "usr/bin/busybox", Typeflag: tar.TypeReg, Mode: 0o4755}, bytes.Repeat([]byte("bb"), 5000))
	add(&tar.Header{Name: "usr/bin/sh", Typeflag: tar.TypeLink, Linkname: "usr/bin/busybox"}, nil)
	add(&tar.Header{Name: "etc/hostname", Typeflag: tar.TypeReg, Mode: 0o644, Uname: "builder"}, []byte("uvm\n"))
	// Non-ASCII names and link targets (PAX records, UTF-8).
	add(&tar.Header{Name: "usr/share/zoneinfo/América/São_Paulo", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("tz"))
	add(&tar.Header{Name: "etc/localtime", Typeflag: tar.TypeSymlink, Linkname: "/usr/share/zoneinfo/América/São_Paulo"}, nil)
	add(&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}, nil)
	for _, h := range extra {
		add(h, nil)
	}
	tw.Close()
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func listDir(t *testing.T, dir string) []string {
	ents, _ := os.ReadDir(dir)
	var n []string
	for _, e := range ents {
		n = append(n, e.Name())
	}
	return n
}

func extract(t *testing.T, img []byte, start, size int64, path string) {
	t.Helper()
	if err := os.WriteFile(path, img[start:start+size], 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMeasuredImage(t *testing.T) {
	needTools(t)
	work := t.TempDir()
	rootfsTar := filepath.Join(work, "rootfs.tar")
	testRootfs(t, rootfsTar)
	wd, _ := os.Getwd()
	defer os.Chdir(wd)

	var imgs, texts [][]byte
	var last *Result
	for i, env := range []struct {
		umask int
		tz    string
	}{{0o022, "UTC"}, {0o077, "America/Los_Angeles"}} {
		dir := filepath.Join(work, fmt.Sprint("run", i), "deeper")
		os.MkdirAll(dir, 0o755)
		os.Chdir(dir)
		old := syscall.Umask(env.umask)
		t.Setenv("TZ", env.tz)
		res, err := Build(context.Background(), Options{Rootfs: rootfsTar, Output: "kata-containers.img", Measured: true,
			SourceDateEpoch: 1700000000, RootHashFile: "root_hash.txt", RootHashJSON: "root_hash.json"})
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		img, _ := os.ReadFile(filepath.Join(dir, "kata-containers.img"))
		txt, _ := os.ReadFile(filepath.Join(dir, "root_hash.txt"))
		imgs, texts, last = append(imgs, img), append(texts, txt), res
		if got := listDir(t, dir); strings.Join(got, " ") != "kata-containers.img root_hash.json root_hash.txt" {
			t.Errorf("output dir holds %v", got)
		}
	}
	if !bytes.Equal(imgs[0], imgs[1]) || !bytes.Equal(texts[0], texts[1]) {
		t.Fatal("two builds differ (working directory, umask, TZ)")
	}
	img := imgs[0]
	l := last.Layout
	if int64(len(img)) != l.Size || len(l.Partitions) != 2 {
		t.Fatalf("image %d bytes, layout %+v", len(img), l)
	}
	t.Logf("image %d MiB, rootfs du %d bytes, %s", l.Size>>20, last.Rootfs.DiskUsage, last.KernelArg)
	if !strings.Contains(string(texts[0]), "Salt:            \t"+last.Verity.Salt+"\n") || len(last.Verity.Salt) != 64 {
		t.Errorf("root_hash.txt:\n%s", texts[0])
	}
	want := fmt.Sprintf(`dm-mod.create="dm-verity,,,ro,0 %d verity 1 /dev/vda1 /dev/vda2 4096 4096 %d 0 sha256 %s %s"`,
		l.Partitions[0].Size/512, l.Partitions[0].Size/4096, last.Verity.RootHash, last.Verity.Salt)
	if last.KernelArg != want {
		t.Errorf("kernel arg\n%s\nwant\n%s", last.KernelArg, want)
	}

	dir := t.TempDir()
	imgPath := filepath.Join(dir, "img")
	os.WriteFile(imgPath, img, 0o644)
	if _, err := exec.LookPath("sfdisk"); err == nil {
		out, err := exec.Command("sfdisk", "--dump", imgPath).Output()
		if err != nil {
			t.Fatal(err)
		}
		p1, p2 := l.Partitions[0], l.Partitions[1]
		for _, w := range []string{
			"label: dos\n",
			fmt.Sprintf("label-id: 0x%08x\n", last.DiskID),
			fmt.Sprintf("%s1 : start=        2048, size=%12d, type=83, bootable\n", imgPath, p1.Size/512),
			fmt.Sprintf("%s2 : start=%12d, size=%12d, type=83\n", imgPath, p2.Start/512, p2.Size/512),
		} {
			if !strings.Contains(string(out), w) {
				t.Errorf("sfdisk --dump lacks %q:\n%s", w, out)
			}
		}
	} else {
		t.Log("sfdisk not installed (Debian package fdisk): partition table not cross-checked")
	}
	p1, p2 := filepath.Join(dir, "p1"), filepath.Join(dir, "p2")
	extract(t, img, l.Partitions[0].Start, l.Partitions[0].Size, p1)
	extract(t, img, l.Partitions[1].Start, l.Partitions[1].Size, p2)
	if out, err := exec.Command("e2fsck", "-fn", p1).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn p1: %v\n%s", err, out)
	}
	if out, err := exec.Command("debugfs", "-R", "stat /usr/bin/busybox", p1).CombinedOutput(); err == nil {
		if !strings.Contains(string(out), "Links: 2") || !strings.Contains(string(out), "Mode:  04755") {
			t.Errorf("busybox inode:\n%s", out)
		}
	}
	if vs, err := exec.LookPath("veritysetup"); err == nil {
		out, err := exec.Command(vs, "verify", p1, p2, last.Verity.RootHash, "--no-superblock", "--salt", last.Verity.Salt,
			"--data-blocks", strconv.FormatUint(last.Verity.DataBlocks, 10)).CombinedOutput()
		if err != nil {
			t.Errorf("veritysetup verify p1 p2: %v\n%s", err, out)
		}
	} else {
		t.Log("veritysetup not installed (cryptsetup-bin): hash partition not cross-checked")
	}
}

func TestPlainImage(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	rootfsTar := filepath.Join(dir, "rootfs.tar")
	testRootfs(t, rootfsTar)
	out := filepath.Join(dir, "plain.img")
	res, err := Build(context.Background(), Options{Rootfs: rootfsTar, Output: out, AlignMiB: 128})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Layout.Partitions) != 1 || res.Layout.Partitions[0].Bootable || res.Verity != nil || (res.Layout.Size>>20+2)%128 != 0 {
		t.Errorf("plain layout %+v", res.Layout)
	}
	img, _ := os.ReadFile(out)
	p1 := filepath.Join(dir, "p1")
	extract(t, img, res.Layout.Partitions[0].Start, res.Layout.Partitions[0].Size, p1)
	if out, err := exec.Command("e2fsck", "-fn", p1).CombinedOutput(); err != nil {
		t.Errorf("e2fsck: %v\n%s", err, out)
	}
}

func TestBadInput(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tar")
	testRootfs(t, good)
	cases := []struct {
		name  string
		extra *tar.Header
		o     Options
		want  string
		is    error
	}{
		{name: "absolute", extra: &tar.Header{Name: "/etc/x", Typeflag: tar.TypeReg}, want: "absolute path"},
		{name: "dotdot", extra: &tar.Header{Name: "etc/../../x", Typeflag: tar.TypeReg}, want: `".."`},
		{name: "escaping symlink", extra: &tar.Header{Name: "etc/x", Typeflag: tar.TypeSymlink, Linkname: "../../../root"}, want: "escapes the root"},
		{name: "escaping hardlink", extra: &tar.Header{Name: "etc/x", Typeflag: tar.TypeLink, Linkname: "../x"}, want: `".."`},
		{name: "too small", o: Options{SizeMiB: 8}, want: "image too small", is: ErrTooSmall},
		{name: "mkfs missing", o: Options{Mkfs: filepath.Join(dir, "nope")}, want: "mkfs.ext4 not found"},
		{name: "mkfs too old", o: Options{Mkfs: filepath.Join(dir, "old-mkfs")}, want: "1.47.0", is: ext4.ErrTooOld},
		{name: "no init", extra: nil, o: Options{Filter: func(n string, _ *tar.Header) (rootfs.Action, error) {
			if n == "sbin/init" {
				return rootfs.Drop, nil
			}
			return rootfs.Keep, nil
		}}, want: "no /sbin/init"},
	}
	os.WriteFile(filepath.Join(dir, "old-mkfs"), []byte("#!/bin/sh\necho 'mke2fs 1.47.0 (5-Feb-2023)' >&2\n"), 0o755)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := t.TempDir()
			in := good
			if c.extra != nil {
				in = filepath.Join(out, "..", c.name+".tar")
				testRootfs(t, in, c.extra)
			}
			o := c.o
			o.Rootfs, o.Output, o.Measured, o.RootHashFile = in, filepath.Join(out, "kata-containers.img"), true, filepath.Join(out, "root_hash.txt")
			_, err := Build(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			if left := listDir(t, out); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

// TestNoClockNoRandomness asserts by construction that a different day
// cannot change an image: no package on the image path reads the wall clock
// or a random source.
func TestNoClockNoRandomness(t *testing.T) {
	for _, dir := range []string{".", "..", "../../ext4", "../../rootfs", "../../verity"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				if p := strings.Trim(imp.Path.Value, `"`); p == "math/rand" || p == "math/rand/v2" || p == "crypto/rand" {
					t.Errorf("%s imports %s", f, p)
				}
			}
			for _, bad := range []string{"time.Now(", "time.Since(", "os.Getenv(\"SOURCE_DATE_EPOCH\")"} {
				if bytes.Contains(src, []byte(bad)) {
					t.Errorf("%s calls %s", f, bad)
				}
			}
		}
	}
}
