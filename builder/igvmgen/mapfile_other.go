//go:build !unix

package igvmgen

import "os"

// MapFile reads path (no mmap on this platform); release is a no-op.
func MapFile(path string) (data []byte, release func() error, err error) {
	b, err := os.ReadFile(path)
	return b, func() error { return nil }, err
}
