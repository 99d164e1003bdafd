package disk

import (
	"bytes"
	"testing"
)

func TestHashStartMiB(t *testing.T) {
	for _, c := range []struct{ size, want int64 }{{110, 108}, {100, 99}, {12345, 12221}, {10101, 9999}, {101011, 100001}, {130, 128}} {
		got, err := HashStartMiB(c.size)
		if err != nil || got != c.want {
			t.Errorf("HashStartMiB(%d) = %d, %v; want %d", c.size, got, err, c.want)
		}
	}
	if _, err := HashStartMiB(2_000_000); err == nil {
		t.Error("no error beyond the range of awk's 6 significant digits")
	}
}

func TestLayoutAndMBR(t *testing.T) {
	l, err := NewLayout(110, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []Partition{{1, MiB, 107 * MiB, 0x83, true}, {2, 108 * MiB, 2 * MiB, 0x83, false}}
	if len(l.Partitions) != 2 || l.Partitions[0] != want[0] || l.Partitions[1] != want[1] {
		t.Errorf("partitions %+v, want %+v", l.Partitions, want)
	}
	b, err := l.MBR(0xdeadbeef)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 512 || b[510] != 0x55 || b[511] != 0xaa || !bytes.Equal(b[440:444], []byte{0xef, 0xbe, 0xad, 0xde}) || b[446] != 0x80 || b[450] != 0x83 {
		t.Errorf("MBR bytes wrong: % x", b[440:])
	}
	id, got, err := DecodeMBR(b, l.Size)
	if err != nil || id != 0xdeadbeef || len(got.Partitions) != 2 || got.Partitions[1] != want[1] {
		t.Errorf("DecodeMBR: %x %+v %v", id, got, err)
	}
	plain, _ := NewLayout(64, false)
	if len(plain.Partitions) != 1 || plain.Partitions[0].Size != 63*MiB || plain.Partitions[0].Bootable {
		t.Errorf("plain layout %+v", plain)
	}
	if _, err := NewLayout(2, true); err == nil {
		t.Error("2 MiB image accepted")
	}
}

func TestImageSizeMiB(t *testing.T) {
	// A file system model with 5 MiB of overhead.
	avail := func(p int64) (int64, error) { return p - 5*MiB, nil }
	// R = 100: D = 110 → p1 = 106 MiB plain (avail 101 > 100) → round_up(112, 2) - 2 = 110.
	if got, _ := ImageSizeMiB(100*MiB-1, false, 2, avail); got != 110 {
		t.Errorf("plain: %d, want 110", got)
	}
	// Measured: D = 110 → p1 = 107 - 5 = 102 > 100 → 110; alignment 128 → 126.
	if got, _ := ImageSizeMiB(100*MiB, true, 128, avail); got != 126 {
		t.Errorf("measured, align 128: %d, want 126", got)
	}
	// More overhead: needs a second step.
	avail2 := func(p int64) (int64, error) { return p * 9 / 10, nil }
	if got, _ := ImageSizeMiB(100*MiB, false, 2, avail2); got != 120 {
		t.Errorf("second step: %d, want 120", got)
	}
	if a, b := DeriveDiskID([]byte("a")), DeriveDiskID([]byte("b")); a == b || a == 0 || a != DeriveDiskID([]byte("a")) {
		t.Errorf("disk ids %x %x", a, b)
	}
}
