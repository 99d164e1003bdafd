package igvmgen

import (
	"crypto/ecdsa"
	"fmt"

	"github.com/uvmbuild/uvmbuild/builder/acpi"
	"github.com/uvmbuild/uvmbuild/builder/kernel"
)

// BootMode selects the entry state of the boot processor.
type BootMode string

// Boot modes (igvmgen -boot_mode).
const (
	BootX64 BootMode = "x64" // long mode with identity page tables, entry startup_64
	BootX86 BootMode = "x86" // 32-bit protected mode, entry startup_32
)

// Arch is igvmgen's -arch; its only effect is RFLAGS (2 for Intel, 0 for AMD).
type Arch string

// Architectures.
const (
	ArchIntel Arch = "intel"
	ArchAMD   Arch = "amd"
)

// CPUIDVariant selects the SNP CPUID page's leaf list.
type CPUIDVariant string

// CPUID leaf lists.
const (
	// CPUIDDefault is igvm-tooling's list of 38 leaves.
	CPUIDDefault CPUIDVariant = "default"
	// CPUIDAzureLinux drops leaves (0xD,5), (0xD,6), (0xD,7) as the Azure
	// Linux kata builder's patch does (35 leaves). The CPUID page is not
	// measured, so the launch digest is the same; the file differs.
	CPUIDAzureLinux CPUIDVariant = "azure-linux"
)

// Params are the inputs of Generate. Every field that changes output bytes
// is here.
type Params struct {
	// Kernel is the bzImage; KernelName names it in errors.
	Kernel     []byte
	KernelName string
	// Cmdline is the kernel command line, byte for byte (ASCII, no NUL).
	Cmdline []byte
	// Initrd is the optional initial ramdisk; InitrdName names it in errors.
	Initrd     []byte
	InitrdName string
	// ACPI holds the ACPI pages (required).
	ACPI *acpi.Tables

	BootMode BootMode
	// VTL is SUPPORTED_PLATFORM.HighestVtl.
	VTL uint8
	// SVME sets EFER.SVME in the VMSA.
	SVME bool
	// EncryptedPage sets the C-bit (bit 51) in page-table entries and CR3 (x64).
	EncryptedPage bool
	// PvalidateOpt leaves low memory and the unused part of the kernel's
	// init_size region out of the image (igvmgen -pvalidate_opt).
	PvalidateOpt bool
	Arch         Arch
	CPUID        CPUIDVariant
	// IDKey signs the ID block; nil means snp.DefaultKey.
	IDKey *ecdsa.PrivateKey
	// IDKeyFunc, if set instead of IDKey, supplies the ID key when the ID
	// block is signed, after the pages are hashed: the caller can parse the
	// key on another core meanwhile (a process's first P-384 operation
	// builds about 2 ms of tables). It is called once.
	IDKeyFunc func() (*ecdsa.PrivateKey, error)
}

// DefaultParams returns the Azure Linux confidential UVM's settings: x64,
// VTL 0, SVME on, encrypted pages on, pvalidate optimisation on, Intel,
// upstream CPUID leaves.
func DefaultParams() Params {
	return Params{
		BootMode: BootX64, VTL: 0, SVME: true, EncryptedPage: true, PvalidateOpt: true,
		Arch: ArchIntel, CPUID: CPUIDDefault,
	}
}

func (p *Params) check() error {
	switch p.BootMode {
	case BootX64, BootX86:
	default:
		return fmt.Errorf("boot mode %q, want x64 or x86", p.BootMode)
	}
	switch p.Arch {
	case ArchIntel, ArchAMD:
	default:
		return fmt.Errorf("arch %q, want intel or amd", p.Arch)
	}
	switch p.CPUID {
	case CPUIDDefault, CPUIDAzureLinux:
	default:
		return fmt.Errorf("CPUID variant %q, want default or azure-linux", p.CPUID)
	}
	if p.IDKey != nil && p.IDKeyFunc != nil {
		return fmt.Errorf("both an ID key and an ID key function given")
	}
	if p.ACPI == nil || len(p.ACPI.Pages) == 0 {
		return fmt.Errorf("no ACPI tables given")
	}
	for i, c := range p.Cmdline {
		if c == 0 || c > 0x7F {
			return fmt.Errorf("kernel command line byte %d is %#02x: only ASCII without NUL is allowed", i, c)
		}
	}
	return nil
}

// CheckKernel parses the bzImage's setup header as Generate will, so that
// callers can reject a bad kernel before the slower ACPI compilation.
func CheckKernel(name string, data []byte) error {
	_, err := kernel.Parse(name, data)
	return err
}
