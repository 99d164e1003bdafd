package ext4

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func needMkfs(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 not installed (Debian package e2fsprogs ≥ 1.47.1)")
	}
	if _, err := CheckVersion(context.Background(), ""); err != nil {
		t.Skipf("installed mkfs.ext4 unusable: %v", err)
	}
}

func writeTar(t *testing.T, path string, files map[string]int) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755})
	for name, size := range files {
		tw.WriteHeader(&tar.Header{Name: "./" + name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size)})
		tw.Write(bytes.Repeat([]byte{'x'}, size))
	}
	tw.Close()
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func dumpe2fs(t *testing.T, img string) map[string]uint64 {
	t.Helper()
	out, err := exec.Command("dumpe2fs", "-h", img).Output()
	if err != nil {
		t.Fatalf("dumpe2fs: %v", err)
	}
	m := map[string]uint64{}
	re := regexp.MustCompile(`(?m)^([A-Za-z ]+):\s+(\d+)$`)
	for _, s := range re.FindAllStringSubmatch(string(out), -1) {
		m[s[1]], _ = strconv.ParseUint(s[2], 10, 64)
	}
	return m
}

// TestGeometryMatchesMkfs checks the layout model against the real mkfs on
// empty file systems across the size classes that change the layout.
func TestGeometryMatchesMkfs(t *testing.T) {
	needMkfs(t)
	if _, err := exec.LookPath("dumpe2fs"); err != nil {
		t.Skip("dumpe2fs not installed")
	}
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "empty.tar")
	writeTar(t, tarPath, nil)
	for _, mib := range []int64{8, 20, 127, 128, 129, 130, 200, 385, 1100, 2100} {
		t.Run(fmt.Sprint(mib), func(t *testing.T) {
			img := filepath.Join(dir, "img")
			os.Remove(img)
			size := mib << 20
			if err := os.WriteFile(img, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(img, size); err != nil {
				t.Fatal(err)
			}
			err := Make(context.Background(), img, Options{Tar: tarPath, Size: size, UUID: "12345678-9abc-8ef0-9234-56789abcdef0",
				HashSeed: "12345678-9abc-8ef0-9234-56789abcdef1", SourceDateEpoch: 1, ReservedPercent: 3})
			if err != nil {
				t.Fatal(err)
			}
			g, err := Geometry(size, 3)
			if err != nil {
				t.Fatal(err)
			}
			d := dumpe2fs(t, img)
			for k, v := range map[string]uint64{"Block count": g.Blocks, "Free blocks": g.FreeBlocks, "Reserved block count": g.ReservedBlocks,
				"Inodes per group": g.InodesPerGroup, "Reserved GDT blocks": g.ReservedGDT} {
				if d[k] != v {
					t.Errorf("%s: mkfs %d, model %d", k, d[k], v)
				}
			}
		})
	}
}

func TestMakeReproducibleAndClean(t *testing.T) {
	needMkfs(t)
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "r.tar")
	writeTar(t, tarPath, map[string]int{"a": 10000, "b": 1})
	var imgs [][]byte
	for i := range 2 {
		img := filepath.Join(dir, fmt.Sprint("img", i))
		os.WriteFile(img, bytes.Repeat([]byte{0xee}, 1<<20), 0o644)
		os.Truncate(img, 40<<20)
		o := Options{Tar: tarPath, Offset: 1 << 20, Size: 32 << 20, UUID: "12345678-9abc-8ef0-9234-56789abcdef0",
			HashSeed: "12345678-9abc-8ef0-9234-56789abcdef1", SourceDateEpoch: 1700000000, ReservedPercent: 3, TempDir: dir}
		if err := Make(context.Background(), img, o); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(img)
		if !bytes.Equal(b[:1<<20], bytes.Repeat([]byte{0xee}, 1<<20)) || len(b) != 40<<20 {
			t.Fatal("mkfs wrote outside its region or resized the file")
		}
		imgs = append(imgs, b)
	}
	if !bytes.Equal(imgs[0], imgs[1]) {
		t.Error("two runs differ")
	}
	p1 := filepath.Join(dir, "p1")
	os.WriteFile(p1, imgs[0][1<<20:33<<20], 0o644)
	if out, err := exec.Command("e2fsck", "-fn", p1).CombinedOutput(); err != nil {
		t.Errorf("e2fsck: %v\n%s", err, out)
	}
}

func TestMakeErrors(t *testing.T) {
	needMkfs(t)
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "big.tar")
	writeTar(t, tarPath, map[string]int{"big": 12 << 20})
	img := filepath.Join(dir, "img")
	os.WriteFile(img, nil, 0o644)
	os.Truncate(img, 8<<20)
	o := Options{Tar: tarPath, Size: 8 << 20, UUID: "12345678-9abc-8ef0-9234-56789abcdef0", HashSeed: "12345678-9abc-8ef0-9234-56789abcdef1"}
	if err := Make(context.Background(), img, o); !errors.Is(err, ErrNoSpace) {
		t.Errorf("too small: %v, want ErrNoSpace", err)
	}
	o.Mkfs = filepath.Join(dir, "no-such-mkfs")
	if err := Make(context.Background(), img, o); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing mkfs: %v", err)
	}
	old := filepath.Join(dir, "old-mkfs")
	os.WriteFile(old, []byte("#!/bin/sh\necho 'mke2fs 1.47.0 (5-Feb-2023)' >&2\necho '\tUsing EXT2FS Library version 1.47.0' >&2\n"), 0o755)
	o.Mkfs = old
	err := Make(context.Background(), img, o)
	if !errors.Is(err, ErrTooOld) || !strings.Contains(err.Error(), "1.47.0") || !strings.Contains(err.Error(), "bookworm-backports") {
		t.Errorf("old mkfs: %v", err)
	}
	if v, err := CheckVersion(context.Background(), ""); err != nil || v < "1.47.1" {
		t.Errorf("installed: %s %v", v, err)
	}
}
