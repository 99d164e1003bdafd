package acpi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/uvmbuild/uvmbuild/builder/acpi"
	"github.com/uvmbuild/uvmbuild/builder/acpi/clh"
	"github.com/uvmbuild/uvmbuild/builder/acpi/iasl"
)

func vectors(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "vectors", "igvm")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared igvm vectors not present (%v); byte comparison with igvmgen skipped", err)
	}
	return dir
}

func needIASL(t *testing.T) {
	if _, err := exec.LookPath("iasl"); err != nil {
		t.Skip("iasl not installed (acpica-tools); DSL compilation tests skipped")
	}
}

func TestFromDSLMatchesIgvmgen(t *testing.T) {
	v := vectors(t)
	needIASL(t)
	dir := filepath.Join(v, "acpi-dsl", "acpi-clh")
	tab, err := acpi.FromDSL(context.Background(), dir, os.DirFS(dir), iasl.Compiler{})
	if err != nil {
		t.Fatal(err)
	}
	if tab.End != 0x109000 {
		t.Errorf("acpi_end %#x, want 0x109000", tab.End)
	}
	mem := map[uint64][]byte{}
	for _, p := range tab.Pages {
		mem[p.GPA] = p.Data
	}
	files, _ := filepath.Glob(filepath.Join(v, "acpi", "*.bin"))
	if len(files) != 8 {
		t.Fatalf("%d reference tables", len(files))
	}
	for _, f := range files {
		var sig string
		var gpa uint64
		fmt.Sscanf(strings.ReplaceAll(filepath.Base(f), "_", " "), "%s %x", &sig, &gpa)
		want, _ := os.ReadFile(f)
		got := make([]byte, 0, len(want))
		for g := gpa; len(got) < len(want); g = (g &^ 0xFFF) + 0x1000 {
			p := mem[g&^0xFFF]
			if p == nil {
				t.Fatalf("%s: page %#x missing", sig, g&^0xFFF)
			}
			got = append(got, p[g&0xFFF:min(0x1000, int(g&0xFFF)+len(want)-len(got))]...)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s at %#x differs from igvmgen's", sig, gpa)
		}
	}
}

func TestFlat(t *testing.T) {
	v := vectors(t)
	b, err := os.ReadFile(filepath.Join(v, "default_acpi_pages.bin"))
	if err != nil {
		t.Fatal(err)
	}
	tab, err := acpi.ParseFlat("default_acpi_pages.bin", b)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Pages) != 34 || tab.End != 0x200000 {
		t.Fatalf("%d pages, end %#x", len(tab.Pages), tab.End)
	}
	sum := sha256.Sum256(tab.Flatten())
	if hex.EncodeToString(sum[:]) != "5cd54ee43db77cb100639461fa60994614b029f5a1f9bd79ad34229124590a7c" {
		t.Fatal("flatten does not round-trip")
	}
	if _, err := acpi.ParseFlat("bad.bin", b[:100]); err == nil || !strings.Contains(err.Error(), "bad.bin") {
		t.Fatalf("short file: %v", err)
	}
}

func TestOwnCLHSet(t *testing.T) {
	needIASL(t)
	tab, err := acpi.FromDSL(context.Background(), "clh", clh.Sources(), iasl.Compiler{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"RSD_", "XSDT", "APIC", "DSDT", "FACP", "FACS", "MCFG"}
	var got []string
	mem := map[uint64][]byte{}
	for _, p := range tab.Pages {
		mem[p.GPA] = p.Data
	}
	read := func(g uint64, n int) []byte { return mem[g&^0xFFF][g&0xFFF : int(g&0xFFF)+n] }
	addr := map[string]uint64{}
	for _, p := range tab.Placements {
		got = append(got, p.Name)
		addr[p.Name] = p.GPA
		if p.Name != "RSD_" && p.Name != "FACS" && p.GPA&0xFFF+uint64(p.Length) <= 0x1000 {
			var sum byte
			for _, c := range read(p.GPA, p.Length) {
				sum += c
			}
			if sum != 0 {
				t.Errorf("%s checksum does not sum to zero", p.Name)
			}
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("tables %v, want %v", got, want)
	}
	facp := addr["FACP"]
	le32 := func(b []byte) uint64 { return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 }
	if le32(read(facp+0x24, 4)) != addr["FACS"] || le32(read(facp+0x28, 4)) != addr["DSDT"] ||
		le32(read(facp+0x84, 4)) != addr["FACS"] || le32(read(facp+0x8C, 4)) != addr["DSDT"] {
		t.Error("FADT does not point at the placed FACS and DSDT")
	}
	xsdt := read(0x100000, 36+3*8)
	if le32(xsdt[36:]) != addr["APIC"] || le32(xsdt[44:]) != addr["FACP"] || le32(xsdt[52:]) != addr["MCFG"] {
		t.Errorf("XSDT entries %x", xsdt[36:])
	}
}

func TestMissingTable(t *testing.T) {
	needIASL(t)
	fsys := fstest.MapFS{}
	src, _ := clh.Sources().(interface {
		ReadFile(string) ([]byte, error)
	}).ReadFile("rsdp.dsl")
	fsys["rsdp.dsl"] = &fstest.MapFile{Data: src}
	_, err := acpi.FromDSL(context.Background(), "mydir", fsys, iasl.Compiler{})
	if err == nil || !strings.Contains(err.Error(), "mydir") || !strings.Contains(err.Error(), "no XSDT") {
		t.Fatalf("err = %v", err)
	}
}

func TestIASLFailing(t *testing.T) {
	needIASL(t)
	fsys := fstest.MapFS{"broken.dsl": &fstest.MapFile{Data: []byte("DefinitionBlock (\"\", \"DSDT\", 2, \"X\", \"Y\", 1) { Name (")}}
	_, err := acpi.FromDSL(context.Background(), "d", fsys, iasl.Compiler{})
	if err == nil || !strings.Contains(err.Error(), "d/broken.dsl") {
		t.Fatalf("err = %v", err)
	}
	_, err = acpi.FromDSL(context.Background(), "d", clh.Sources(), iasl.Compiler{Path: "/nonexistent/iasl"})
	if err == nil || !strings.Contains(err.Error(), "iasl not found") {
		t.Fatalf("absent iasl: err = %v", err)
	}
}

func TestIASLVersion(t *testing.T) {
	needIASL(t)
	v, err := iasl.Compiler{}.Version(context.Background())
	if err != nil || len(v) != 8 {
		t.Fatalf("version %q, %v", v, err)
	}
}
