package diff

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uvmbuild/uvmbuild/builder/igvm"
)

// synthIGVM builds a small, valid IGVM file whose guest memory holds a
// VMSA page (RSI → boot_params), boot_params with the "HdrS" magic and
// cmd_line_ptr, the command line itself, and a kernel page.
func synthIGVM(t *testing.T, cmdline string) []byte {
	t.Helper()
	le := binary.LittleEndian
	const (
		bpGPA    = 0x10000
		cmdGPA   = 0x11000
		vmsaGPA  = 0x803000
		kernGPA  = 0x100000
		kernSize = 0x2000
	)
	bp := make([]byte, 4096)
	bp[0x1fe], bp[0x1ff] = 0x55, 0xaa
	copy(bp[0x202:], "HdrS")
	le.PutUint32(bp[0x214:], kernGPA)
	le.PutUint32(bp[0x228:], cmdGPA)
	le.PutUint32(bp[0x238:], 255)
	le.PutUint64(bp[0x258:], kernGPA)
	le.PutUint32(bp[0x260:], kernSize)
	cmd := make([]byte, 4096)
	copy(cmd, cmdline)
	vmsa := make([]byte, 4096)
	le.PutUint64(vmsa[0x330:], bpGPA)
	kern := bytes.Repeat([]byte{0x90}, 4096)

	type pg struct {
		gpa  uint64
		data []byte
		vp   bool
	}
	pages := []pg{{bpGPA, bp, false}, {cmdGPA, cmd, false}, {kernGPA, kern, false}, {kernGPA + 0x1000, nil, false}, {vmsaGPA, vmsa, true}}
	var hdrs []byte
	put := func(typ uint32, body []byte) {
		hdrs = le.AppendUint32(hdrs, typ)
		hdrs = le.AppendUint32(hdrs, uint32(len(body)))
		hdrs = append(hdrs, body...)
		for len(hdrs)%8 != 0 {
			hdrs = append(hdrs, '0')
		}
	}
	put(uint32(igvm.TypeSupportedPlatform), []byte{1, 0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	put(uint32(igvm.TypeGuestPolicy), []byte{0x1f, 0, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0})
	// First pass to learn the headers' size, second to fill FileOffsets.
	var vhSize int
	for pass := 0; pass < 2; pass++ {
		hdrs = hdrs[:48]
		fo := uint32(igvm.FixedHeaderSize + vhSize)
		for _, p := range pages {
			body := make([]byte, 24)
			le.PutUint64(body, p.gpa)
			le.PutUint32(body[8:], 1)
			if p.data != nil {
				le.PutUint32(body[12:], fo)
				fo += 4096
			}
			if p.vp {
				put(uint32(igvm.TypeVPContext), body[:20])
			} else {
				put(uint32(igvm.TypePageData), body)
			}
		}
		vhSize = len(hdrs)
	}
	out := make([]byte, igvm.FixedHeaderSize)
	le.PutUint32(out, igvm.Magic)
	le.PutUint32(out[4:], 1)
	le.PutUint32(out[8:], igvm.FixedHeaderSize)
	le.PutUint32(out[12:], uint32(vhSize))
	out = append(out, hdrs...)
	for _, p := range pages {
		out = append(out, p.data...)
	}
	le.PutUint32(out[16:], uint32(len(out)))
	le.PutUint32(out[20:], crc32.ChecksumIEEE(out[:igvm.FixedHeaderSize+vhSize]))
	return out
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestIGVMCommandLine(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.igvm", synthIGVM(t, "console=hvc0 root=/dev/dm-0 quiet"))
	b := writeFile(t, dir, "b.igvm", synthIGVM(t, "console=hvc0 root=/dev/dm-0 debug"))
	r, err := Files(context.Background(), a, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != "igvm" {
		t.Fatalf("kind %q, want igvm", r.Kind)
	}
	var txt strings.Builder
	r.WriteText(&txt)
	t.Log(txt.String())
	if len(r.Items) == 0 || r.Items[0].Where != "kernel command line" {
		t.Fatalf("first item is not the command line:\n%s", txt.String())
	}
	if !strings.Contains(r.Items[0].A, "quiet") || !strings.Contains(r.Items[0].B, "debug") {
		t.Errorf("command lines not shown: %+v", r.Items[0])
	}
	var mem bool
	for _, it := range r.Items {
		if strings.HasPrefix(it.Where, "guest memory 0x11000-0x11fff") && strings.Contains(it.Where, "kernel command line") {
			mem = true
		}
		if strings.HasPrefix(it.Where, "variable header") {
			t.Errorf("unexpected header difference: %+v", it)
		}
	}
	if !mem {
		t.Errorf("no memory item naming the command line page:\n%s", txt.String())
	}

	// Identical files are reported as such.
	r, err = Files(context.Background(), a, a, nil)
	if err != nil || !r.Same() {
		t.Fatalf("same file: %v %+v", err, r)
	}
}

// TestIGVMVectors uses igvmgen's reference outputs: a changed command line
// byte inside a real file, and two cases that differ by an initrd.
func TestIGVMVectors(t *testing.T) {
	cases := filepath.Join("..", "..", "..", "shared", "vectors", "igvm", "cases")
	ref := filepath.Join(cases, "kata_x64_opt_clh_synth", "ref.igvm")
	data, err := os.ReadFile(ref)
	if err != nil {
		t.Skipf("igvmgen vectors not available (%v): skipping", err)
	}
	f, err := readIGVM(ref)
	if err != nil {
		t.Fatal(err)
	}
	bi := f.boot()
	if bi == nil || bi.Cmdline != "console=ttyS0 root=/dev/vda1 rw" {
		t.Fatalf("boot info %+v", bi)
	}
	i := bytes.Index(data, []byte("root=/dev/vda1 rw"))
	mod := bytes.Clone(data)
	copy(mod[i:], "root=/dev/vda2 ro")
	dir := t.TempDir()
	b := writeFile(t, dir, "mod.igvm", mod)
	r, err := Files(context.Background(), ref, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	var txt strings.Builder
	r.WriteText(&txt)
	t.Log(txt.String())
	if r.Items[0].Where != "kernel command line" || !strings.Contains(r.Items[0].B, "root=/dev/vda2 ro") {
		t.Fatalf("command line not reported first:\n%s", txt.String())
	}

	rd := filepath.Join(cases, "kata_x64_opt_clh_rd", "ref.igvm")
	r, err = Files(context.Background(), ref, rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	txt.Reset()
	r.WriteText(&txt)
	t.Log(txt.String())
	if !strings.Contains(txt.String(), "initrd") {
		t.Errorf("initrd region not named:\n%s", txt.String())
	}
	if !strings.Contains(txt.String(), "ACPI") && !strings.Contains(txt.String(), "boot_params") {
		t.Logf("note: no ACPI/boot_params difference named")
	}
}
