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
// Generation is one parallel pass over the guest pages (after a quick scan
// for all-zero pages, which get no file data): each worker takes a batch of
// 64 pages, hashes them (8 at a time with AVX-512, package snp/pagehash),
// writes their data at its final file offset straight from the input
// buffer ([GenerateFile]; the header section's size is known in advance)
// and folds the PAGE_INFO chain over every batch, in order, that is ready.
// Only the ID-block signature and the header write remain after the pass.
package igvmgen
