package deploy

import (
	"io/fs"
	"syscall"
)

// withEUID pretends the process runs as uid (privilege checks only).
func withEUID(uid int) Option { return func(o *options) { o.euid = func() int { return uid } } }

func inodeOf(st fs.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}
