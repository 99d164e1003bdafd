//go:build amd64 && !purego

package pagehash

import (
	"encoding/binary"

	"golang.org/x/sys/cpu"
)

// block8 runs the SHA-512 compression function on 8 messages at once:
// lane l processes nblocks 128-byte blocks starting at ptrs[l]; state[8*i+l]
// is word i of lane l.
//
//go:noescape
func block8(state *[64]uint64, ptrs *[8]*byte, nblocks int)

// multiLane reports whether the AVX-512 path can run (F for the integer
// ops, BW for the byte shuffle; cpu checks the OS saves ZMM state).
func multiLane() bool { return cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW }

// sum8 hashes up to 8 pages (missing lanes hash a zero page, discarded).
func sum8(pages [][]byte, out [][Size]byte) {
	iv := [8]uint64{
		0xcbbb9d5dc1059ed8, 0x629a292a367cd507, 0x9159015a3070dd17, 0x152fecd8f70e5939,
		0x67332667ffc00b31, 0x8eb44a8768581511, 0xdb0c2e0d64f98fa7, 0x47b5481dbefa4fa4,
	}
	var state [64]uint64
	for i, v := range iv {
		for l := 0; l < 8; l++ {
			state[8*i+l] = v
		}
	}
	var zero [PageSize]byte
	var ptrs [8]*byte
	for l := range ptrs {
		ptrs[l] = &zero[0]
		if l < len(pages) {
			ptrs[l] = &pages[l][0]
		}
	}
	block8(&state, &ptrs, PageSize/128)
	// Padding of a 4096-byte message: one block of 0x80, zeros and the bit
	// length 32768 as a 128-bit big-endian number.
	var pad [128]byte
	pad[0] = 0x80
	binary.BigEndian.PutUint64(pad[120:], PageSize*8)
	for l := range ptrs {
		ptrs[l] = &pad[0]
	}
	block8(&state, &ptrs, 1)
	for l := 0; l < len(pages); l++ {
		for i := 0; i < Size/8; i++ {
			binary.BigEndian.PutUint64(out[l][8*i:], state[8*i+l])
		}
	}
}
