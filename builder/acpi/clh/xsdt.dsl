/*
 * uvmbuild default ACPI tables for Cloud Hypervisor SEV-SNP guests: XSDT.
 * The entries are appended at build time (one "ACPI Table Address" line per
 * table, in ASCII signature order), exactly as igvmgen does.
 */
[0004]                          Signature : "XSDT"    [Extended System Description Table]
[0004]                       Table Length : 00000024
[0001]                           Revision : 01
[0001]                           Checksum : 00
[0006]                             Oem ID : "UVMBLD"
[0008]                       Oem Table ID : "CLHXSDT "
[0004]                       Oem Revision : 00000001
[0004]                    Asl Compiler ID : "INTL"
[0004]              Asl Compiler Revision : 00000000
