/*
 * uvmbuild default ACPI tables for Cloud Hypervisor SEV-SNP guests: RSDP.
 * Data-table source for iasl (ACPI 6.x, 5.2.5). Placed at 0xE0000 by the
 * IGVM layout; the XSDT lives at 0x100000. Written for uvmbuild (MIT).
 */
[0008]                          Signature : "RSD PTR "
[0001]                           Checksum : 00
[0006]                             Oem ID : "UVMBLD"
[0001]                           Revision : 02
[0004]                       RSDT Address : 00000000
[0004]                             Length : 00000024
[0008]                       XSDT Address : 0000000000100000
[0001]                  Extended Checksum : 00
[0003]                           Reserved : 000000
