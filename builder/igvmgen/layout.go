package igvmgen

import (
	"fmt"
	"math"
	"sort"

	"github.com/uvmbuild/uvmbuild/builder/kernel"
)

// kind is the role of an included guest page range.
type kind uint8

const (
	kindNormal kind = iota
	kindCPUID
	kindSecrets
	kindParam
	kindVMSA
)

// region is a range of included (non-skipped) guest pages. Bytes beyond
// len(data) are zero; data aliases the kernel or a buffer of the layout.
type region struct {
	gpa    uint64
	npages uint64
	kind   kind
	data   []byte
}

// layout is igvmgen's guest-memory layout for one bzImage (spec §5).
type layout struct {
	regions []region
	end     uint64

	entry                            uint64
	pgd, pud, tss, gdt, bootParams   uint64
	cmdline, ramdisk, bootStack      uint64
	ccBlob                           uint64
	extras                           [2][2]uint64 // (offset from P, size), pvalidate_opt only
	e820                             []e820Entry
	vmsaPage, cpuidPage, afterKernel []byte
	afterKernelGPA                   uint64
}

func alignUp(x, a uint64) uint64 { return (x + a - 1) &^ (a - 1) }

// plan computes the layout, allocates the small buffers (ACPI area, SNP
// pages, the region after the kernel) and fills them.
func plan(p *Params, k *kernel.BzImage) (*layout, error) {
	l := &layout{}
	x64 := p.BootMode == BootX64
	acpiEnd := p.ACPI.End
	if acpiEnd > gpaCPUID || acpiEnd%pageSize != 0 {
		return nil, fmt.Errorf("ACPI area ends at %#x, must be page aligned and at most %#x", acpiEnd, uint64(gpaCPUID))
	}
	acpiStart := uint64(0)
	if p.PvalidateOpt {
		acpiStart = lowMemEnd
	}
	if acpiEnd <= acpiStart {
		return nil, fmt.Errorf("ACPI area ends at %#x, below its start %#x", acpiEnd, acpiStart)
	}
	acpiBuf := make([]byte, acpiEnd-acpiStart)
	for _, pg := range p.ACPI.Pages {
		if pg.GPA < acpiStart || pg.GPA+pageSize > acpiEnd || len(pg.Data) != pageSize {
			return nil, fmt.Errorf("ACPI page %#x outside the ACPI area [%#x, %#x)", pg.GPA, acpiStart, acpiEnd)
		}
		copy(acpiBuf[pg.GPA-acpiStart:], pg.Data)
	}
	l.regions = append(l.regions, region{gpa: acpiStart, npages: (acpiEnd - acpiStart) / pageSize, data: acpiBuf})

	l.cpuidPage = make([]byte, pageSize)
	cpuidPage(l.cpuidPage, p.CPUID)
	l.vmsaPage = make([]byte, pageSize)
	l.regions = append(l.regions,
		region{gpa: gpaCPUID, npages: 1, kind: kindCPUID, data: l.cpuidPage},
		region{gpa: gpaSecrets, npages: 1, kind: kindSecrets},
		region{gpa: gpaParam, npages: 1, kind: kindParam},
		region{gpa: gpaVMSA, npages: 1, kind: kindVMSA, data: l.vmsaPage})

	P, I, S := k.PrefAddress, uint64(k.InitSize), k.VmlinuxSize()
	if P < gpaVMSA+pageSize {
		return nil, fmt.Errorf("%s: load address %#x is below %#x, where the SNP pages end", p.KernelName, P, uint64(gpaVMSA+pageSize))
	}
	if P+I+(1<<20) > math.MaxUint32 {
		return nil, fmt.Errorf("%s: load address %#x + init_size %#x leaves no room below 4 GiB", p.KernelName, P, I)
	}
	l.entry = k.Entry(x64)
	if p.PvalidateOpt {
		l.extras = [2][2]uint64{{S + 0x10000, 0x4000}, {I - 0x7000, 0x7000}}
		if I < 0x7000 || S+0x14000 > I-0x7000 {
			return nil, fmt.Errorf("%s: payload (%#x bytes) + boot heap/stack (0x14000) does not fit before the early page tables at init_size %#x - 0x7000",
				p.KernelName, S, I)
		}
		sort.Slice(l.extras[:], func(i, j int) bool { return l.extras[i][0] < l.extras[j][0] })
		if S > 0 {
			l.regions = append(l.regions, region{gpa: P, npages: S / pageSize, data: k.Payload})
		}
		for _, e := range l.extras {
			l.regions = append(l.regions, region{gpa: P + e[0], npages: e[1] / pageSize})
		}
	} else {
		if S > I {
			return nil, fmt.Errorf("%s: payload (%#x bytes) is larger than init_size %#x", p.KernelName, S, I)
		}
		l.regions = append(l.regions, region{gpa: P, npages: I / pageSize, data: k.Payload})
	}

	// After the kernel: page tables, TSS, GDT, boot_params, command line,
	// initrd, boot stack, cc_blob — allocated like igvmgen's bump allocator.
	start := P + I
	c := start
	if x64 {
		l.pgd, l.pud = c, c+pageSize
		c += 2 * pageSize
	}
	l.tss = c
	c += tssSize
	l.gdt = c
	if x64 {
		c += gdtSize64
	} else {
		c += gdtSize32
	}
	l.bootParams = c
	c += pageSize
	if uint64(len(p.Cmdline)) > uint64(k.CmdlineSize) {
		return nil, fmt.Errorf("kernel command line is %d bytes, %s accepts at most %d (cmdline_size)", len(p.Cmdline), p.KernelName, k.CmdlineSize)
	}
	l.cmdline = c
	c += uint64(len(p.Cmdline)) + 1
	l.ramdisk = alignUp(c, pageSize)
	c = l.ramdisk + uint64(len(p.Initrd))
	if len(p.Initrd) > 0 && c-1 > uint64(k.InitrdAddrMax) {
		return nil, fmt.Errorf("initrd %s (%d bytes at %#x) does not fit below %s's initrd_addr_max %#x",
			p.InitrdName, len(p.Initrd), l.ramdisk, p.KernelName, k.InitrdAddrMax)
	}
	l.bootStack = c
	c += pageSize
	l.ccBlob = c
	c += pageSize
	l.end = alignUp(c, pageSize)
	if l.end > math.MaxUint32 {
		return nil, fmt.Errorf("initrd %s (%d bytes) does not fit below 4 GiB after the kernel (layout ends at %#x)", p.InitrdName, len(p.Initrd), l.end)
	}
	buf := make([]byte, l.end-start)
	at := func(g uint64) []byte { return buf[g-start:] }
	if x64 {
		pageTables(at(l.pgd), at(l.pud), l.pud, p.EncryptedPage)
	}
	gdt(at(l.gdt), l.tss, x64)
	copy(at(l.cmdline), p.Cmdline)
	copy(at(l.ramdisk), p.Initrd)
	ccBlob(at(l.ccBlob))
	l.e820 = []e820Entry{
		{0, 0, e820RAM},
		{lowMemEnd, 0x100000 - lowMemEnd, e820Reserved},
		{0x100000, acpiEnd - 0x100000, e820ACPI},
	}
	if acpiEnd < 0x100000 {
		return nil, fmt.Errorf("ACPI area ends at %#x, below 1 MiB", acpiEnd)
	}
	if p.PvalidateOpt {
		l.e820 = append(l.e820, e820Entry{P, S, e820RAM})
		for _, e := range l.extras {
			l.e820 = append(l.e820, e820Entry{P + e[0], e[1], e820RAM})
		}
		l.e820 = append(l.e820, e820Entry{start, l.end - start, e820RAM})
	} else {
		l.e820[0].size = lowMemEnd
		l.e820 = append(l.e820, e820Entry{P, l.end - P, e820RAM})
	}
	bootParams(at(l.bootParams), k, l, len(p.Cmdline), len(p.Initrd), l.e820)
	vmsa(l.vmsaPage, p, l)
	l.regions = append(l.regions, region{gpa: start, npages: (l.end - start) / pageSize, data: buf})
	l.afterKernel, l.afterKernelGPA = buf, start
	return l, nil
}
