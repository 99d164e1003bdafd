package diff

import (
	"context"
	"path/filepath"
	"testing"
)

// FuzzCompareIGVM feeds mutated IGVM files to the comparison: it must
// return a report or an error, never panic or run away.
func FuzzCompareIGVM(f *testing.F) {
	f.Add(synthIGVM(&testing.T{}, "console=hvc0"), uint16(0x330), byte(0xff))
	f.Add(synthIGVM(&testing.T{}, "root=/dev/vda1"), uint16(0x228), byte(0x10))
	f.Fuzz(func(t *testing.T, data []byte, off uint16, val byte) {
		dir := t.TempDir()
		a := writeFile(t, dir, "a.igvm", synthIGVM(t, "console=hvc0"))
		if int(off) < len(data) {
			data[off] = val
		}
		b := writeFile(t, dir, "b.igvm", data)
		r := &Report{}
		_ = compareIGVM(a, b, r, (*Options)(nil).norm())
		_, _ = Files(context.Background(), a, filepath.Join(dir, "b.igvm"), nil)
	})
}
