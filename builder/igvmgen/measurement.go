package igvmgen

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf16"
)

// Measurement is the content of igvmgen's -measurement_file.
type Measurement struct {
	// SVN is the -svn string, copied verbatim (igvmgen does not validate it).
	SVN string
	// LaunchMeasurement is the launch digest as 96 lowercase hex digits.
	LaunchMeasurement string
}

// JSON keys, in igvmgen's order.
const (
	KeySVN         = "x-ms-sevsnpvm-guestsvn"
	KeyMeasurement = "x-ms-sevsnpvm-launchmeasurement"
)

// MarshalMeasurement returns the measurement file exactly as igvmgen writes
// it: Python json.dump(indent=2, ensure_ascii=True), no trailing newline.
func MarshalMeasurement(m Measurement) []byte {
	var b bytes.Buffer
	b.WriteString("{\n  ")
	pyString(&b, KeySVN)
	b.WriteString(": ")
	pyString(&b, m.SVN)
	b.WriteString(",\n  ")
	pyString(&b, KeyMeasurement)
	b.WriteString(": ")
	pyString(&b, m.LaunchMeasurement)
	b.WriteString("\n}")
	return b.Bytes()
}

// pyString writes s as Python's json module does with ensure_ascii=True.
// Invalid UTF-8 bytes are written as U+FFFD.
func pyString(b *bytes.Buffer, s string) {
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
			case r < 0x20 || (r >= 0x7F && r <= 0xFFFF):
				fmt.Fprintf(b, `\u%04x`, r)
			case r > 0xFFFF:
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// ParseMeasurement reads a measurement file; name is used in errors. It
// is strict, so that a typo cannot pass for a match: one JSON object with
// exactly the two keys, both strings, the digest 96 lowercase hex digits.
func ParseMeasurement(name string, data []byte) (Measurement, error) {
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return Measurement{}, fmt.Errorf("measurement file %s: %w", name, err)
	}
	var m Measurement
	for k, v := range raw {
		s, ok := v.(string)
		if !ok {
			return Measurement{}, fmt.Errorf("measurement file %s: %q is %T, want a string", name, k, v)
		}
		switch k {
		case KeySVN:
			m.SVN = s
		case KeyMeasurement:
			m.LaunchMeasurement = s
		default:
			return Measurement{}, fmt.Errorf("measurement file %s: unknown key %q", name, k)
		}
	}
	if _, ok := raw[KeySVN]; !ok {
		return Measurement{}, fmt.Errorf("measurement file %s: missing %q", name, KeySVN)
	}
	ld := m.LaunchMeasurement
	if d, err := hex.DecodeString(ld); err != nil || len(d) != 48 || strings.ToLower(ld) != ld {
		return Measurement{}, fmt.Errorf("measurement file %s: %q is %q, want 96 lowercase hex digits", name, KeyMeasurement, ld)
	}
	return m, nil
}
