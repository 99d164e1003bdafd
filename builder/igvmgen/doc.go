// Package igvmgen turns a Linux bzImage, a kernel command line, an optional
// initrd and ACPI tables into an IGVM file for an AMD SEV-SNP guest and its
// launch digest, byte for byte as microsoft/igvm-tooling's igvmgen
// (-inform bzImage) does, and recomputes the launch digest of any IGVM file
// by replaying its directives ([Measure]).
//
// Differences from igvmgen are deliberate and never change bytes for inputs
// igvmgen accepts: the ID block is always signed with RFC 6979 deterministic
// ECDSA (igvmgen's -sign_deterministic 1), with [snp.DefaultKey] when no key
// is given (a public key: the signature proves nothing); bad inputs are
// rejected with an error instead of a Python traceback; -config_file is not
// supported (igvmgen ignores it too).
//
// Generation is a single pass over the guest pages: page contents are hashed
// in parallel, the PAGE_INFO chain is then folded in order, and the kernel
// payload is written to the output straight from the input buffer.
package igvmgen
