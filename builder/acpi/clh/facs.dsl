/*
 * uvmbuild default ACPI tables for Cloud Hypervisor SEV-SNP guests: FACS
 * (ACPI 6.x, 5.2.10). Hardware-reduced guests ignore it, but the FADT layout
 * used by igvmgen requires one.
 */
[0004]                          Signature : "FACS"
[0004]                             Length : 00000040
[0004]                 Hardware Signature : 00000000
[0004]          32 Firmware Waking Vector : 00000000
[0004]                        Global Lock : 00000000
[0004]              Flags (decoded below) : 00000000
                   S4BIOS Support Present : 0
               64-bit Wake Supported (V2) : 0
[0008]          64 Firmware Waking Vector : 0000000000000000
[0001]                            Version : 02
[0003]                           Reserved : 000000
[0004]          OspmFlags (decoded below) : 00000000
            64-bit Wake Env Required (V2) : 0
