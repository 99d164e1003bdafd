package diff

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
)

type tarFile struct {
	name, body string
	mode       int64
	mtime      int64
}

func makeTar(t *testing.T, files []tarFile, gz bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w *tar.Writer
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = tar.NewWriter(zw)
	} else {
		w = tar.NewWriter(&buf)
	}
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), ModTime: time.Unix(f.mtime, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			w.Write([]byte(f.body))
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		zw.Close()
	}
	return buf.Bytes()
}

func reportText(r *Report) string {
	var b strings.Builder
	r.WriteText(&b)
	return b.String()
}

func TestTarOneChangedFile(t *testing.T) {
	base := []tarFile{
		{"etc/", "", 0o755, 0},
		{"etc/hostname", "uvm\n", 0o644, 0},
		{"etc/os-release", "NAME=Azure Linux\nVERSION=3.0\nID=azurelinux\n", 0o644, 0},
		{"usr/bin/kata-agent", strings.Repeat("\x7fELF\x00", 100), 0o755, 0},
	}
	changed := append([]tarFile(nil), base...)
	changed[2] = tarFile{"etc/os-release", "NAME=Azure Linux\nVERSION=3.1\nID=azurelinux\n", 0o644, 0}
	for _, gz := range []bool{false, true} {
		dir := t.TempDir()
		a := writeFile(t, dir, "a.tar", makeTar(t, base, gz))
		b := writeFile(t, dir, "b.tar", makeTar(t, changed, gz))
		r, err := Files(context.Background(), a, b, nil)
		if err != nil {
			t.Fatal(err)
		}
		txt := reportText(r)
		t.Log(txt)
		if r.Kind != "tar" || len(r.Items) != 1 || r.Items[0].Where != "entry etc/os-release: content" {
			t.Fatalf("gzip=%v: want exactly the content of etc/os-release:\n%s", gz, txt)
		}
		if !strings.Contains(r.Items[0].Detail, "-VERSION=3.0") || !strings.Contains(r.Items[0].Detail, "+VERSION=3.1") {
			t.Errorf("no text diff:\n%s", txt)
		}
	}
}

func TestTarMetadata(t *testing.T) {
	a := []tarFile{{"bin/tool", "x", 0o755, 0}, {"var/log/stamp", "2024", 0o644, 0}}
	b := []tarFile{{"bin/tool", "x", 0o700, 0}, {"var/log/stamp", "2024", 0o644, 1700000000}, {"tmp/rand-8f3a", "", 0o644, 0}}
	dir := t.TempDir()
	pa := writeFile(t, dir, "a.tar", makeTar(t, a, false))
	pb := writeFile(t, dir, "b.tar", makeTar(t, b, false))
	r, err := Files(context.Background(), pa, pb, nil)
	if err != nil {
		t.Fatal(err)
	}
	txt := reportText(r)
	for _, want := range []string{"entry bin/tool: mode", "0755", "0700", "entry var/log/stamp: mtime", "entry tmp/rand-8f3a"} {
		if !strings.Contains(txt, want) {
			t.Errorf("report lacks %q:\n%s", want, txt)
		}
	}
}

func TestMeasurementAndVerityInfo(t *testing.T) {
	dir := t.TempDir()
	m := func(d string) []byte {
		return []byte("{\n  \"x-ms-sevsnpvm-guestsvn\": \"3\",\n  \"x-ms-sevsnpvm-launchmeasurement\": \"" + d + "\"\n}")
	}
	a := writeFile(t, dir, "a.cose", m(strings.Repeat("ab", 48)))
	b := writeFile(t, dir, "b.cose", m(strings.Repeat("cd", 48)))
	r, err := Files(context.Background(), a, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != "measurement" || len(r.Items) != 1 || r.Items[0].Where != "x-ms-sevsnpvm-launchmeasurement" {
		t.Fatalf("measurement:\n%s", reportText(r))
	}
	info := func(salt string) []byte {
		return []byte("VERITY header information for /dev/loop0p2\nUUID:            \t\nHash type:       \t1\nData blocks:     \t1000\nData block size: \t4096\nHash blocks:     \t9\nHash block size: \t4096\nHash algorithm:  \tsha256\nSalt:            \t" + salt + "\nRoot hash:      \t" + strings.Repeat("0", 64) + "\n")
	}
	a = writeFile(t, dir, "a.txt", info(strings.Repeat("1", 64)))
	b = writeFile(t, dir, "b.txt", info(strings.Repeat("2", 64)))
	r, err = Files(context.Background(), a, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != "verity-info" || len(r.Items) != 1 || r.Items[0].Where != "Salt" {
		t.Fatalf("verity info:\n%s", reportText(r))
	}
}

// synthDisk makes an MBR image with an ext4-looking partition 1 and a
// verity superblock at the start of partition 2.
func synthDisk(size int, uuid byte, flip int64) []byte {
	img := make([]byte, size)
	img[510], img[511] = 0x55, 0xaa
	le := binary.LittleEndian
	p1, p1n := uint32(2048), uint32(size/512-2048-64)
	put := func(i int, boot, typ byte, start, n uint32) {
		e := img[446+16*i:]
		e[0], e[4] = boot, typ
		le.PutUint32(e[8:], start)
		le.PutUint32(e[12:], n)
	}
	put(0, 0x80, 0x83, p1, p1n)
	put(1, 0, 0x83, p1+p1n, 64)
	sb := img[int(p1)*512+1024:]
	le.PutUint16(sb[0x38:], 0xEF53)
	le.PutUint32(sb[0x4:], p1n/8)
	sb[0x68] = uuid
	vs := img[int(p1+p1n)*512:]
	copy(vs, "verity\x00\x00")
	le.PutUint32(vs[8:], 1)
	copy(vs[32:], "sha256")
	if flip > 0 {
		img[flip] ^= 0xff
	}
	return img
}

func TestDisk(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.img", synthDisk(4<<20, 1, 0))
	b := writeFile(t, dir, "b.img", synthDisk(4<<20, 2, 2<<20+5))
	r, err := Files(context.Background(), a, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	txt := reportText(r)
	t.Log(txt)
	if r.Kind != "disk" || !strings.Contains(txt, "partition 1 ext4 superblock s_uuid") {
		t.Fatalf("superblock field not named:\n%s", txt)
	}
	// 2 MiB+5 is in partition 1 (starts at 1 MiB): block 256.
	if !strings.Contains(txt, "partition 1, blocks 256-256") {
		t.Errorf("differing block not named:\n%s", txt)
	}
}

func TestBinaryAndText(t *testing.T) {
	dir := t.TempDir()
	x := bytes.Repeat([]byte{0, 1, 2, 3}, 3000)
	y := bytes.Clone(x)
	y[5000] = 0xee
	y[5001] = 0xef
	a := writeFile(t, dir, "a.bin", x)
	b := writeFile(t, dir, "b.bin", y)
	r, err := Files(context.Background(), a, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	txt := reportText(r)
	if r.Kind != "binary" || !strings.Contains(txt, "first difference at offset 5000 (0x1388); 2 byte(s) differ in 1 block(s)") {
		t.Fatalf("binary:\n%s", txt)
	}
	a = writeFile(t, dir, "a.txt", []byte("one\ntwo\nthree\n"))
	b = writeFile(t, dir, "b.txt", []byte("one\n2\nthree\n"))
	r, err = Files(context.Background(), a, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "@@ -1,3 +1,3 @@\n one\n-two\n+2\n three\n"; !strings.Contains(r.Items[0].Detail, want) {
		t.Fatalf("text diff %q lacks %q", r.Items[0].Detail, want)
	}
}

func TestDirs(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeFile(t, a, "build.json", []byte("{}"))
	writeFile(t, b, "build.json", []byte("{}"))
	writeFile(t, a, "root_hash.txt", []byte("x\n"))
	writeFile(t, b, "root_hash.txt", []byte("y\n"))
	writeFile(t, a, "only-a", nil)
	r, err := Files(context.Background(), a, b, &Options{LabelA: "A", LabelB: "B"})
	if err != nil {
		t.Fatal(err)
	}
	txt := reportText(r)
	if len(r.Items) != 2 || r.Items[0].Where != "only-a: only in A" || r.Items[1].Where != "root_hash.txt" || r.Items[1].Sub == nil {
		t.Fatalf("dirs:\n%s", txt)
	}
	if _, err := Files(context.Background(), a, writeFile(t, b, "f", nil), nil); !errors.Is(err, ErrIncomparable) {
		t.Errorf("dir vs file: %v, want ErrIncomparable", err)
	}
}
