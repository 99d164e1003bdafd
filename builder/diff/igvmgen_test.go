package diff_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uvmbuild/uvmbuild/builder/acpi"
	"github.com/uvmbuild/uvmbuild/builder/diff"
	"github.com/uvmbuild/uvmbuild/builder/igvmgen"
)

// bzImage returns a minimal boot-protocol 2.15 bzImage (64-bit entry,
// loaded at 16 MiB) with a pseudo-random payload.
func bzImage() []byte {
	b := make([]byte, 28*512)
	le := binary.LittleEndian
	b[0x1F1] = 27
	le.PutUint16(b[0x1FE:], 0xAA55)
	copy(b[0x202:], "HdrS")
	le.PutUint16(b[0x206:], 0x020F)
	b[0x211] = 1
	le.PutUint32(b[0x22C:], 0x7FFFFFFF)
	le.PutUint32(b[0x230:], 0x200000)
	b[0x234] = 1
	le.PutUint16(b[0x236:], 0x7F)
	le.PutUint32(b[0x238:], 0x7FF)
	le.PutUint64(b[0x258:], 0x1000000)
	le.PutUint32(b[0x260:], 0x400000)
	for i := 0; i < 0x9000; i += 32 {
		s := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		b = append(b, s[:]...)
	}
	return b
}

// tables returns RSDP → XSDT → FACP → DSDT, one table per page, with the
// DSDT body filled with fill.
func tables(t *testing.T, fill byte) *acpi.Tables {
	le := binary.LittleEndian
	page := func(gpa uint64, p []byte) []byte {
		out := le.AppendUint64(nil, gpa)
		pg := make([]byte, acpi.PageSize)
		copy(pg, p)
		return append(out, pg...)
	}
	hdr := func(sig string, n int) []byte {
		h := make([]byte, n)
		copy(h, sig)
		le.PutUint32(h[4:], uint32(n))
		h[8] = 2
		return h
	}
	rsdp := make([]byte, 36)
	copy(rsdp, "RSD PTR ")
	rsdp[15] = 2
	le.PutUint32(rsdp[20:], 36)
	le.PutUint64(rsdp[24:], 0xE1000)
	xsdt := hdr("XSDT", 44)
	le.PutUint64(xsdt[36:], 0xE2000)
	facp := hdr("FACP", 276)
	le.PutUint32(facp[40:], 0xE3000)
	le.PutUint64(facp[140:], 0xE3000)
	dsdt := hdr("DSDT", 200)
	for i := 36; i < 200; i++ {
		dsdt[i] = fill
	}
	var flat []byte
	for i, p := range [][]byte{rsdp, xsdt, facp, dsdt} {
		flat = append(flat, page(0xE0000+uint64(i)*0x1000, p)...)
	}
	tb, err := acpi.ParseFlat("test", flat)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func generate(t *testing.T, dir, name, cmdline string, dsdtFill byte) string {
	t.Helper()
	p := igvmgen.DefaultParams()
	p.Kernel, p.KernelName = bzImage(), "bzImage"
	p.Cmdline = []byte(cmdline)
	p.ACPI = tables(t, dsdtFill)
	img, err := igvmgen.Generate(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, img.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func text(r *diff.Report) string {
	var b strings.Builder
	r.WriteText(&b)
	return b.String()
}

// TestIGVMGenerated diffs IGVM files made by builder/igvmgen: a changed
// command line is named and both are shown; a changed DSDT is named as
// the ACPI table.
func TestIGVMGenerated(t *testing.T) {
	dir := t.TempDir()
	prod := "dm-mod.create=\"dm-verity,,,ro,0 8 verity 1 /dev/vda1 /dev/vda2\" root=/dev/dm-0 quiet"
	dbg := strings.TrimSuffix(prod, "quiet") + "console=hvc0 agent.log=debug"
	a := generate(t, dir, "a.igvm", prod, 0x11)
	b := generate(t, dir, "b.igvm", dbg, 0x11)
	c := generate(t, dir, "c.igvm", prod, 0x22)

	r, err := diff.Files(context.Background(), a, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	txt := text(r)
	t.Log(txt)
	var cmd *diff.Item
	for i := range r.Items {
		if r.Items[i].Where == "kernel command line" {
			cmd = &r.Items[i]
		}
		if strings.HasPrefix(r.Items[i].Where, "variable header") {
			t.Errorf("unexpected header difference %+v", r.Items[i])
		}
	}
	if r.Kind != "igvm" || cmd == nil || !strings.Contains(cmd.A, "quiet") || !strings.Contains(cmd.B, "agent.log=debug") {
		t.Fatalf("command line not reported with both values:\n%s", txt)
	}
	if !strings.Contains(txt, "kernel command line); first differing byte") {
		t.Errorf("no memory region named as the command line:\n%s", txt)
	}

	r, err = diff.Files(context.Background(), a, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	txt = text(r)
	t.Log(txt)
	if !strings.Contains(txt, "guest memory 0xe3000-0xe3fff (1 page(s)) (ACPI table DSDT)") {
		t.Errorf("DSDT not named:\n%s", txt)
	}
	if strings.Contains(txt, "kernel command line:") {
		t.Errorf("command line reported for an ACPI change:\n%s", txt)
	}
}
