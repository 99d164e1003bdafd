/*
 * uvmbuild default ACPI tables for Cloud Hypervisor SEV-SNP guests: MCFG
 * (PCI Firmware Spec 3.2, 4.1.2). Cloud Hypervisor exposes PCI segment 0,
 * bus 0, through ECAM at 0xE8000000.
 */
[0004]                          Signature : "MCFG"    [Memory Mapped Configuration table]
[0004]                       Table Length : 0000003C
[0001]                           Revision : 01
[0001]                           Checksum : 00
[0006]                             Oem ID : "UVMBLD"
[0008]                       Oem Table ID : "CLHMCFG "
[0004]                       Oem Revision : 00000001
[0004]                    Asl Compiler ID : "INTL"
[0004]              Asl Compiler Revision : 00000000

[0008]                           Reserved : 0000000000000000

[0008]                       Base Address : 00000000E8000000
[0002]               Segment Group Number : 0000
[0001]                   Start Bus Number : 00
[0001]                     End Bus Number : 00
[0004]                           Reserved : 00000000
