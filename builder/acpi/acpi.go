package acpi

import (
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
)

// PageSize is the guest page size.
const PageSize = 4096

// Fixed addresses of igvmgen's layout.
const (
	RSDPAddr        = 0xE0000
	DefaultXSDTAddr = 0x100000
	// DefaultFlatEnd is acpi_end for a flat page set (igvmgen's class
	// default, used with its built-in snapshot).
	DefaultFlatEnd = 0x200000
	// MaxEnd bounds the ACPI area: the SNP pages start at 0x800000.
	MaxEnd = 0x800000
)

// Page is one 4096-byte guest page of ACPI data.
type Page struct {
	GPA  uint64
	Data []byte // exactly PageSize bytes
}

// Placement records where a table went (for inspection and docs).
type Placement struct {
	Name   string // signature with spaces as '_' ("RSD_" for the RSDP)
	GPA    uint64
	Length int
}

// Tables is the ACPI content of guest memory.
type Tables struct {
	// Pages are the data pages, ascending GPA, all in [0xA0000, End).
	Pages []Page
	// End is acpi_end: the exclusive, page-aligned end of the ACPI area.
	End uint64
	// Placements lists the tables (DSL form only), ascending GPA.
	Placements []Placement
}

// Compiler compiles one ACPI source file (ASL or iasl data-table form) to
// AML. name is the file's base name (e.g. "facp.dsl").
type Compiler interface {
	Compile(ctx context.Context, name string, src []byte) ([]byte, error)
}

// Table-name sets of igvmgen (acpi.py): tables the FADT points to, and
// tables the XSDT lists.
func facpSub() []string { return []string{"DSDT", "FACS"} }
func xsdtSub() []string { return []string{"FACP", "OEM0", "APIC", "TPM2", "TCPA", "MCFG"} }

func isSub(n string) bool { return slices.Contains(facpSub(), n) || slices.Contains(xsdtSub(), n) }

type table struct {
	file string
	src  []byte
	aml  []byte
}

// FromDSL compiles every *.dsl file at the top of fsys with c and returns
// the placed, patched and packed tables. dir names fsys in errors.
func FromDSL(ctx context.Context, dir string, fsys fs.FS, c Compiler) (*Tables, error) {
	ents, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("ACPI directory %s: %w", dir, err)
	}
	tables := map[string]*table{}
	xsdtAddr := uint64(DefaultXSDTAddr)
	for _, e := range ents { // fs.ReadDir sorts by name
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".dsl") {
			continue
		}
		p := path.Join(dir, e.Name())
		src, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("ACPI source %s: %w", p, err)
		}
		aml, err := c.Compile(ctx, e.Name(), src)
		if err != nil {
			return nil, fmt.Errorf("compiling ACPI source %s: %w", p, err)
		}
		if len(aml) < 8 {
			return nil, fmt.Errorf("ACPI source %s: compiled table is %d bytes, too short", p, len(aml))
		}
		name := strings.ReplaceAll(string(aml[:4]), " ", "_")
		if name != "RSD_" && name != "XSDT" && !isSub(name) {
			return nil, fmt.Errorf("ACPI source %s: table signature %q is not one igvmgen places (RSDP XSDT FACP DSDT FACS APIC MCFG TPM2 TCPA OEM0)", p, aml[:4])
		}
		if prev, ok := tables[name]; ok {
			return nil, fmt.Errorf("ACPI directory %s: %s and %s both define %s", dir, prev.file, e.Name(), name)
		}
		if name == "RSD_" {
			if len(aml) < 32 {
				return nil, fmt.Errorf("ACPI source %s: RSDP is %d bytes, want at least 32", p, len(aml))
			}
			if a := binary.LittleEndian.Uint64(aml[24:]); a != 0 {
				xsdtAddr = a
			}
		}
		if isSub(name) {
			if l := binary.LittleEndian.Uint32(aml[4:]); int(l) != len(aml) {
				return nil, fmt.Errorf("ACPI source %s: %s header length %d, compiled size %d", p, name, l, len(aml))
			}
		}
		tables[name] = &table{file: e.Name(), src: src, aml: aml}
	}
	for _, need := range []string{"RSD_", "XSDT", "FACP", "DSDT", "FACS"} {
		if tables[need] == nil {
			return nil, fmt.Errorf("ACPI directory %s: no %s table among its *.dsl files", dir, strings.ReplaceAll(need, "RSD_", "RSDP"))
		}
	}
	if xsdtAddr%PageSize != 0 || xsdtAddr+PageSize > MaxEnd {
		return nil, fmt.Errorf("ACPI directory %s: RSDP XSDT address %#x must be page aligned and below %#x", dir, xsdtAddr, MaxEnd)
	}

	names := make([]string, 0, len(tables))
	for n := range tables {
		names = append(names, n)
	}
	sort.Strings(names)
	addr := map[string]uint64{"RSD_": RSDPAddr, "XSDT": xsdtAddr}
	next := xsdtAddr + PageSize
	for _, n := range names {
		if isSub(n) {
			addr[n] = next
			next += uint64(len(tables[n].aml))
		}
	}

	facp := tables["FACP"]
	src := string(facp.src)
	src = strings.ReplaceAll(src, "DSDT Address : 0", fmt.Sprintf("DSDT Address : 0x%x", addr["DSDT"]))
	src = strings.ReplaceAll(src, "FACS Address : 0", fmt.Sprintf("FACS Address : 0x%x", addr["FACS"]))
	if err := recompile(ctx, c, dir, facp, src+"\n", "FACP"); err != nil {
		return nil, err
	}
	var lines []string
	off := 36
	for _, n := range names {
		if !slices.Contains(xsdtSub(), n) {
			continue
		}
		lines = append(lines, fmt.Sprintf("[%xh %d  %d]\tACPI Table Address %d : %x", off, off, 8, len(lines), addr[n]))
		off += 8
	}
	xsdt := tables["XSDT"]
	if err := recompile(ctx, c, dir, xsdt, string(xsdt.src)+"\n"+strings.Join(lines, "\n"), "XSDT"); err != nil {
		return nil, err
	}

	var placed []Placement
	for _, n := range names {
		placed = append(placed, Placement{Name: n, GPA: addr[n], Length: len(tables[n].aml)})
	}
	sort.Slice(placed, func(i, j int) bool { return placed[i].GPA < placed[j].GPA })
	t, err := pack(placed, tables)
	if err != nil {
		return nil, fmt.Errorf("ACPI directory %s: %w", dir, err)
	}
	return t, nil
}

func recompile(ctx context.Context, c Compiler, dir string, t *table, src, want string) error {
	aml, err := c.Compile(ctx, t.file, []byte(src))
	if err != nil {
		return fmt.Errorf("compiling patched ACPI source %s: %w", path.Join(dir, t.file), err)
	}
	if len(aml) < 8 || strings.ReplaceAll(string(aml[:4]), " ", "_") != want {
		return fmt.Errorf("patched ACPI source %s did not compile to a %s table", path.Join(dir, t.file), want)
	}
	t.aml = aml
	return nil
}

// pack writes each table at its address. Like igvmgen's packer, the page
// holding each table's end position exists even when the table ends exactly
// on a page boundary (an extra zero page).
func pack(placed []Placement, tables map[string]*table) (*Tables, error) {
	pages := map[uint64][]byte{}
	page := func(g uint64) []byte {
		p, ok := pages[g]
		if !ok {
			p = make([]byte, PageSize)
			pages[g] = p
		}
		return p
	}
	for i, pl := range placed {
		if i > 0 && pl.GPA < placed[i-1].GPA+uint64(placed[i-1].Length) {
			return nil, fmt.Errorf("%s at %#x overlaps %s", pl.Name, pl.GPA, placed[i-1].Name)
		}
		aml := tables[pl.Name].aml
		end := pl.GPA + uint64(len(aml))
		if pl.GPA < 0xA0000 || end >= MaxEnd {
			return nil, fmt.Errorf("%s at %#x..%#x is outside the ACPI area [0xa0000, %#x)", pl.Name, pl.GPA, end, MaxEnd)
		}
		for g := pl.GPA; g < end; {
			pg := g &^ (PageSize - 1)
			n := copy(page(pg)[g-pg:], aml[g-pl.GPA:])
			g += uint64(n)
		}
		page(end &^ (PageSize - 1))
	}
	t := &Tables{Placements: placed}
	for g, d := range pages {
		t.Pages = append(t.Pages, Page{GPA: g, Data: d})
	}
	sort.Slice(t.Pages, func(i, j int) bool { return t.Pages[i].GPA < t.Pages[j].GPA })
	t.End = t.Pages[len(t.Pages)-1].GPA + PageSize
	return t, nil
}

// flatRecord is the size of one record of the flat page form.
const flatRecord = 8 + PageSize

// ParseFlat reads pages in igvmgen's flattened snapshot form: records of
// {u64 little-endian GPA, 4096 bytes}, ascending GPA. End is 0x200000 (what
// igvmgen uses with its built-in snapshot) or, if a page lies above, the end
// of the highest page. name is used in errors.
func ParseFlat(name string, b []byte) (*Tables, error) {
	if len(b) == 0 || len(b)%flatRecord != 0 {
		return nil, fmt.Errorf("ACPI pages file %s: size %d is not a positive multiple of %d (u64 GPA + 4096-byte page)", name, len(b), flatRecord)
	}
	t := &Tables{End: DefaultFlatEnd}
	for off := 0; off < len(b); off += flatRecord {
		g := binary.LittleEndian.Uint64(b[off:])
		if g%PageSize != 0 || g < 0xA0000 || g+PageSize > MaxEnd {
			return nil, fmt.Errorf("ACPI pages file %s: record %d: GPA %#x must be page aligned and in [0xa0000, %#x)", name, off/flatRecord, g, MaxEnd)
		}
		if n := len(t.Pages); n > 0 && g <= t.Pages[n-1].GPA {
			return nil, fmt.Errorf("ACPI pages file %s: record %d: GPA %#x not above the previous %#x", name, off/flatRecord, g, t.Pages[n-1].GPA)
		}
		t.Pages = append(t.Pages, Page{GPA: g, Data: b[off+8 : off+flatRecord]})
		t.End = max(t.End, g+PageSize)
	}
	return t, nil
}

// Flatten encodes t's pages in the flat form ParseFlat reads.
func (t *Tables) Flatten() []byte {
	out := make([]byte, 0, len(t.Pages)*flatRecord)
	for _, p := range t.Pages {
		out = binary.LittleEndian.AppendUint64(out, p.GPA)
		out = append(out, p.Data...)
	}
	return out
}
