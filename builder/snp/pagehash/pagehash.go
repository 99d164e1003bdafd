package pagehash

import "crypto/sha512"

// PageSize is the only message size supported.
const PageSize = 4096

// Size is the SHA-384 digest size.
const Size = sha512.Size384

// Sum384 sets out[i] = SHA-384(pages[i]). Every page must be PageSize
// bytes and out must be at least as long as pages.
func Sum384(pages [][]byte, out [][Size]byte) {
	if len(out) < len(pages) {
		panic("pagehash: out shorter than pages")
	}
	for _, p := range pages {
		if len(p) != PageSize {
			panic("pagehash: page is not 4096 bytes")
		}
	}
	n := 0
	if multiLane() {
		n = len(pages) &^ 7
		for i := 0; i < n; i += 8 {
			sum8(pages[i:i+8], out[i:i+8])
		}
		if len(pages)-n >= 3 { // a partial group still beats serial hashing
			sum8(pages[n:], out[n:len(pages)])
			n = len(pages)
		}
	}
	for i := n; i < len(pages); i++ {
		out[i] = sha512.Sum384(pages[i])
	}
}
