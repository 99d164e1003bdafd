// Package snp holds the AMD SEV-SNP launch-measurement math used by IGVM
// files: the PAGE_INFO/SHA-384 digest chain the PSP computes while pages are
// added at launch, the 96-byte ID block, and its ECDSA P-384 signature.
//
// Signing is RFC 6979 deterministic (no randomness is read), so the same key
// and digest always give the same signature. Callers without a key of their
// own can use [DefaultKey], derived from the public seed
// [DefaultKeySeed]: anyone can recompute that private key, so a signature
// made with it proves nothing about who built the image; it only keeps the
// output bit-reproducible.
package snp
