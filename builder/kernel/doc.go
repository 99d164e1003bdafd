// Package kernel parses Linux x86 boot images (bzImage): the setup header
// fields the IGVM generator needs, the 64-bit entry point and the
// protected-mode payload. The parser is defensive: it never allocates from a
// length field and names the input, the field and the expected and actual
// values in its errors.
package kernel
