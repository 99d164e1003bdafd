package verity

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// memWriter is an io.WriterAt over a growing byte slice.
type memWriter struct{ b []byte }

func (m *memWriter) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	copy(m.b[off:], p)
	return len(p), nil
}

func testSalt() []byte {
	s := make([]byte, 32)
	for i := range s {
		s[i] = byte(i)
	}
	return s
}

// vectorData regenerates the data of the shared vectors from their
// description in vectors/verity/README.md.
func vectorData(name string) []byte {
	const bs = 4096
	switch name {
	case "tv1":
		return make([]byte, 1<<20)
	case "tv2", "tv5":
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = byte(i)
		}
		if name == "tv5" {
			b = b[:129*bs]
		}
		return b
	case "tv3":
		b := make([]byte, 16385*bs)
		for i := range 16385 {
			for j := range bs {
				b[i*bs+j] = byte(i)
			}
		}
		return b
	case "tv4":
		b := make([]byte, bs)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}
	return nil
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

func format(t *testing.T, data []byte, p Params, workers int) (*Result, []byte) {
	t.Helper()
	var w memWriter
	res, err := run(context.Background(), bytes.NewReader(data), int64(len(data)), &w, p, workers)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(w.b)) != res.HashDeviceSize {
		t.Fatalf("wrote %d bytes, HashDeviceSize %d", len(w.b), res.HashDeviceSize)
	}
	return res, w.b
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestSharedVectors(t *testing.T) {
	path := filepath.Join(repoRoot(t), "..", "shared", "vectors", "verity", "verity-vectors.txt")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("shared verity vectors not available (%v); they live in ../shared/vectors/verity", err)
	}
	defer f.Close()
	uuid, _ := ParseUUID("12345678-9abc-def0-1234-56789abcdef0")
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		kv := map[string]string{}
		for _, f := range fields[1:] {
			k, v, _ := strings.Cut(f, "=")
			kv[k] = v
		}
		name := fields[0]
		t.Run(name, func(t *testing.T) {
			data := vectorData(name)
			if data == nil {
				t.Fatalf("vector %s: no generator for this data", name)
			}
			if got := sha(data); got != kv["data"] {
				t.Fatalf("regenerated data sha256 %s, vector says %s", got, kv["data"])
			}
			var salt []byte
			if kv["salt"] != "-" {
				if salt, err = hex.DecodeString(kv["salt"]); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range []struct {
				key  string
				nosb bool
			}{{"sbfile", false}, {"nosbfile", true}} {
				size, sum, _ := strings.Cut(kv[c.key], ":")
				for _, workers := range []int{1, 3} {
					res, hb := format(t, data, Params{Salt: salt, UUID: uuid, NoSuperblock: c.nosb}, workers)
					if got := hex.EncodeToString(res.RootHash); got != kv["root"] {
						t.Errorf("%s workers=%d: root %s, want %s", c.key, workers, got, kv["root"])
					}
					if strconv.Itoa(len(hb)) != size || sha(hb) != sum {
						t.Errorf("%s workers=%d: hash file %d:%s, want %s", c.key, workers, len(hb), sha(hb), kv[c.key])
					}
					if _, err := Verify(context.Background(), bytes.NewReader(data), int64(len(data)), bytes.NewReader(hb),
						Params{Salt: salt, UUID: uuid, NoSuperblock: c.nosb}, res.RootHash); err != nil {
						t.Errorf("Verify: %v", err)
					}
				}
			}
		})
		n++
	}
	if n == 0 {
		t.Fatalf("%s: no vectors", path)
	}
}

// veritysetupCase compares Format with the real veritysetup.
type veritysetupCase struct {
	name     string
	blocks   int
	dbs, hbs uint32
	hash     string
	salt     []byte
	nosb     bool
	levels   int
}

func TestAgainstVeritysetup(t *testing.T) {
	vs, err := exec.LookPath("veritysetup")
	if err != nil {
		t.Skip("veritysetup not installed (Debian package cryptsetup-bin); skipping the comparison with the reference tool")
	}
	big := bytes.Repeat([]byte{0xa5}, 300)
	var cases []veritysetupCase
	for _, nosb := range []bool{false, true} {
		cases = append(cases,
			veritysetupCase{name: "1level", blocks: 100, hash: "sha256", salt: testSalt(), nosb: nosb, levels: 1},
			veritysetupCase{name: "2levels", blocks: 300, hash: "sha256", salt: testSalt(), nosb: nosb, levels: 2},
			veritysetupCase{name: "3levels", blocks: 16385, hash: "sha256", salt: testSalt(), nosb: nosb, levels: 3},
			veritysetupCase{name: "3levels-512", blocks: 300, dbs: 512, hbs: 512, hash: "sha256", salt: nil, nosb: nosb, levels: 3},
			veritysetupCase{name: "mixed-bs", blocks: 1000, dbs: 1024, hbs: 8192, hash: "sha256", salt: big[:256], nosb: nosb, levels: 2},
			veritysetupCase{name: "4levels-sha512", blocks: 5000, dbs: 512, hbs: 512, hash: "sha512", salt: []byte{1}, nosb: nosb, levels: 5},
			veritysetupCase{name: "sha1", blocks: 700, hash: "sha1", salt: testSalt()[:7], nosb: nosb, levels: 2},
			veritysetupCase{name: "sha3-256", blocks: 200, hash: "sha3-256", salt: testSalt(), nosb: nosb, levels: 2},
			veritysetupCase{name: "sha384", blocks: 200, hash: "sha384", salt: testSalt(), nosb: nosb, levels: 2},
			veritysetupCase{name: "one-block", blocks: 1, hash: "sha256", salt: testSalt(), nosb: nosb, levels: 0},
		)
	}
	uuid, _ := ParseUUID("0a1b2c3d-4e5f-4061-8273-9405a6b7c8d9")
	dir := t.TempDir()
	for _, c := range cases {
		name := fmt.Sprintf("%s/nosb=%v", c.name, c.nosb)
		t.Run(name, func(t *testing.T) {
			dbs := c.dbs
			if dbs == 0 {
				dbs = 4096
			}
			data := make([]byte, c.blocks*int(dbs))
			for i := range data {
				data[i] = byte(i*7 + i/int(dbs))
			}
			df := filepath.Join(dir, "data")
			hf := filepath.Join(dir, "hash")
			os.Remove(hf)
			if err := os.WriteFile(df, data, 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"format", df, hf, "--hash", c.hash, "--uuid", uuid.String(), "--salt", "-"}
			if len(c.salt) > 0 {
				args[len(args)-1] = hex.EncodeToString(c.salt)
			}
			if c.dbs != 0 {
				args = append(args, "--data-block-size", fmt.Sprint(c.dbs), "--hash-block-size", fmt.Sprint(c.hbs))
			}
			if c.nosb {
				args = append(args, "--no-superblock")
			}
			out, err := exec.Command(vs, args...).Output()
			if err != nil {
				t.Fatalf("veritysetup %v: %v", args, err)
			}
			want, err := os.ReadFile(hf)
			if err != nil {
				t.Fatal(err)
			}
			p := Params{Hash: c.hash, DataBlockSize: c.dbs, HashBlockSize: c.hbs, Salt: c.salt, UUID: uuid, NoSuperblock: c.nosb}
			res, got := format(t, data, p, 2)
			if res.Levels != c.levels {
				t.Errorf("levels %d, want %d", res.Levels, c.levels)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("hash file differs from veritysetup: %d bytes sha %s, want %d bytes sha %s", len(got), sha(got), len(want), sha(want))
			}
			if text := res.Info(hf).Text(); text != string(out) {
				t.Errorf("text differs:\n%s\nveritysetup:\n%s", text, out)
			}
			// veritysetup verify accepts our hash file.
			if err := os.WriteFile(hf, got, 0o600); err != nil {
				t.Fatal(err)
			}
			vargs := []string{"verify", df, hf, hex.EncodeToString(res.RootHash)}
			if c.nosb {
				vargs = append(vargs, "--no-superblock", "--hash", c.hash, "--salt", args[8])
				if c.dbs != 0 {
					vargs = append(vargs, "--data-block-size", fmt.Sprint(c.dbs), "--hash-block-size", fmt.Sprint(c.hbs))
				}
			}
			if out, err := exec.Command(vs, vargs...).CombinedOutput(); err != nil {
				t.Errorf("veritysetup %v: %v\n%s", vargs, err, out)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	data := make([]byte, 4096*3)
	for _, c := range []struct {
		name string
		size int
		p    Params
		want string
	}{
		{"size not multiple", 4096*2 + 100, Params{}, "not a multiple of the data block size 4096"},
		{"empty", 0, Params{}, "at least one"},
		{"salt too long", 4096, Params{Salt: make([]byte, 257)}, "salt is 257 bytes"},
		{"unknown hash", 4096, Params{Hash: "md4"}, "unknown hash algorithm \"md4\""},
		{"block size not power of two", 4096, Params{DataBlockSize: 3000}, "power of two"},
		{"block size too small", 4096, Params{HashBlockSize: 256}, "hash block size 256"},
		{"block size too big", 4096, Params{DataBlockSize: 1 << 20}, "data block size 1048576"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var w memWriter
			_, err := Format(ctx, bytes.NewReader(data[:c.size]), int64(c.size), &w, c.p)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if len(w.b) != 0 {
				t.Errorf("wrote %d bytes before failing", len(w.b))
			}
		})
	}
	if _, err := Format(ctx, bytes.NewReader(data[:4096]), 8192, &memWriter{}, Params{}); err == nil {
		t.Error("short data: no error")
	}
	var w memWriter
	_, err := Format(ctx, bytes.NewReader(data), int64(len(data)), &w, Params{Hash: "nope"})
	if !errors.Is(err, ErrUnknownHash) {
		t.Errorf("unknown hash: %v, want ErrUnknownHash", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	big := make([]byte, 8<<20)
	if _, err := Format(cctx, bytes.NewReader(big), int64(len(big)), &memWriter{}, Params{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
}

func TestVerifyDetectsCorruption(t *testing.T) {
	data := vectorData("tv5")
	p := Params{Salt: testSalt()}
	res, hb := format(t, data, p, 2)
	for _, off := range []int{0, 100, 600, 4096, len(hb) - 1} {
		bad := bytes.Clone(hb)
		bad[off] ^= 1
		if _, err := Verify(context.Background(), bytes.NewReader(data), int64(len(data)), bytes.NewReader(bad), p, res.RootHash); !errors.Is(err, ErrMismatch) {
			t.Errorf("hash byte %d flipped: %v, want ErrMismatch", off, err)
		}
	}
	bad := bytes.Clone(data)
	bad[5000] ^= 1
	if _, err := Verify(context.Background(), bytes.NewReader(bad), int64(len(bad)), bytes.NewReader(hb), p, res.RootHash); !errors.Is(err, ErrMismatch) {
		t.Errorf("data flipped: %v, want ErrMismatch", err)
	}
}

func TestSuperblockWire(t *testing.T) {
	if n := binary.Size(superblockWire{}); n != SuperblockSize {
		t.Fatalf("superblock wire size %d, want %d", n, SuperblockSize)
	}
	sb := Superblock{HashType: 1, UUID: UUID{1, 2, 3}, Algorithm: "sha256", DataBlockSize: 4096, HashBlockSize: 512, DataBlocks: 0x0102030405, Salt: []byte{9, 8, 7}}
	b, err := sb.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// Offsets from the format table (reproducible-tools.md §2.4).
	checks := []struct {
		off  int
		want []byte
	}{
		{0, []byte("verity\x00\x00")}, {8, []byte{1, 0, 0, 0}}, {12, []byte{1, 0, 0, 0}}, {16, []byte{1, 2, 3}},
		{32, []byte("sha256\x00")}, {64, []byte{0, 0x10, 0, 0}}, {68, []byte{0, 2, 0, 0}},
		{72, []byte{5, 4, 3, 2, 1, 0, 0, 0}}, {80, []byte{3, 0}}, {88, []byte{9, 8, 7, 0}},
	}
	for _, c := range checks {
		if !bytes.Equal(b[c.off:c.off+len(c.want)], c.want) {
			t.Errorf("offset %d: % x, want % x", c.off, b[c.off:c.off+len(c.want)], c.want)
		}
	}
	got, err := DecodeSuperblock(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Algorithm != sb.Algorithm || got.DataBlocks != sb.DataBlocks || !bytes.Equal(got.Salt, sb.Salt) || got.UUID != sb.UUID {
		t.Errorf("round trip: %+v, want %+v", got, sb)
	}
	b[0] = 'X'
	var fe *FormatError
	if _, err := DecodeSuperblock(b); !errors.As(err, &fe) || fe.Field != "signature" {
		t.Errorf("bad signature: %v", err)
	}
}

func TestInfoTextRoundTrip(t *testing.T) {
	res, _ := format(t, vectorData("tv5"), Params{Salt: testSalt(), NoSuperblock: true}, 2)
	info := res.Info("/dev/vda2")
	got, err := ParseText(strings.NewReader(info.Text()))
	if err != nil {
		t.Fatal(err)
	}
	if got != info {
		t.Errorf("ParseText(Text()) = %+v, want %+v", got, info)
	}
	want := `dm-mod.create="dm-verity,,,ro,0 1032 verity 1 /dev/vda1 /dev/vda2 4096 4096 129 0 sha256 1a3d283a79d078a88a83bb5edf159eabac639c85004814398e7133ef6838956b 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"`
	if arg := info.KernelArg("/dev/vda1", "/dev/vda2"); arg != want {
		t.Errorf("kernel arg\n%s\nwant\n%s", arg, want)
	}
	withSB, _ := format(t, vectorData("tv5"), Params{}, 1)
	if !strings.Contains(withSB.Info("h").KernelArg("a", "b"), " 129 1 sha256 ") || !strings.HasSuffix(withSB.Info("h").KernelArg("a", "b"), ` -"`) {
		t.Errorf("superblock kernel arg: %s", withSB.Info("h").KernelArg("a", "b"))
	}
	if _, err := ParseText(strings.NewReader("Root hash: \tab\n")); err == nil {
		t.Error("ParseText accepted a text without Data blocks")
	}
}

func TestDerive(t *testing.T) {
	a, b := DeriveSalt([]byte("x")), DeriveSalt([]byte("y"))
	if len(a) != 32 || bytes.Equal(a, b) {
		t.Errorf("salts %x %x", a, b)
	}
	u := DeriveUUID([]byte("x"))
	if u[6]>>4 != 8 || u[8]>>6 != 2 || u == DeriveUUID([]byte("y")) {
		t.Errorf("uuid %s", u)
	}
	if p, err := ParseUUID(u.String()); err != nil || p != u {
		t.Errorf("ParseUUID(%s) = %s, %v", u, p, err)
	}
	data := vectorData("tv3")[:9<<20+4096]
	s1, err := ContentSeed(context.Background(), bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 1
	s2, _ := ContentSeed(context.Background(), bytes.NewReader(data), int64(len(data)))
	if bytes.Equal(s1, s2) {
		t.Error("ContentSeed ignores the last byte")
	}
}

func FuzzDecode(f *testing.F) {
	sb := Superblock{HashType: 1, Algorithm: "sha256", DataBlockSize: 4096, HashBlockSize: 4096, DataBlocks: 256, Salt: testSalt()}
	b, _ := sb.MarshalBinary()
	f.Add(b)
	f.Add(make([]byte, 512))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := DecodeSuperblock(in)
		if err != nil {
			return
		}
		out, err := s.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded superblock does not encode: %v", err)
		}
		s2, err := DecodeSuperblock(out)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if s2.Algorithm != s.Algorithm || !bytes.Equal(s2.Salt, s.Salt) || s2.DataBlocks != s.DataBlocks {
			t.Fatalf("round trip changed the superblock: %+v vs %+v", s, s2)
		}
	})
}
