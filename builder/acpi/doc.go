// Package acpi builds the ACPI pages of an igvmgen-compatible guest image:
// from a directory of iasl sources compiled, patched, placed and packed
// exactly as igvmgen does ([FromDSL]), or from a flat file of pre-built pages
// ([ParseFlat], igvmgen's built-in snapshot form: u64 GPA + 4096 bytes per
// page).
//
// Compiling is delegated to a [Compiler]; package iasl provides one that runs
// the iasl binary. The iasl version is an input of the result: iasl stamps its
// version into every table header (offset 0x20) and the checksum, so two iasl
// versions give two launch measurements for the same sources.
//
// The DSL algorithm (igvmgen, acpi.py): compile every *.dsl; the RSDP goes at
// 0xE0000, the XSDT at the RSDP's XSDT address (0x100000 by default); the
// other tables are placed back to back, without alignment, in ASCII order of
// their signatures from XSDT+0x1000; the FADT source text "FACS Address : 0"
// and "DSDT Address : 0" is replaced with the placed addresses and one
// "ACPI Table Address" line per APIC/FACP/MCFG/OEM0/TCPA/TPM2 table is
// appended to the XSDT source; both are recompiled.
package acpi
