package igvmgen

import (
	"encoding/binary"

	"github.com/uvmbuild/uvmbuild/builder/kernel"
)

const pageSize = 4096

// Fixed guest-physical addresses of igvmgen's layout.
const (
	gpaCPUID   = 0x800000
	gpaSecrets = 0x801000
	gpaParam   = 0x802000
	gpaVMSA    = 0x803000
	gpaRSDP    = 0xE0000
	lowMemEnd  = 0xA0000
)

const (
	tssSize    = 104
	gdtSize64  = 56
	gdtSize32  = 48
	cBit       = uint64(1) << 51
	cpuidSlots = 64
)

// pageTables fills the PGD and PUD pages: an identity map of the first
// 512 GiB with 1 GiB pages.
func pageTables(pgd, pud []byte, pudGPA uint64, enc bool) {
	var cb uint64
	if enc {
		cb = cBit
	}
	binary.LittleEndian.PutUint64(pgd, pudGPA|cb|0x7)
	for i := uint64(0); i < 512; i++ {
		binary.LittleEndian.PutUint64(pud[i*8:], i<<30|cb|0x87)
	}
}

// gdt writes the GDT (null, kernel/user code, kernel/user data, TSS).
func gdt(dst []byte, tss uint64, x64 bool) {
	code := uint64(0x00cf9b000000ffff) // G=1, D=1, P=1, DPL0, type 0xB
	if x64 {
		code = 0x00af9b000000ffff // L=1, D=0
	}
	binary.LittleEndian.PutUint64(dst[8:], code)
	binary.LittleEndian.PutUint64(dst[16:], code|3<<45) // DPL 3
	binary.LittleEndian.PutUint64(dst[24:], 0x00cf93000000ffff)
	binary.LittleEndian.PutUint64(dst[32:], 0x00cff3000000ffff)
	d := uint64(0x67) | (tss&0xFFFFFF)<<16 | uint64(0x8B)<<40 | (tss>>24&0xFF)<<56
	binary.LittleEndian.PutUint64(dst[40:], d)
	if x64 {
		binary.LittleEndian.PutUint32(dst[48:], uint32(tss>>32))
	}
}

// e820Entry is one boot_params e820 entry.
type e820Entry struct {
	addr, size uint64
	typ        uint32
}

const (
	e820RAM      = 1
	e820Reserved = 2
	e820ACPI     = 3
)

// bootParams fills the 4096-byte zero page.
func bootParams(dst []byte, k *kernel.BzImage, l *layout, cmdlineLen, rdLen int, e820 []e820Entry) {
	le := binary.LittleEndian
	le.PutUint64(dst[0x070:], gpaRSDP)
	le.PutUint32(dst[0x13C:], uint32(l.ccBlob))
	dst[0x1E8] = byte(len(e820))
	copy(dst[kernel.SetupHeaderOffset:], k.SetupHeader[:])
	dst[0x210] = 0xFF // type_of_loader: undefined
	le.PutUint32(dst[0x214:], uint32(l.entry))
	le.PutUint32(dst[0x218:], uint32(l.ramdisk))
	le.PutUint32(dst[0x21C:], uint32(rdLen))
	le.PutUint32(dst[0x228:], uint32(l.cmdline))
	le.PutUint32(dst[0x238:], uint32(cmdlineLen))
	for i, e := range e820 {
		o := 0x2D0 + 20*i
		le.PutUint64(dst[o:], e.addr)
		le.PutUint64(dst[o+8:], e.size)
		le.PutUint32(dst[o+16:], e.typ)
	}
}

// ccBlob fills struct cc_blob_sev_info.
func ccBlob(dst []byte) {
	le := binary.LittleEndian
	le.PutUint32(dst[0:], 0x45444D41) // "AMDE"
	le.PutUint64(dst[0x08:], gpaSecrets)
	le.PutUint32(dst[0x10:], pageSize)
	le.PutUint64(dst[0x18:], gpaCPUID)
	le.PutUint32(dst[0x20:], pageSize)
}

// VMSA field offsets (struct sev_es_save_area).
const (
	vmsaES, vmsaCS, vmsaSS, vmsaDS = 0x000, 0x010, 0x020, 0x030
	vmsaGDTR, vmsaTR               = 0x060, 0x090
	vmsaEFER                       = 0x0D0
	vmsaCR4, vmsaCR3, vmsaCR0      = 0x148, 0x150, 0x158
	vmsaRFLAGS, vmsaRIP, vmsaRSP   = 0x170, 0x178, 0x1D8
	vmsaGPAT, vmsaRSI              = 0x268, 0x330
	vmsaSEVFeatures, vmsaXCR0      = 0x3B0, 0x3E8
)

func segment(dst []byte, sel, attrib uint16, limit uint32, base uint64) {
	le := binary.LittleEndian
	le.PutUint16(dst[0:], sel)
	le.PutUint16(dst[2:], attrib)
	le.PutUint32(dst[4:], limit)
	le.PutUint64(dst[8:], base)
}

// vmsa fills the boot processor's save area.
func vmsa(dst []byte, p *Params, l *layout) {
	le := binary.LittleEndian
	x64 := p.BootMode == BootX64
	csAttr, gdtLimit := uint16(0xC9B), uint32(gdtSize32-1)
	if x64 {
		csAttr, gdtLimit = 0xA9B, gdtSize64-1
	}
	segment(dst[vmsaES:], 0x18, 0xC93, 0xFFFFFFFF, 0)
	segment(dst[vmsaCS:], 0x08, csAttr, 0xFFFFFFFF, 0)
	segment(dst[vmsaSS:], 0x18, 0xC93, 0xFFFFFFFF, 0)
	segment(dst[vmsaDS:], 0x18, 0xC93, 0xFFFFFFFF, 0)
	segment(dst[vmsaGDTR:], 0, 0, gdtLimit, l.gdt)
	segment(dst[vmsaTR:], 0x28, 0x08B, tssSize-1, l.tss)
	var efer uint64
	if p.SVME {
		efer = 0x1000
	}
	if x64 {
		efer |= 0x0D01 // SCE, LME, LMA, NXE
		le.PutUint64(dst[vmsaCR4:], 0x30)
		cr3 := l.pgd
		if p.EncryptedPage {
			cr3 |= cBit
		}
		le.PutUint64(dst[vmsaCR3:], cr3)
		le.PutUint64(dst[vmsaCR0:], 0x80000001)
	} else {
		le.PutUint64(dst[vmsaCR0:], 0x1)
	}
	le.PutUint64(dst[vmsaEFER:], efer)
	if p.Arch == ArchIntel {
		le.PutUint64(dst[vmsaRFLAGS:], 2)
	}
	le.PutUint64(dst[vmsaRIP:], l.entry)
	le.PutUint64(dst[vmsaRSP:], l.bootStack+pageSize)
	le.PutUint64(dst[vmsaGPAT:], 0x0007040600070406)
	le.PutUint64(dst[vmsaRSI:], l.bootParams)
	le.PutUint64(dst[vmsaSEVFeatures:], 0x9) // SNPActive | RestrictedInjection
	le.PutUint64(dst[vmsaXCR0:], 1)
}

// cpuidLeaf is one (EAX, ECX) input of the SNP CPUID page.
type cpuidLeaf struct{ eax, ecx uint32 }

// cpuidLeaves returns igvm-tooling's leaf list, optionally with the Azure
// Linux patch applied.
func cpuidLeaves(v CPUIDVariant) []cpuidLeaf {
	l := []cpuidLeaf{
		{0x8000001F, 0}, {0, 0}, {1, 0}, {0x80000000, 0}, {2, 0}, {5, 0}, {6, 0}, {9, 0}, {0xA, 0}, {7, 0},
		{4, 0}, {4, 1}, {4, 2}, {0xB, 0}, {0xB, 1}, {0x80000001, 0}, {0x80000005, 0}, {0x80000006, 0},
		{0x80000007, 0}, {0x80000008, 0}, {0x8000000A, 0}, {0x8000001E, 0},
		{0xD, 0}, {0xD, 1}, {0xD, 2}, {0xD, 3}, {0xD, 4}, {0xD, 5}, {0xD, 6}, {0xD, 7}, {0xD, 8},
		{0x80000002, 0}, {0x80000003, 0}, {0x80000004, 0},
		{0x8000001D, 0}, {0x8000001D, 1}, {0x8000001D, 2}, {0x8000001D, 3},
	}
	if v == CPUIDAzureLinux {
		out := l[:0:0]
		for _, x := range l {
			if x.eax == 0xD && x.ecx >= 5 && x.ecx <= 7 {
				continue
			}
			out = append(out, x)
		}
		l = out
	}
	return l
}

// cpuidPage fills the SNP CPUID page: count, then 48-byte entries with only
// the inputs set (XfemIn = 1 for leaf 0xD).
func cpuidPage(dst []byte, v CPUIDVariant) {
	le := binary.LittleEndian
	leaves := cpuidLeaves(v)
	le.PutUint32(dst, uint32(len(leaves)))
	for i, x := range leaves {
		e := dst[0x10+0x30*i:]
		le.PutUint32(e[0:], x.eax)
		le.PutUint32(e[4:], x.ecx)
		if x.eax == 0xD {
			le.PutUint64(e[8:], 1)
		}
	}
}
