package attest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf16"
)

// Measurement file keys, as igvmgen writes them.
const (
	KeyGuestSVN     = "x-ms-sevsnpvm-guestsvn"
	KeyLaunchDigest = "x-ms-sevsnpvm-launchmeasurement"
)

// ErrBadInput marks input that is not what it claims to be: a corrupt
// measurement file or endorsement, or a key of the wrong kind. Callers
// branch on it (and on ErrSignature) to tell bad input from "differs".
var ErrBadInput = errors.New("bad input")

// Measurement is the content of a measurement file.
type Measurement struct {
	// GuestSVN is igvmgen's -svn string, kept verbatim.
	GuestSVN string
	// LaunchDigest is the SEV-SNP launch digest, 96 lowercase hex digits.
	LaunchDigest string
}

// ParseMeasurement reads igvmgen's measurement JSON; name is used in
// errors. Both keys are required, the digest must be 48 bytes of hex, and
// unknown keys are rejected so a typo cannot pass for a match.
func ParseMeasurement(data []byte, name string) (*Measurement, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: measurement file %s: %v", ErrBadInput, name, err)
	}
	var out Measurement
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%w: measurement file %s: %q is %T, want a string", ErrBadInput, name, k, v)
		}
		switch k {
		case KeyGuestSVN:
			out.GuestSVN = s
		case KeyLaunchDigest:
			out.LaunchDigest = s
		default:
			return nil, fmt.Errorf("%w: measurement file %s: unknown key %q", ErrBadInput, name, k)
		}
	}
	if _, ok := m[KeyGuestSVN]; !ok {
		return nil, fmt.Errorf("%w: measurement file %s: missing %q", ErrBadInput, name, KeyGuestSVN)
	}
	d, err := hex.DecodeString(out.LaunchDigest)
	if err != nil || len(d) != 48 || strings.ToLower(out.LaunchDigest) != out.LaunchDigest {
		return nil, fmt.Errorf("%w: measurement file %s: %q is %q, want 96 lowercase hex digits", ErrBadInput, name, KeyLaunchDigest, out.LaunchDigest)
	}
	return &out, nil
}

// Marshal returns igvmgen's exact bytes (Python json.dump, indent=2,
// ensure_ascii, no trailing newline).
func (m *Measurement) Marshal() []byte {
	return []byte("{\n  \"" + KeyGuestSVN + "\": " + pyQuote(m.GuestSVN) + ",\n  \"" + KeyLaunchDigest + "\": " + pyQuote(m.LaunchDigest) + "\n}")
}

// pyQuote is Python's json string encoding with ensure_ascii=True.
func pyQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20:
				fmt.Fprintf(&b, `\u%04x`, r)
			case r < 0x80:
				b.WriteRune(r)
			case r > 0xffff:
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
			default:
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Difference is one field that differs between two measurements.
type Difference struct {
	Field, A, B string
}

// Compare lists the fields in which a and b differ, the launch digest
// first.
func Compare(a, b *Measurement) []Difference {
	var d []Difference
	if a.LaunchDigest != b.LaunchDigest {
		d = append(d, Difference{KeyLaunchDigest, a.LaunchDigest, b.LaunchDigest})
	}
	if a.GuestSVN != b.GuestSVN {
		d = append(d, Difference{KeyGuestSVN, a.GuestSVN, b.GuestSVN})
	}
	return d
}

// Source says where a measurement was read from.
type Source struct {
	// Endorsed is true when the file was a COSE_Sign1 endorsement.
	Endorsed bool
	// Verified is true when its signature was checked against a key.
	Verified bool
}

// ReadMeasurement reads a measurement from a file holding either the
// igvmgen JSON or a COSE_Sign1 endorsement of it. With pub set, an
// endorsement's signature must verify against it (a plain JSON file is
// then refused); without, the payload is read unverified.
func ReadMeasurement(path string, pub any) (*Measurement, Source, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Source{}, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	return DecodeMeasurement(data, path, pub)
}

// DecodeMeasurement is ReadMeasurement over bytes; name is used in errors.
func DecodeMeasurement(data []byte, name string, pub any) (*Measurement, Source, error) {
	trim := bytes.TrimLeft(data, " \t\r\n")
	if len(trim) > 0 && trim[0] == '{' {
		if pub != nil {
			return nil, Source{}, fmt.Errorf("%w: %s is an unsigned measurement file, but a public key was given to verify an endorsement", ErrBadInput, name)
		}
		m, err := ParseMeasurement(data, name)
		return m, Source{}, err
	}
	var payload []byte
	var err error
	src := Source{Endorsed: true}
	if pub != nil {
		payload, err = VerifyEndorsement(data, pub)
		src.Verified = true
	} else {
		payload, err = EndorsementPayload(data)
	}
	if err != nil {
		return nil, Source{}, fmt.Errorf("%s: %w", name, err)
	}
	m, err := ParseMeasurement(payload, name+" (endorsement payload)")
	return m, src, err
}
