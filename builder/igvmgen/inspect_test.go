package igvmgen

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestInspectVector(t *testing.T) {
	ref := readVec(t, filepath.Join("cases", "kata_x64_opt_clh_rd", "ref.igvm"))
	rep, err := Inspect(context.Background(), bytes.NewReader(ref), int64(len(ref)))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.ChecksumValid || rep.ValidationError != "" {
		t.Fatalf("checksum %v, validation %q", rep.ChecksumValid, rep.ValidationError)
	}
	if rep.Cmdline == nil || *rep.Cmdline != "console=ttyS0 root=/dev/vda1 rw" {
		t.Fatalf("cmdline %v", rep.Cmdline)
	}
	if len(rep.CPUID) != 38 || rep.IDBlock == nil || !rep.IDBlock.SignatureValid || !rep.IDBlock.LDMatches {
		t.Fatalf("cpuid %d, id block %+v", len(rep.CPUID), rep.IDBlock)
	}
	want := map[string]string{"rip": "0x1a00200", "rsp": "0x3474388", "cr3": "0x800000346e000", "efer": "0x1d01", "rsi": "0x34700a0"}
	for _, v := range rep.VMSA {
		if w, ok := want[v.Name]; ok {
			if v.Value != w {
				t.Errorf("%s = %s, want %s", v.Name, v.Value, w)
			}
			delete(want, v.Name)
		}
	}
	if len(want) != 0 {
		t.Errorf("VMSA fields missing: %v", want)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "b74b126528450a838428252b2b3e73f8147c33878f94d04a03254cee9c1f481b12f823d314e808cb4444e0f9fb02f33d") {
		t.Errorf("text report lacks the launch digest:\n%s", text.String())
	}
	// PAGE_DATA runs as in the vector's headers.txt: 0x1a00000..0x1a0f000 (16 pages) NORMAL with data.
	found := false
	for _, h := range rep.Headers {
		if h.FirstGPA == "0x1a00000" && h.LastGPA == "0x1a0f000" && h.Pages == 16 && h.PageType == "NORMAL" {
			found = true
		}
	}
	if !found {
		t.Error("kernel data run 0x1a00000..0x1a0f000 not reported")
	}
}
