package filemode

import "io/fs"

// FromUnix converts 0o7777 permission bits to Go file mode bits; other
// bits of p are dropped.
func FromUnix(p fs.FileMode) fs.FileMode {
	m := p.Perm()
	if p&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if p&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if p&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// ToUnix converts Go file mode bits to 0o7777 permission bits; the type
// bits of m are dropped.
func ToUnix(m fs.FileMode) fs.FileMode {
	p := m.Perm()
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}
