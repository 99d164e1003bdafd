package attest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/uvmbuild/uvmbuild/builder/record"
)

const ld = "1fef74228bd46b298934a70611275adcbf4892663486443a98d4751054b8bc303ba6e2c27a7e8d1ca74f4d9aa751438a"

func TestMeasurementBytes(t *testing.T) {
	m := &Measurement{GuestSVN: "3", LaunchDigest: ld}
	want := "{\n  \"x-ms-sevsnpvm-guestsvn\": \"3\",\n  \"x-ms-sevsnpvm-launchmeasurement\": \"" + ld + "\"\n}"
	if got := string(m.Marshal()); got != want {
		t.Fatalf("Marshal:\n%s\nwant\n%s", got, want)
	}
	back, err := ParseMeasurement(m.Marshal(), "m")
	if err != nil || *back != *m {
		t.Fatalf("round trip: %v %+v", err, back)
	}
	// Python's ensure_ascii escapes everything outside ' '..'~', DEL too.
	odd := (&Measurement{GuestSVN: "a\"\\\x01é😀</>\x7f", LaunchDigest: ld}).Marshal()
	if want := `"a\"\\\u0001\u00e9\ud83d\ude00</>\u007f"`; !bytes.Contains(odd, []byte(want)) {
		t.Errorf("Marshal: %s, want the SVN as %s", odd, want)
	}
	for _, bad := range []string{`{"x-ms-sevsnpvm-guestsvn":"0"}`, `{"x-ms-sevsnpvm-guestsvn":"0","x-ms-sevsnpvm-launchmeasurement":"ABCD"}`,
		`{"x-ms-sevsnpvm-guestsvn":0,"x-ms-sevsnpvm-launchmeasurement":"` + ld + `"}`, `not json`,
		`{"x-ms-sevsnpvm-guestsvn":"0","x-ms-sevsnpvm-launchmeasurement":"` + ld + `"} trailing`} {
		if _, err := ParseMeasurement([]byte(bad), "bad"); !errors.Is(err, ErrBadInput) {
			t.Errorf("ParseMeasurement(%s): %v, want ErrBadInput", bad, err)
		}
	}
}

// TestMeasurementVectors re-encodes igvmgen's own measurement files.
func TestMeasurementVectors(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "..", "shared", "vectors", "igvm", "cases", "*", "ref.json"))
	if len(files) == 0 {
		t.Skip("igvmgen vectors (../shared/vectors/igvm/cases) not available: skipping")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ParseMeasurement(data, f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Marshal(), data) {
			t.Errorf("%s: re-encoded bytes differ:\n%q\n%q", f, m.Marshal(), data)
		}
	}
}

func genKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestEndorsement(t *testing.T) {
	payload := (&Measurement{GuestSVN: "0", LaunchDigest: ld}).Marshal()
	for _, c := range []elliptic.Curve{elliptic.P384(), elliptic.P256()} {
		key := genKey(t, c)
		// Keys go through PEM as the CLI reads them.
		der, _ := x509.MarshalECPrivateKey(key)
		signer, err := ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
		if err != nil {
			t.Fatal(err)
		}
		pder, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
		pub, err := ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}))
		if err != nil {
			t.Fatal(err)
		}
		end, err := Endorse(rand.Reader, payload, signer)
		if err != nil {
			t.Fatal(err)
		}
		got, err := VerifyEndorsement(end, pub)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("%s: verify: %v", c.Params().Name, err)
		}
		m, src, err := DecodeMeasurement(end, "end", pub)
		if err != nil || !src.Verified || m.LaunchDigest != ld {
			t.Fatalf("DecodeMeasurement: %v %+v", err, src)
		}
		// Every one-byte change is refused, as a bad signature or as a
		// malformed message, never accepted.
		for i := range end {
			mod := bytes.Clone(end)
			mod[i] ^= 0x01
			if _, err := VerifyEndorsement(mod, pub); err == nil {
				t.Fatalf("%s: endorsement with byte %d changed verifies", c.Params().Name, i)
			} else if !errors.Is(err, ErrSignature) && !errors.Is(err, ErrBadInput) {
				t.Fatalf("byte %d: error %v is neither ErrSignature nor ErrBadInput", i, err)
			}
		}
		// The payload byte specifically is a signature failure.
		i := bytes.Index(end, []byte(ld))
		mod := bytes.Clone(end)
		mod[i] ^= 0x01
		if _, err := VerifyEndorsement(mod, pub); !errors.Is(err, ErrSignature) {
			t.Errorf("payload change: %v, want ErrSignature", err)
		}
		// Wrong key of the same curve: ErrSignature naming both key IDs.
		other := genKey(t, c)
		if _, err := VerifyEndorsement(end, &other.PublicKey); !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "signed by key") {
			t.Errorf("wrong key: %v", err)
		}
	}
	// Wrong curve and non-ECDSA input.
	if _, err := Endorse(rand.Reader, payload, genKey(t, elliptic.P224())); !errors.Is(err, ErrBadInput) {
		t.Errorf("P-224: %v", err)
	}
	if _, err := VerifyEndorsement([]byte("garbage"), &genKey(t, elliptic.P384()).PublicKey); !errors.Is(err, ErrBadInput) {
		t.Errorf("garbage: %v", err)
	}
}

func TestRVPS(t *testing.T) {
	pol := digest.FromString("policy")
	msg, err := RVPSMessage(ReferenceValues{LaunchMeasurements: []string{ld, ld}, PolicyDigests: []string{string(pol)}})
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Version, Type, Payload string }
	if err := json.Unmarshal(msg, &m); err != nil || m.Version != "0.1.0" || m.Type != "sample" {
		t.Fatalf("message %s: %v", msg, err)
	}
	raw, err := base64.StdEncoding.DecodeString(m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var sample map[string][]string
	if err := json.Unmarshal(raw, &sample); err != nil {
		t.Fatal(err)
	}
	if len(sample[RVLaunchMeasurement]) != 1 || sample[RVLaunchMeasurement][0] != ld || sample[RVHostData][0] != pol.Encoded() {
		t.Fatalf("sample %v", sample)
	}
	if _, err := RVPSMessage(ReferenceValues{LaunchMeasurements: []string{"xyz"}}); !errors.Is(err, ErrBadInput) {
		t.Errorf("bad digest: %v", err)
	}
}

func sampleRecord() *record.Build {
	return &record.Build{
		SchemaVersion: record.SchemaVersion, Recipe: "nodebuilder", Targets: []string{"all-confpods"},
		Vars: map[string]string{"IGVM_SVN": "0"},
		Actions: []record.Action{
			{ID: "kata-src", Kind: "go/source", Key: digest.FromString("k0"),
				Inputs: []record.Input{{Name: "src", Digest: digest.FromString("tree"), Source: "dir"}}},
			{ID: "agent", Kind: "container", Image: digest.FromString("builder-image"), Key: digest.FromString("k1"),
				Inputs: []record.Input{{Name: "lock", Digest: digest.FromString("lock"), Source: "file"}, {Name: "src", Digest: digest.FromString("tree"), Source: "step:kata-src"}}},
		},
		Artifacts: []record.Artifact{
			{Name: "igvm-measurement.cose", Step: "igvm", Type: "file", Digest: digest.FromString("m"), Size: 100},
			{Name: "kata-containers-igvm.img", Step: "igvm", Type: "file", Digest: digest.FromString("igvm"), Size: 5},
			{Name: "agent-install", Step: "agent", Type: "dir", Digest: digest.FromString("t")},
		},
		Record: map[string]string{"policy.digest": string(digest.FromString("p")), "iasl.version": "20200925"},
	}
}

func TestProvenance(t *testing.T) {
	b := sampleRecord()
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "igvm-measurement.cose"), (&Measurement{GuestSVN: "0", LaunchDigest: ld}).Marshal(), 0o644)
	os.WriteFile(filepath.Join(out, "kata-containers-igvm.img"), []byte("igvm!"), 0o644)
	if err := WriteProvenance(b, out, ProvenanceOptions{BuilderVersion: map[string]string{"uvmbuild": "test"}}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(out, ProvenanceFile))
	if err != nil {
		t.Fatal(err)
	}
	st, pred, err := ParseStatement(data)
	if err != nil {
		t.Fatalf("validation: %v\n%s", err, data)
	}
	names := map[string]map[string]string{}
	for _, s := range st.Subject {
		names[s.Name] = s.Digest
	}
	if names["kata-containers-igvm.img#snp-launch-digest"]["sha384"] != ld || names["kata-containers-igvm.img"]["sha256"] != digest.FromString("igvm").Encoded() {
		t.Errorf("subjects %v", names)
	}
	deps := map[string]bool{}
	for _, d := range pred.BuildDefinition.ResolvedDependencies {
		deps[d.Name] = true
	}
	for _, want := range []string{"src", "lock", "policy.digest", "image:container@" + string(digest.FromString("builder-image")), "kata-src"} {
		if !deps[want] {
			t.Errorf("resolvedDependencies lack %q: %v", want, deps)
		}
	}
	if len(deps) != 5 {
		t.Errorf("resolvedDependencies %v", deps)
	}
	if v := pred.BuildDefinition.InternalParameters.Fields["iasl.version"].GetStringValue(); v != "20200925" {
		t.Errorf("iasl version %q", v)
	}
	// Deterministic: the same record gives the same bytes.
	st2, _ := Provenance(b, ProvenanceOptions{BuilderVersion: map[string]string{"uvmbuild": "test"}, LaunchDigests: map[string]string{"kata-containers-igvm.img": ld}})
	again, _ := MarshalStatement(st2)
	if !bytes.Equal(again, data) {
		t.Errorf("provenance not deterministic")
	}
	// A statement without subjects is refused.
	if _, _, err := ParseStatement([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x","predicate":{}}`)); !errors.Is(err, ErrBadInput) {
		t.Errorf("invalid statement accepted: %v", err)
	}
}

// TestParsePrivateKeyWithParameters reads the key form `openssl ecparam
// -genkey` writes: an "EC PARAMETERS" block, then the key.
func TestParsePrivateKeyWithParameters(t *testing.T) {
	key := genKey(t, elliptic.P384())
	der, _ := x509.MarshalECPrivateKey(key)
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 5, 0x2b, 0x81, 4, 0, 0x22}})
	signer, err := ParsePrivateKey(append(params, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})...))
	if err != nil {
		t.Fatal(err)
	}
	if !key.Equal(signer) {
		t.Error("parsed key differs")
	}
	if _, err := ParsePrivateKey(params); !errors.Is(err, ErrBadInput) {
		t.Errorf("parameters alone: %v, want ErrBadInput", err)
	}
}
