// Package igvm is a codec for IGVM files (Independent Guest Virtual
// Machine format, microsoft/igvm): the fixed header, the variable headers
// used for AMD SEV-SNP guests as wire structs, a [HeaderBuilder] that lays
// out headers and file data and computes the CRC-32 checksum, a bounded
// reader ([Read], [Decode]) and [Validate].
//
// Layout quirks of igvmgen that a byte-compatible writer must reproduce are
// kept here: variable-header padding bytes are ASCII '0' (0x30), and the
// checksum covers the fixed header (checksum zeroed) and all variable headers
// including padding, but not the file data section.
package igvm
