package diff

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/uvmbuild/uvmbuild/builder/igvm"
)

// IGVM headers are decoded by builder/igvm; this file rebuilds guest memory
// page by page from them and names what each region holds.

const igvmPageSize = igvm.PageSize

type igvmFile struct {
	*igvm.File
	// ChecksumOK is whether the CRC-32 over the headers matches.
	ChecksumOK bool
	// Pages maps a GPA to its page: file data, or nil for a zero page.
	Pages map[uint64][]byte
	// PageKind names special pages: "VMSA", "CPUID page", "secrets page",
	// "parameter page".
	PageKind map[uint64]string
	// PageFlags are the PAGE_DATA flags per GPA.
	PageFlags map[uint64]uint32
}

func isIGVM(head []byte) bool {
	return len(head) >= 4 && binary.LittleEndian.Uint32(head) == igvm.Magic
}

// readIGVM parses an IGVM file. IGVM files are small (hundreds of KiB to a
// few MiB), so the file is read whole.
func readIGVM(name string) (*igvmFile, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	d, err := igvm.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	f := &igvmFile{File: d, ChecksumOK: !errors.Is(igvm.Validate(d), igvm.ErrChecksum),
		Pages: map[uint64][]byte{}, PageKind: map[uint64]string{}, PageFlags: map[uint64]uint32{}}
	page := func(fo uint32, gpa uint64) ([]byte, error) {
		if fo == 0 {
			return nil, nil
		}
		if uint64(fo)+igvmPageSize > uint64(len(data)) {
			return nil, fmt.Errorf("%s: page for GPA 0x%x at file offset 0x%x beyond the end (%d bytes)", name, gpa, fo, len(data))
		}
		return data[fo : fo+igvmPageSize], nil
	}
	for _, h := range d.Headers {
		switch h.Type {
		case igvm.TypePageData:
			pd, err := h.PageData()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			p, err := page(pd.FileOffset, pd.GPA)
			if err != nil {
				return nil, err
			}
			f.Pages[pd.GPA] = p
			f.PageFlags[pd.GPA] = pd.Flags
			switch pd.DataType {
			case 1:
				f.PageKind[pd.GPA] = "secrets page"
			case 2:
				f.PageKind[pd.GPA] = "CPUID page"
			}
		case igvm.TypeVPContext:
			var v igvm.VPContext
			if err := h.Unmarshal(&v); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			p, err := page(v.FileOffset, v.GPA)
			if err != nil {
				return nil, err
			}
			f.Pages[v.GPA] = p
			f.PageKind[v.GPA] = "VMSA"
		case igvm.TypeParameterInsert:
			var v igvm.ParameterInsert
			if err := h.Unmarshal(&v); err == nil {
				f.PageKind[v.GPA] = "parameter page"
			}
		}
	}
	return f, nil
}

// read copies guest memory [gpa, gpa+n) (zero where nothing is placed).
func (f *igvmFile) read(gpa uint64, n int) []byte {
	out := make([]byte, n)
	for i := 0; i < n; {
		g := gpa + uint64(i)
		pg := g &^ (igvmPageSize - 1)
		k := min(int(igvmPageSize-(g-pg)), n-i)
		if p := f.Pages[pg]; p != nil {
			copy(out[i:i+k], p[g-pg:])
		}
		i += k
	}
	return out
}

// region is a named range of guest memory.
type region struct {
	Start, End uint64
	Name       string
}

// bootInfo is what the guest's boot_params say about its memory.
type bootInfo struct {
	BootParams uint64
	Cmdline    string
	Regions    []region
}

// boot locates boot_params through the VMSA's RSI (the Linux x86 boot
// protocol passes it there), falling back to a scan for the "HdrS" magic,
// and names the regions it describes.
func (f *igvmFile) boot() *bootInfo {
	le := binary.LittleEndian
	var bp uint64
	for gpa, kind := range f.PageKind {
		if kind == "VMSA" && f.Pages[gpa] != nil {
			rsi := le.Uint64(f.Pages[gpa][0x330:])
			if bytes.Equal(f.read(rsi+0x202, 4), []byte("HdrS")) {
				bp = rsi
			}
		}
	}
	if bp == 0 {
		gpas := sortedGPAs(f.Pages)
		for _, g := range gpas {
			p := f.Pages[g]
			if p == nil {
				continue
			}
			if i := bytes.Index(p, []byte("HdrS")); i >= 0x202 && bytes.Equal(f.read(g+uint64(i)-0x202+0x1fe, 2), []byte{0x55, 0xaa}) {
				bp = g + uint64(i) - 0x202
				break
			}
		}
	}
	if bp == 0 {
		return nil
	}
	bi := &bootInfo{BootParams: bp}
	params := f.read(bp, 4096)
	bi.Regions = append(bi.Regions, region{bp, bp + 4096, "boot_params"})
	cmd := uint64(le.Uint32(params[0x228:])) | uint64(le.Uint32(params[0xc8:]))<<32
	if cmd != 0 {
		size := int(le.Uint32(params[0x238:]))
		if size == 0 || size > 1<<20 {
			size = 4096
		}
		raw := f.read(cmd, size+1)
		if i := bytes.IndexByte(raw, 0); i >= 0 {
			raw = raw[:i]
		}
		bi.Cmdline = string(raw)
		bi.Regions = append(bi.Regions, region{cmd, cmd + uint64(size) + 1, "kernel command line"})
	}
	rd := uint64(le.Uint32(params[0x218:])) | uint64(le.Uint32(params[0xc0:]))<<32
	rdSize := uint64(le.Uint32(params[0x21c:])) | uint64(le.Uint32(params[0xc4:]))<<32
	if rd != 0 && rdSize != 0 {
		bi.Regions = append(bi.Regions, region{rd, rd + rdSize, "initrd"})
	}
	code := uint64(le.Uint32(params[0x214:]))
	pref := le.Uint64(params[0x258:])
	initSize := uint64(le.Uint32(params[0x260:]))
	if pref != 0 && initSize != 0 {
		bi.Regions = append(bi.Regions, region{pref, pref + initSize, "kernel"})
	} else if code != 0 {
		bi.Regions = append(bi.Regions, region{code, code + 1, "kernel entry"})
	}
	if rsdp := le.Uint64(params[0x070:]); rsdp != 0 {
		bi.Regions = append(bi.Regions, f.acpiTables(rsdp)...)
	}
	return bi
}

// Limits on the ACPI walk of an untrusted file.
const (
	maxACPITables = 64
	maxACPITable  = 1 << 20
)

// acpiTables walks RSDP → XSDT/RSDT → tables (and FACP → DSDT, FACS) and
// returns each table's range named by its signature.
func (f *igvmFile) acpiTables(rsdp uint64) []region {
	le := binary.LittleEndian
	r := f.read(rsdp, 36)
	if string(r[:8]) != "RSD PTR " {
		return nil
	}
	out := []region{{rsdp, rsdp + 36, "ACPI RSDP"}}
	seen := map[uint64]bool{}
	var add func(addr uint64, depth int)
	add = func(addr uint64, depth int) {
		// Bounded: tables come from the file being examined.
		if addr == 0 || seen[addr] || depth > 3 || len(seen) >= maxACPITables {
			return
		}
		seen[addr] = true
		h := f.read(addr, 36)
		sig := string(h[:4])
		n := uint64(le.Uint32(h[4:]))
		if n < 36 || n > maxACPITable || strings.ContainsFunc(sig, func(c rune) bool { return c < 'A' || c > 'Z' && c < 'a' || c > 'z' && c != '0' }) {
			if sig == "FACS" {
				out = append(out, region{addr, addr + n, "ACPI table FACS"})
			}
			return
		}
		out = append(out, region{addr, addr + n, "ACPI table " + sig})
		body := f.read(addr, int(n))
		switch sig {
		case "XSDT":
			for i := uint64(36); i+8 <= n; i += 8 {
				add(le.Uint64(body[i:]), depth+1)
			}
		case "RSDT":
			for i := uint64(36); i+4 <= n; i += 4 {
				add(uint64(le.Uint32(body[i:])), depth+1)
			}
		case "FACP":
			if n >= 44 {
				add(uint64(le.Uint32(body[36:])), depth+1) // FIRMWARE_CTRL (FACS)
				add(uint64(le.Uint32(body[40:])), depth+1) // DSDT
			}
			if n >= 148 {
				add(le.Uint64(body[132:]), depth+1) // X_FIRMWARE_CTRL
				add(le.Uint64(body[140:]), depth+1) // X_DSDT
			}
		}
	}
	if r[15] >= 2 {
		add(le.Uint64(f.read(rsdp+24, 8)), 0)
	}
	add(uint64(le.Uint32(r[16:])), 0)
	return out
}

func sortedGPAs[V any](m map[uint64]V) []uint64 {
	g := make([]uint64, 0, len(m))
	for k := range m {
		g = append(g, k)
	}
	sort.Slice(g, func(i, j int) bool { return g[i] < g[j] })
	return g
}

// compareIGVM explains how two IGVM files differ: fixed header, variable
// headers, guest memory (named regions), the command line, the ID block.
func compareIGVM(a, b string, r *Report, o *Options) error {
	fa, err := readIGVM(a)
	if err != nil {
		return err
	}
	fb, err := readIGVM(b)
	if err != nil {
		return err
	}
	fixed := func(name string, x, y uint32) {
		if x != y {
			it := Item{Where: "fixed header " + name, A: fmt.Sprintf("0x%x", x), B: fmt.Sprintf("0x%x", y)}
			if name == "Checksum" {
				it.Detail = "the CRC-32 covers all headers (including the ID block): it follows from the header differences below"
			}
			r.add(o.MaxItems, it)
		}
	}
	fixed("FormatVersion", fa.Fixed.FormatVersion, fb.Fixed.FormatVersion)
	fixed("VariableHeaderOffset", fa.Fixed.VariableHeaderOffset, fb.Fixed.VariableHeaderOffset)
	fixed("VariableHeaderSize", fa.Fixed.VariableHeaderSize, fb.Fixed.VariableHeaderSize)
	fixed("TotalFileSize", fa.Fixed.TotalFileSize, fb.Fixed.TotalFileSize)
	fixed("Checksum", fa.Fixed.Checksum, fb.Fixed.Checksum)
	for _, x := range []struct {
		f    *igvmFile
		side string
	}{{fa, "A"}, {fb, "B"}} {
		if !x.f.ChecksumOK {
			r.add(o.MaxItems, Item{Where: "fixed header Checksum of " + x.side + " does not match its headers (corrupt file)"})
		}
	}

	// Variable headers, skipping PAGE_DATA/VP_CONTEXT FileOffsets: they
	// shift whenever any page gains or loses data, and the memory
	// comparison below says which.
	ha, hb := headerKeys(fa), headerKeys(fb)
	if len(ha) != len(hb) {
		r.add(o.MaxItems, Item{Where: "variable header count", A: fmt.Sprint(len(ha)), B: fmt.Sprint(len(hb))})
	}
	// Align the two header lists (an added page shifts every later
	// header) and report only what is not common to both.
	if len(ha) <= maxTextLines && len(hb) <= maxTextLines {
		ops := lineOps(ha, hb)
		for i := 0; i < len(ops); i++ {
			op := ops[i]
			switch {
			case op.kind == ' ':
				continue
			case op.kind == '-' && i+1 < len(ops) && ops[i+1].kind == '+':
				// A replaced header: one item with both sides.
				r.add(o.MaxItems, Item{Where: fmt.Sprintf("variable header A[%d] / B[%d]", op.a, ops[i+1].b), A: ha[op.a], B: hb[ops[i+1].b]})
				i++
			case op.kind == '-':
				r.add(o.MaxItems, Item{Where: fmt.Sprintf("variable header A[%d] only in A", op.a), A: ha[op.a]})
			default:
				r.add(o.MaxItems, Item{Where: fmt.Sprintf("variable header B[%d] only in B", op.b), B: hb[op.b]})
			}
		}
	}

	// Guest memory, page by page, coalesced into runs named by region.
	var regions []region
	var cmdA, cmdB string
	if bi := fa.boot(); bi != nil {
		regions = append(regions, bi.Regions...)
		cmdA = bi.Cmdline
	}
	if bi := fb.boot(); bi != nil {
		regions = append(regions, bi.Regions...)
		cmdB = bi.Cmdline
	}
	if cmdA != cmdB {
		r.add(o.MaxItems, Item{Where: "kernel command line", A: fmt.Sprintf("%q", cmdA), B: fmt.Sprintf("%q", cmdB)})
	}
	all := map[uint64]bool{}
	for g := range fa.Pages {
		all[g] = true
	}
	for g := range fb.Pages {
		all[g] = true
	}
	type run struct{ start, end uint64 }
	var runs []run
	for _, g := range sortedGPAs(all) {
		pa, okA := fa.Pages[g]
		pb, okB := fb.Pages[g]
		if okA != okB {
			side := "only in A"
			if okB {
				side = "only in B"
			}
			r.add(o.MaxItems, Item{Where: fmt.Sprintf("page 0x%x %s", g, side), A: pageDesc(fa, g, okA), B: pageDesc(fb, g, okB)})
			continue
		}
		if fa.PageKind[g] != fb.PageKind[g] || fa.PageFlags[g] != fb.PageFlags[g] {
			r.add(o.MaxItems, Item{Where: fmt.Sprintf("page 0x%x kind/flags", g), A: pageDesc(fa, g, okA), B: pageDesc(fb, g, okB)})
		}
		if bytes.Equal(orZero(pa), orZero(pb)) {
			continue
		}
		if n := len(runs); n > 0 && runs[n-1].end == g {
			runs[n-1].end = g + igvmPageSize
		} else {
			runs = append(runs, run{g, g + igvmPageSize})
		}
	}
	for _, ru := range runs {
		first := firstDiff(fa, fb, ru.start, ru.end)
		names := regionNames(regions, ru.start, ru.end, fa.PageKind[ru.start])
		it := Item{Where: fmt.Sprintf("guest memory 0x%x-0x%x (%d page(s)) %s; first differing byte at GPA 0x%x",
			ru.start, ru.end-1, (ru.end-ru.start)/igvmPageSize, names, first)}
		it.Detail = memContext(fa, fb, first)
		r.add(o.MaxItems, it)
	}

	// ID block: the signature is random unless the key and nonce are fixed.
	ia, ib := idBlock(fa), idBlock(fb)
	if ia != nil && ib != nil && !bytes.Equal(ia, ib) {
		for _, fl := range idBlockFields(ia, ib) {
			r.add(o.MaxItems, fl)
		}
	}
	return nil
}

func orZero(p []byte) []byte {
	if p == nil {
		return make([]byte, igvmPageSize)
	}
	return p
}

func pageDesc(f *igvmFile, g uint64, ok bool) string {
	if !ok {
		return ""
	}
	s := "data"
	if f.Pages[g] == nil {
		s = "zero"
	}
	if k := f.PageKind[g]; k != "" {
		s += " " + k
	}
	if fl := f.PageFlags[g]; fl != 0 {
		s += fmt.Sprintf(" flags=0x%x", fl)
	}
	return s
}

func headerKeys(f *igvmFile) []string {
	out := make([]string, len(f.Headers))
	le := binary.LittleEndian
	for i, h := range f.Headers {
		body := append([]byte(nil), h.Body...)
		desc := ""
		switch {
		case h.Type == igvm.TypePageData && len(body) >= 24:
			clear(body[12:16])
			desc = fmt.Sprintf(" gpa=0x%x flags=0x%x datatype=%d", le.Uint64(body), le.Uint32(body[16:]), le.Uint16(body[20:]))
		case h.Type == igvm.TypeVPContext && len(body) >= 16:
			clear(body[12:16])
			desc = fmt.Sprintf(" gpa=0x%x", le.Uint64(body))
		case h.Type == igvm.TypeGuestPolicy && len(body) >= 8:
			desc = fmt.Sprintf(" policy=0x%x", le.Uint64(body))
		}
		out[i] = fmt.Sprintf("%s%s len=%d body=%x", h.Type.String(), desc, len(h.Body), body)
		if h.Type == igvm.TypeSNPIDBlock {
			// Compared field by field after guest memory.
			out[i] = fmt.Sprintf("%s len=%d", h.Type.String(), len(h.Body))
		} else if len(body) > 48 {
			out[i] = fmt.Sprintf("%s%s len=%d body[:48]=%x…", h.Type.String(), desc, len(h.Body), body[:48])
		}
	}
	return out
}

func firstDiff(fa, fb *igvmFile, start, end uint64) uint64 {
	for g := start; g < end; g += igvmPageSize {
		pa, pb := orZero(fa.Pages[g]), orZero(fb.Pages[g])
		for i := range pa {
			if pa[i] != pb[i] {
				return g + uint64(i)
			}
		}
	}
	return start
}

func regionNames(regions []region, start, end uint64, kind string) string {
	var names []string
	seen := map[string]bool{}
	if kind != "" {
		names = append(names, kind)
		seen[kind] = true
	}
	for _, rg := range regions {
		if rg.Start < end && start < rg.End && !seen[rg.Name] {
			seen[rg.Name] = true
			names = append(names, rg.Name)
		}
	}
	if len(names) == 0 {
		return "(unnamed: page tables, GDT or zeroed memory)"
	}
	return "(" + strings.Join(names, ", ") + ")"
}

func memContext(fa, fb *igvmFile, gpa uint64) string {
	start := max(gpa&^15, 32) - 32
	a, b := fa.read(start, 80), fb.read(start, 80)
	var sb strings.Builder
	for i := 0; i < 80; i += 16 {
		mark := " "
		if !bytes.Equal(a[i:i+16], b[i:i+16]) {
			mark = "!"
		}
		fmt.Fprintf(&sb, "%s - %08x  %s\n%s + %08x  %s\n", mark, start+uint64(i), hexLine(a[i:i+16]), mark, start+uint64(i), hexLine(b[i:i+16]))
	}
	return sb.String()
}

func idBlock(f *igvmFile) []byte {
	for _, h := range f.Headers {
		if h.Type == igvm.TypeSNPIDBlock {
			return h.Body
		}
	}
	return nil
}

// idBlockFields compares IGVM_VHS_SNP_ID_BLOCK bodies (igvm.md §12.2):
// CompatibilityMask u32, AuthorKeyEnabled u8, reserved[3], LD[48],
// FamilyID[16], ImageID[16], Version u32, GuestSVN u32, IdKeyAlgorithm u32,
// AuthorKeyAlgorithm u32, IdKeySignature{r[72] s[72]}, IdPublicKey[152], …
func idBlockFields(a, b []byte) []Item {
	type field struct {
		name     string
		off, len int
	}
	fields := []field{{"CompatibilityMask", 0, 4}, {"AuthorKeyEnabled", 4, 1}, {"launch digest (LD)", 8, 48},
		{"FamilyID", 56, 16}, {"ImageID", 72, 16}, {"Version", 88, 4}, {"GuestSVN", 92, 4},
		{"IdKeyAlgorithm", 96, 4}, {"AuthorKeyAlgorithm", 100, 4}, {"IdKeySignature", 0x68, 144},
		{"IdPublicKey", 0xF8, 152}, {"AuthorKeySignature", 0x190, 144}, {"AuthorPublicKey", 0x220, 152}}
	var out []Item
	ldSame := len(a) >= 56 && len(b) >= 56 && bytes.Equal(a[8:56], b[8:56])
	for _, f := range fields {
		if f.off+f.len > len(a) || f.off+f.len > len(b) || f.len <= 0 {
			continue
		}
		x, y := a[f.off:f.off+f.len], b[f.off:f.off+f.len]
		if !bytes.Equal(x, y) {
			it := Item{Where: "SNP_ID_BLOCK " + f.name, A: shortHex(x), B: shortHex(y)}
			switch {
			case f.name == "IdKeySignature" && ldSame:
				it.Detail = "same launch digest, different signature: another signing key or a random nonce (igvmgen signs with a fresh random key unless -sign_key is given)"
			case f.name == "IdKeySignature":
				it.Detail = "the signature covers the launch digest, so it follows from the launch digest difference"
			case f.name == "IdPublicKey":
				it.Detail = "signed with another ID key"
			}
			out = append(out, it)
		}
	}
	return out
}

func shortHex(p []byte) string {
	if len(p) > 48 {
		return fmt.Sprintf("%x…", p[:48])
	}
	return fmt.Sprintf("%x", p)
}
