package igvmgen

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback starts writing n bytes of f at off back to disk without
// waiting for it.
func startWriteback(f *os.File, off, n int64) error {
	return unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
