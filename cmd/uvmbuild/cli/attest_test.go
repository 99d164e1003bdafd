package cli

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/attest"
	"github.com/uvmbuild/uvmbuild/builder/record"
)

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = Main(t.Context(), args, strings.NewReader(""), &o, &e)
	return o.String(), e.String(), code
}

func writeKeys(t *testing.T, dir, name string, c elliptic.Curve) (keyFile, pubFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalECPrivateKey(k)
	pder, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	keyFile = filepath.Join(dir, name+".pem")
	pubFile = filepath.Join(dir, name+".pub.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
	os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), 0o644)
	return keyFile, pubFile
}

func measurementFile(t *testing.T, dir, name, ld string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, (&attest.Measurement{GuestSVN: "0", LaunchDigest: ld}).Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	ld1 = strings.Repeat("1f", 48)
	ld2 = strings.Repeat("2e", 48)
)

func TestEndorseAndCompare(t *testing.T) {
	dir := t.TempDir()
	key, pub := writeKeys(t, dir, "k", elliptic.P384())
	_, otherPub := writeKeys(t, dir, "other", elliptic.P384())
	m1 := measurementFile(t, dir, "a.cose", ld1)
	m1b := measurementFile(t, dir, "a2.cose", ld1)
	m2 := measurementFile(t, dir, "b.cose", ld2)
	end := filepath.Join(dir, "a.endorsement.cose")

	if _, e, code := runCLI(t, "endorse", "sign", "--key", key, m1, "-o", end); code != 0 {
		t.Fatalf("sign: %d %s", code, e)
	}
	out, e, code := runCLI(t, "endorse", "verify", "--pub", pub, end)
	if code != 0 || !strings.Contains(out, ld1) {
		t.Fatalf("verify: %d %s %s", code, out, e)
	}
	if _, e, code := runCLI(t, "endorse", "verify", "--pub", otherPub, end); code != ExitFailed || !strings.Contains(e, "signed by key") {
		t.Errorf("wrong key: exit %d %s", code, e)
	}
	data, _ := os.ReadFile(end)
	i := bytes.Index(data, []byte(ld1))
	data[i] ^= 1
	bad := filepath.Join(dir, "bad.cose")
	os.WriteFile(bad, data, 0o644)
	if _, e, code := runCLI(t, "endorse", "verify", "--pub", pub, bad); code != ExitFailed || !strings.Contains(e, "signature") {
		t.Errorf("tampered: exit %d %s", code, e)
	}

	// compare-measurement: JSON vs endorsement, same; different; corrupt.
	if out, e, code := runCLI(t, "compare-measurement", "--pub", pub, "--pub-b", pub, end, end); code != 0 || !strings.Contains(out, "same measurement") {
		t.Errorf("same endorsement: %d %s %s", code, out, e)
	}
	if _, _, code := runCLI(t, "compare-measurement", m1, m1b); code != 0 {
		t.Errorf("same json: %d", code)
	}
	if _, _, code := runCLI(t, "compare-measurement", "--pub", pub, end, m1); code != 0 {
		t.Errorf("verified endorsement vs json: %d", code)
	}
	if _, e, code := runCLI(t, "compare-measurement", "--pub", pub, m1, end); code != ExitFailed || !strings.Contains(e, "unsigned") {
		t.Errorf("--pub on an unsigned file: %d %s", code, e)
	}
	if _, e, code := runCLI(t, "compare-measurement", "--pub", otherPub, end, m1); code != ExitFailed {
		t.Errorf("wrong key: %d %s", code, e)
	}
	out, _, code = runCLI(t, "compare-measurement", m1, m2)
	if code != ExitDiffers || !strings.Contains(out, "- "+ld1) || !strings.Contains(out, "+ "+ld2) {
		t.Errorf("differs: %d %s", code, out)
	}
	if _, e, code := runCLI(t, "compare-measurement", "--pub", pub, bad, m1); code != ExitFailed {
		t.Errorf("corrupt endorsement: %d %s", code, e)
	}
	trunc := filepath.Join(dir, "trunc.cose")
	os.WriteFile(trunc, []byte(`{"x-ms-sevsnpvm-guestsvn": "0"`), 0o644)
	if _, e, code := runCLI(t, "compare-measurement", trunc, m1); code != ExitFailed {
		t.Errorf("truncated: %d %s", code, e)
	}
	if _, _, code := runCLI(t, "compare-measurement", m1); code != ExitUsage {
		t.Errorf("usage: %d", code)
	}

	// RVPS reference values.
	out, e, code = runCLI(t, "endorse", "rvps", m1, "--policy-digest", string(digest.FromString("p")))
	if code != 0 || !strings.Contains(out, `"type": "sample"`) {
		t.Errorf("rvps: %d %s %s", code, out, e)
	}
}

func fakeOut(t *testing.T, dir, ld, stamp string) string {
	t.Helper()
	out := filepath.Join(dir, "out")
	os.MkdirAll(out, 0o755)
	m := (&attest.Measurement{GuestSVN: "0", LaunchDigest: ld}).Marshal()
	os.WriteFile(filepath.Join(out, "igvm-measurement.cose"), m, 0o644)
	os.WriteFile(filepath.Join(out, "stamp.txt"), []byte(stamp), 0o644)
	b := &record.Build{SchemaVersion: record.SchemaVersion, Recipe: "t", Targets: []string{"all"}, Vars: map[string]string{},
		Actions: []record.Action{
			{ID: "stamp", Kind: "go/test", Key: digest.FromString("k"), Outputs: record.Manifest{Entries: []record.Entry{{Path: "stamp.txt", Type: "file", Mode: 0o644, Digest: digest.FromString(stamp), Size: int64(len(stamp))}}}},
			{ID: "igvm", Kind: "go/igvm", Key: digest.FromString("k2" + stamp), Outputs: record.Manifest{Entries: []record.Entry{{Path: "igvm-measurement.cose", Type: "file", Mode: 0o644, Digest: digest.FromBytes(m), Size: int64(len(m))}}}},
		},
		Artifacts: []record.Artifact{
			{Name: "igvm-measurement.cose", Step: "igvm", Type: "file", Digest: digest.FromBytes(m), Size: int64(len(m))},
			{Name: "stamp.txt", Step: "stamp", Type: "file", Digest: digest.FromString(stamp), Size: int64(len(stamp))},
		},
		Record: map[string]string{"policy.digest": string(digest.FromString("policy"))}}
	if err := record.Write(filepath.Join(out, record.FileName), b); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestExpectAndProvenanceAndDiff(t *testing.T) {
	dir := t.TempDir()
	a := fakeOut(t, filepath.Join(dir, "a"), ld1, "built at 10:00\n")
	b := fakeOut(t, filepath.Join(dir, "b"), ld2, "built at 11:00\n")
	var w bytes.Buffer
	if err := CheckExpect(&w, a, filepath.Join(a, "igvm-measurement.cose"), ""); err != nil {
		t.Fatalf("expect same: %v", err)
	}
	w.Reset()
	if err := CheckExpect(&w, b, filepath.Join(a, "igvm-measurement.cose"), ""); exitCode(err) != ExitDiffers || !strings.Contains(w.String(), ld2) {
		t.Fatalf("expect different: %v %s", err, w.String())
	}
	if err := CheckExpect(&w, b, filepath.Join(dir, "missing"), ""); exitCode(err) != ExitFailed {
		t.Fatalf("expect missing file: %v", err)
	}

	out, e, code := runCLI(t, "provenance", "--out", a)
	if code != 0 {
		t.Fatalf("provenance: %d %s", code, e)
	}
	out, e, code = runCLI(t, "provenance", "--check", filepath.Join(a, attest.ProvenanceFile))
	if code != 0 || !strings.Contains(out, "kata-containers-igvm.img#snp-launch-digest sha384:"+ld1) {
		t.Fatalf("provenance check: %d %s %s", code, out, e)
	}

	out, e, code = runCLI(t, "diff", a, b)
	if code != ExitDiffers || !strings.Contains(out, "FIRST DIVERGING ACTION stamp") || !strings.Contains(out, "-built at 10:00") {
		t.Fatalf("diff out dirs: %d\n%s\n%s", code, out, e)
	}
	if _, _, code := runCLI(t, "diff", a, a); code != 0 {
		t.Errorf("diff same: %d", code)
	}
	if _, _, code := runCLI(t, "diff", a, filepath.Join(a, "stamp.txt")); code != ExitFailed {
		t.Errorf("diff dir vs file: %d", code)
	}
	// An unreadable build record is bad input, not a difference.
	os.WriteFile(filepath.Join(b, record.FileName), []byte(`{"schemaVersion": "other"}`), 0o644)
	if _, e, code := runCLI(t, "diff", a, b); code != ExitFailed || !strings.Contains(e, "schemaVersion") {
		t.Errorf("diff with a bad record: %d %s", code, e)
	}
	if _, e, code := runCLI(t, "diff", filepath.Join(a, record.FileName), filepath.Join(b, record.FileName)); code != ExitFailed {
		t.Errorf("diff of build.json files with a bad one: %d %s", code, e)
	}
}
