//go:build !amd64 || purego

package pagehash

func multiLane() bool { return false }

func sum8(pages [][]byte, out [][Size]byte) {
	panic("pagehash: no multi-lane SHA-512 on this platform")
}
