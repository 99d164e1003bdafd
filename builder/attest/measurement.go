package attest

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/uvmbuild/uvmbuild/builder/igvmgen"
)

// Measurement file keys, as igvmgen writes them.
const (
	KeyGuestSVN     = igvmgen.KeySVN
	KeyLaunchDigest = igvmgen.KeyMeasurement
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

// ParseMeasurement reads igvmgen's measurement JSON strictly (see
// igvmgen.ParseMeasurement); name is used in errors, which wrap
// ErrBadInput.
func ParseMeasurement(data []byte, name string) (*Measurement, error) {
	m, err := igvmgen.ParseMeasurement(name, data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	return &Measurement{GuestSVN: m.SVN, LaunchDigest: m.LaunchMeasurement}, nil
}

// Marshal returns igvmgen's exact bytes (Python json.dump, indent=2,
// ensure_ascii, no trailing newline).
func (m *Measurement) Marshal() []byte {
	return igvmgen.MarshalMeasurement(igvmgen.Measurement{SVN: m.GuestSVN, LaunchMeasurement: m.LaunchDigest})
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
		return nil, Source{}, fmt.Errorf("%w: %w", ErrBadInput, err)
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
