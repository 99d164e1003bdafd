// Package clh holds uvmbuild's own default ACPI tables for Cloud Hypervisor
// SEV-SNP guests as iasl sources (*.dsl in this directory, embedded with
// go:embed): RSDP, XSDT, FADT (hardware-reduced), FACS, DSDT (16 CPUs, PCI
// segment 0, COM1), MADT (16 local APICs, one I/O APIC) and MCFG (ECAM at
// 0xE8000000). They were written for this project from the ACPI 6.3
// specification (the data-table files start from iasl's own "iasl -T"
// templates); they are not igvm-tooling's acpi-clh tables.
//
// The directory is a valid igvmgen -acpi_dir: point igvmgen at it (it writes
// .aml files next to the sources, which .gitignore hides) to confirm
// uvmbuild's measurement with the reference tool.
package clh
