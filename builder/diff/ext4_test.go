package diff

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// debugfsNum runs a debugfs request and returns the first number of its
// output matching re.
func debugfsNum(t *testing.T, img, req string, re *regexp.Regexp) int64 {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", req, img).Output()
	if err != nil {
		t.Fatalf("debugfs %s: %v", req, err)
	}
	m := re.FindSubmatch(out)
	if m == nil {
		t.Fatalf("debugfs %s: no match in %q", req, out)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

// TestExt4Blocks builds a real ext4 file system with mkfs.ext4, puts it in
// an MBR image, and checks that differing blocks are named: a file's data,
// its inode's inode table block, the journal, the superblock.
func TestExt4Blocks(t *testing.T) {
	for _, tool := range []string{"mkfs.ext4", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (e2fsprogs): skipping", tool)
		}
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "hello.txt"), bytes.Repeat([]byte("hello world\n"), 2000), 0o644)
	os.WriteFile(filepath.Join(src, "sub", "x"), []byte("x\n"), 0o644)
	fs := filepath.Join(dir, "fs.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-b", "4096", "-d", src, fs, "16M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	num := regexp.MustCompile(`(\d+)`)
	dataBlock := debugfsNum(t, fs, "bmap /hello.txt 0", num)
	ino := debugfsNum(t, fs, "imap /hello.txt", regexp.MustCompile(`Inode (\d+)`))
	itBlock := debugfsNum(t, fs, "imap /hello.txt", regexp.MustCompile(`located at block (\d+)`))
	journal := debugfsNum(t, fs, "bmap <8> 100", num)
	imap, _ := exec.Command("debugfs", "-R", "imap /hello.txt", fs).Output()
	m := regexp.MustCompile(`offset 0x([0-9a-f]+)`).FindSubmatch(imap)
	if m == nil {
		t.Fatalf("debugfs imap: no offset in %q", imap)
	}
	inodeOff, _ := strconv.ParseInt(string(m[1]), 16, 64)

	// MBR: partition 1 at 1 MiB holding the file system.
	fsData, err := os.ReadFile(fs)
	if err != nil {
		t.Fatal(err)
	}
	img := make([]byte, 1<<20, 1<<20+len(fsData))
	img[510], img[511] = 0x55, 0xaa
	e := img[446:]
	e[4] = 0x83
	binary.LittleEndian.PutUint32(e[8:], 2048)
	binary.LittleEndian.PutUint32(e[12:], uint32(len(fsData)/512))
	img = append(img, fsData...)
	a := writeFile(t, dir, "a.img", img)

	layout := readExt4Layout(bytes.NewReader(img), 1<<20)
	if layout == nil {
		t.Fatal("no ext4 layout read")
	}
	for _, tc := range []struct {
		block int64
		want  string
	}{
		{dataBlock, "ext4 data block " + strconv.FormatInt(dataBlock, 10) + ":\n  - inode " + strconv.FormatInt(ino, 10) + ", file block 0 /hello.txt"},
		{itBlock, "ext4 inode table (group 0, inodes "},
		{journal, "ext4 journal"},
		{0, "ext4 superblock"},
	} {
		mod := bytes.Clone(img)
		off := int64(1<<20) + tc.block*4096 + 1100
		if tc.block == itBlock {
			// Inside the file's inode: its i_mtime.
			off = int64(1<<20) + tc.block*4096 + inodeOff + 0x10
		}
		mod[off] ^= 0x80
		b := writeFile(t, dir, "b.img", mod)
		r, err := Files(context.Background(), a, b, nil)
		if err != nil {
			t.Fatal(err)
		}
		txt := reportText(r)
		if !strings.Contains(txt, tc.want) {
			t.Errorf("block %d: report lacks %q:\n%s", tc.block, tc.want, txt)
		}
		if tc.block == itBlock && !strings.Contains(txt, "partition 1 ext4 inode "+strconv.FormatInt(ino, 10)+" /hello.txt\n") {
			t.Errorf("inode %d /hello.txt not named:\n%s", ino, txt)
		}
		if tc.block == itBlock {
			// The named inode range holds the file's inode.
			m := regexp.MustCompile(`inodes (\d+)-(\d+)`).FindStringSubmatch(txt)
			lo, _ := strconv.Atoi(m[1])
			hi, _ := strconv.Atoi(m[2])
			if int64(lo) > ino || int64(hi) < ino {
				t.Errorf("inode %d not in the named range %d-%d", ino, lo, hi)
			}
		}
	}
}
