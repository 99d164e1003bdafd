package igvmgen

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/uvmbuild/uvmbuild/builder/igvm"
	"github.com/uvmbuild/uvmbuild/builder/snp"
)

// Report describes an IGVM file for humans and scripts (uvmbuild inspect).
type Report struct {
	Size                 int64  `json:"size"`
	FormatVersion        uint32 `json:"format_version"`
	VariableHeaderOffset uint32 `json:"variable_header_offset"`
	VariableHeaderSize   uint32 `json:"variable_header_size"`
	TotalFileSize        uint32 `json:"total_file_size"`
	Checksum             string `json:"checksum"`
	ChecksumComputed     string `json:"checksum_computed"`
	ChecksumValid        bool   `json:"checksum_valid"`
	// Valid is empty when igvm.Validate accepts the file, else its error.
	ValidationError string `json:"validation_error,omitempty"`

	Platforms []PlatformInfo `json:"platforms"`
	Policy    string         `json:"policy,omitempty"`
	Headers   []HeaderRun    `json:"headers"`

	Cmdline *string      `json:"cmdline"`
	VMSA    []VMSAField  `json:"vmsa_nonzero"`
	CPUID   []CPUIDLeaf  `json:"cpuid_leaves"`
	IDBlock *IDBlockInfo `json:"id_block,omitempty"`

	LaunchDigest  string `json:"launch_digest"`
	MeasuredPages int    `json:"measured_pages"`
}

// PlatformInfo is a SUPPORTED_PLATFORM header.
type PlatformInfo struct {
	PlatformType    uint8  `json:"platform_type"`
	HighestVTL      uint8  `json:"highest_vtl"`
	PlatformVersion uint16 `json:"platform_version"`
}

// HeaderRun is a run of consecutive headers of one kind: PAGE_DATA headers
// with the same data type and flags, with or without file data, at
// consecutive GPAs are merged.
type HeaderRun struct {
	Offset   int64  `json:"offset"`
	Type     string `json:"type"`
	FirstGPA string `json:"first_gpa,omitempty"`
	LastGPA  string `json:"last_gpa,omitempty"`
	Pages    int    `json:"pages,omitempty"`
	PageType string `json:"page_type,omitempty"` // NORMAL, ZERO (no file data), CPUID, SECRETS, VMSA, UNMEASURED
	Flags    uint32 `json:"flags,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// VMSAField is a non-zero VMSA field.
type VMSAField struct {
	Offset int    `json:"offset"`
	Name   string `json:"name"`
	Value  string `json:"value"`
}

// CPUIDLeaf is one entry of the SNP CPUID page.
type CPUIDLeaf struct {
	EAX    string `json:"eax_in"`
	ECX    string `json:"ecx_in"`
	XfemIn uint64 `json:"xfem_in,omitempty"`
}

// IDBlockInfo is the SNP_ID_BLOCK header.
type IDBlockInfo struct {
	LD             string `json:"ld"`
	FamilyID       string `json:"family_id"`
	ImageID        string `json:"image_id"`
	Version        uint32 `json:"version"`
	GuestSVN       uint32 `json:"guest_svn"`
	IDKeyAlgorithm uint32 `json:"id_key_algorithm"`
	Curve          uint32 `json:"curve"`
	R              string `json:"r_le"`
	S              string `json:"s_le"`
	Qx             string `json:"qx_le"`
	Qy             string `json:"qy_le"`
	SignatureValid bool   `json:"signature_valid"`
	LDMatches      bool   `json:"ld_matches_launch_digest"`
}

type vmsaName struct {
	off, size int
	name      string
}

// vmsaNames are the save-area fields worth naming; other non-zero 8-byte
// words are reported by offset.
func vmsaNames() []vmsaName {
	var n []vmsaName
	for i, s := range []string{"es", "cs", "ss", "ds", "fs", "gs", "gdtr", "ldtr", "idtr", "tr"} {
		o := i * 16
		n = append(n, vmsaName{o, 2, s + ".selector"}, vmsaName{o + 2, 2, s + ".attrib"},
			vmsaName{o + 4, 4, s + ".limit"}, vmsaName{o + 8, 8, s + ".base"})
	}
	return append(n,
		vmsaName{0xCA, 1, "vmpl"}, vmsaName{0xCB, 1, "cpl"}, vmsaName{0xD0, 8, "efer"},
		vmsaName{0x148, 8, "cr4"}, vmsaName{0x150, 8, "cr3"}, vmsaName{0x158, 8, "cr0"},
		vmsaName{0x160, 8, "dr7"}, vmsaName{0x168, 8, "dr6"}, vmsaName{0x170, 8, "rflags"},
		vmsaName{0x178, 8, "rip"}, vmsaName{0x1D8, 8, "rsp"}, vmsaName{0x268, 8, "g_pat"},
		vmsaName{0x330, 8, "rsi"}, vmsaName{0x3B0, 8, "sev_features"}, vmsaName{0x3C8, 8, "virtual_tom"},
		vmsaName{0x3E8, 8, "xcr0"})
}

// guestMem reads guest memory from PAGE_DATA/VP_CONTEXT file pages.
type guestMem struct {
	r     io.ReaderAt
	pages map[uint64]int64 // GPA -> file offset (0: zero page)
}

func (g *guestMem) read(gpa uint64, n int) ([]byte, bool) {
	out := make([]byte, 0, n)
	for len(out) < n {
		base := gpa &^ (pageSize - 1)
		fo, ok := g.pages[base]
		if !ok {
			return nil, false
		}
		chunk := min(n-len(out), int(base+pageSize-gpa))
		b := make([]byte, chunk)
		if fo != 0 {
			if _, err := g.r.ReadAt(b, fo+int64(gpa-base)); err != nil {
				return nil, false
			}
		}
		out = append(out, b...)
		gpa += uint64(chunk)
	}
	return out, true
}

// Inspect decodes an IGVM file and reports its headers, memory, boot state
// and ID block, and recomputes its launch digest with Measure.
func Inspect(ctx context.Context, r io.ReaderAt, size int64) (*Report, error) {
	f, err := igvm.Read(r, size)
	if err != nil {
		return nil, err
	}
	rep := &Report{Size: size, FormatVersion: f.Fixed.FormatVersion, VariableHeaderOffset: f.Fixed.VariableHeaderOffset,
		VariableHeaderSize: f.Fixed.VariableHeaderSize, TotalFileSize: f.Fixed.TotalFileSize,
		Checksum: fmt.Sprintf("%#08x", f.Fixed.Checksum)}
	tmp := bytes.Clone(f.Raw)
	binary.LittleEndian.PutUint32(tmp[20:], 0)
	sum := crc32.ChecksumIEEE(tmp)
	rep.ChecksumComputed, rep.ChecksumValid = fmt.Sprintf("%#08x", sum), sum == f.Fixed.Checksum
	if err := igvm.Validate(f); err != nil {
		rep.ValidationError = err.Error()
	}
	mem := &guestMem{r: r, pages: map[uint64]int64{}}
	var vmsaOff, cpuidOff int64
	var idb *igvm.SNPIDBlock
	for _, h := range f.Headers {
		run := HeaderRun{Offset: h.Offset, Type: h.Type.String()}
		switch h.Type {
		case igvm.TypePageData:
			pd, err := h.PageData()
			if err != nil {
				return nil, err
			}
			pt := map[uint16]string{igvm.DataNormal: "NORMAL", igvm.DataSecrets: "SECRETS", igvm.DataCPUID: "CPUID"}[pd.DataType]
			if pt == "" {
				pt = fmt.Sprintf("TYPE_%d", pd.DataType)
			}
			if pd.DataType == igvm.DataNormal && pd.FileOffset == 0 {
				pt = "ZERO"
			}
			mem.pages[pd.GPA] = int64(pd.FileOffset)
			if pd.DataType == igvm.DataCPUID {
				cpuidOff = int64(pd.FileOffset)
			}
			if n := len(rep.Headers); n > 0 {
				last := &rep.Headers[n-1]
				if last.Type == run.Type && last.PageType == pt && last.Flags == pd.Flags &&
					last.LastGPA == fmt.Sprintf("%#x", pd.GPA-pageSize) {
					last.LastGPA = fmt.Sprintf("%#x", pd.GPA)
					last.Pages++
					continue
				}
			}
			run.FirstGPA, run.LastGPA, run.Pages, run.PageType, run.Flags = fmt.Sprintf("%#x", pd.GPA), fmt.Sprintf("%#x", pd.GPA), 1, pt, pd.Flags
		case igvm.TypeVPContext:
			var vp igvm.VPContext
			if err := h.Unmarshal(&vp); err != nil {
				return nil, err
			}
			vmsaOff = int64(vp.FileOffset)
			mem.pages[vp.GPA] = vmsaOff
			run.FirstGPA, run.LastGPA, run.Pages, run.PageType = fmt.Sprintf("%#x", vp.GPA), fmt.Sprintf("%#x", vp.GPA), 1, "VMSA"
			run.Detail = fmt.Sprintf("vp %d", vp.VPIndex)
		case igvm.TypeParameterInsert:
			var pi igvm.ParameterInsert
			if err := h.Unmarshal(&pi); err != nil {
				return nil, err
			}
			run.FirstGPA, run.LastGPA, run.Pages, run.PageType = fmt.Sprintf("%#x", pi.GPA), fmt.Sprintf("%#x", pi.GPA), 1, "UNMEASURED"
			run.Detail = fmt.Sprintf("parameter area %d", pi.ParameterAreaIndex)
		case igvm.TypeSupportedPlatform:
			var sp igvm.SupportedPlatform
			if err := h.Unmarshal(&sp); err != nil {
				return nil, err
			}
			rep.Platforms = append(rep.Platforms, PlatformInfo{sp.PlatformType, sp.HighestVTL, sp.PlatformVersion})
			run.Detail = fmt.Sprintf("platform %d, highest VTL %d", sp.PlatformType, sp.HighestVTL)
		case igvm.TypeGuestPolicy:
			var gp igvm.GuestPolicy
			if err := h.Unmarshal(&gp); err != nil {
				return nil, err
			}
			rep.Policy = fmt.Sprintf("%#x", gp.Policy)
			run.Detail = "policy " + rep.Policy
		case igvm.TypeSNPIDBlock:
			idb = &igvm.SNPIDBlock{}
			if err := h.Unmarshal(idb); err != nil {
				return nil, err
			}
		default:
			run.Detail = hex.EncodeToString(h.Body)
		}
		rep.Headers = append(rep.Headers, run)
	}

	if vmsaOff != 0 {
		v := make([]byte, pageSize)
		if _, err := r.ReadAt(v, vmsaOff); err != nil {
			return nil, fmt.Errorf("reading VMSA: %w", err)
		}
		named := map[int]bool{}
		for _, n := range vmsaNames() {
			var x uint64
			for i := n.size - 1; i >= 0; i-- {
				x = x<<8 | uint64(v[n.off+i])
			}
			for i := 0; i < n.size; i++ {
				named[n.off+i] = true
			}
			if x != 0 {
				rep.VMSA = append(rep.VMSA, VMSAField{n.off, n.name, fmt.Sprintf("%#x", x)})
			}
		}
		for o := 0; o < pageSize; o += 8 {
			if x := binary.LittleEndian.Uint64(v[o:]); x != 0 && !named[o] {
				rep.VMSA = append(rep.VMSA, VMSAField{o, fmt.Sprintf("vmsa[%#x]", o), fmt.Sprintf("%#x", x)})
			}
		}
		// boot_params is at RSI; its cmd_line_ptr/cmdline_size give the command line.
		if bp := binary.LittleEndian.Uint64(v[vmsaRSI:]); bp != 0 {
			if hdr, ok := mem.read(bp+0x228, 0x14); ok {
				ptr, n := binary.LittleEndian.Uint32(hdr[0:]), binary.LittleEndian.Uint32(hdr[0x10:])
				if n <= 1<<20 {
					if c, ok := mem.read(uint64(ptr), int(n)); ok {
						s := string(c)
						rep.Cmdline = &s
					}
				}
			}
		}
	}
	if cpuidOff != 0 {
		c := make([]byte, pageSize)
		if _, err := r.ReadAt(c, cpuidOff); err != nil {
			return nil, fmt.Errorf("reading CPUID page: %w", err)
		}
		n := min(int(binary.LittleEndian.Uint32(c)), cpuidSlots)
		for i := 0; i < n; i++ {
			e := c[0x10+0x30*i:]
			rep.CPUID = append(rep.CPUID, CPUIDLeaf{fmt.Sprintf("%#x", binary.LittleEndian.Uint32(e)),
				fmt.Sprintf("%#x", binary.LittleEndian.Uint32(e[4:])), binary.LittleEndian.Uint64(e[8:])})
		}
	}
	m, err := Measure(ctx, r, size)
	if err != nil && rep.ValidationError == "" {
		return nil, err
	}
	if m != nil {
		rep.LaunchDigest, rep.MeasuredPages = m.Digest.String(), m.Pages
	}
	if idb != nil {
		blk := snp.IDBlock{LD: idb.LD, FamilyID: idb.FamilyID, ImageID: idb.ImageID, Version: idb.Version, GuestSVN: idb.GuestSVN, Policy: snp.DefaultPolicy}
		if rep.Policy != "" {
			fmt.Sscanf(rep.Policy, "0x%x", &blk.Policy)
		}
		var sig snp.Signature
		copy(sig.R[:], idb.IDKeySignature.R[:48])
		copy(sig.S[:], idb.IDKeySignature.S[:48])
		copy(sig.Qx[:], idb.IDPublicKey.Qx[:48])
		copy(sig.Qy[:], idb.IDPublicKey.Qy[:48])
		rep.IDBlock = &IDBlockInfo{
			LD: hex.EncodeToString(idb.LD[:]), FamilyID: hex.EncodeToString(idb.FamilyID[:]), ImageID: hex.EncodeToString(idb.ImageID[:]),
			Version: idb.Version, GuestSVN: idb.GuestSVN, IDKeyAlgorithm: idb.IDKeyAlgorithm, Curve: idb.IDPublicKey.Curve,
			R: hex.EncodeToString(sig.R[:]), S: hex.EncodeToString(sig.S[:]), Qx: hex.EncodeToString(sig.Qx[:]), Qy: hex.EncodeToString(sig.Qy[:]),
			SignatureValid: snp.Verify(blk, sig), LDMatches: m != nil && snp.Digest(idb.LD) == m.Digest,
		}
	}
	return rep, nil
}

// WriteText renders the report as the text form of uvmbuild inspect.
func (rep *Report) WriteText(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "file: %d bytes, format version %d, variable headers %#x+%#x, total size %d\n",
		rep.Size, rep.FormatVersion, rep.VariableHeaderOffset, rep.VariableHeaderSize, rep.TotalFileSize)
	fmt.Fprintf(&b, "checksum: %s (computed %s, valid %v)\n", rep.Checksum, rep.ChecksumComputed, rep.ChecksumValid)
	if rep.ValidationError != "" {
		fmt.Fprintf(&b, "INVALID: %s\n", rep.ValidationError)
	}
	b.WriteString("headers:\n")
	for _, h := range rep.Headers {
		fmt.Fprintf(&b, "  @%#06x %-18s", h.Offset, h.Type)
		if h.Pages > 0 {
			fmt.Fprintf(&b, " %s..%s (%d pages) %s", h.FirstGPA, h.LastGPA, h.Pages, h.PageType)
			if h.Flags != 0 {
				fmt.Fprintf(&b, " flags=%#x", h.Flags)
			}
		}
		if h.Detail != "" {
			fmt.Fprintf(&b, " %s", h.Detail)
		}
		b.WriteByte('\n')
	}
	if rep.Cmdline != nil {
		fmt.Fprintf(&b, "cmdline: %q\n", *rep.Cmdline)
	}
	b.WriteString("vmsa (non-zero):\n")
	for _, v := range rep.VMSA {
		fmt.Fprintf(&b, "  [%#05x] %-16s %s\n", v.Offset, v.Name, v.Value)
	}
	fmt.Fprintf(&b, "cpuid leaves (%d):", len(rep.CPUID))
	for _, c := range rep.CPUID {
		fmt.Fprintf(&b, " %s/%s", c.EAX, c.ECX)
	}
	b.WriteByte('\n')
	if id := rep.IDBlock; id != nil {
		fmt.Fprintf(&b, "id block: ld %s\n  family %s image %s version %d guest_svn %d key algorithm %d curve %d\n",
			id.LD, id.FamilyID, id.ImageID, id.Version, id.GuestSVN, id.IDKeyAlgorithm, id.Curve)
		fmt.Fprintf(&b, "  r %s\n  s %s\n  qx %s\n  qy %s\n  signature valid %v, ld matches launch digest %v\n",
			id.R, id.S, id.Qx, id.Qy, id.SignatureValid, id.LDMatches)
	}
	fmt.Fprintf(&b, "launch digest: %s (%d pages measured)\n", rep.LaunchDigest, rep.MeasuredPages)
	_, err := w.Write(b.Bytes())
	return err
}
