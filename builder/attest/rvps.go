package attest

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
)

// Reference value names as Trustee's attestation policies query them
// (query_reference_value in its default SNP policy).
const (
	// RVLaunchMeasurement holds accepted SEV-SNP launch digests (hex).
	RVLaunchMeasurement = "snp_launch_measurement"
	// RVHostData holds accepted SNP HOST_DATA values: the Kata shim sets
	// HOST_DATA to the SHA-256 of the pod's agent policy, so this is the
	// policy digest (hex).
	RVHostData = "snp_host_data"
)

// ReferenceValues are what a build hands to Trustee.
type ReferenceValues struct {
	// LaunchMeasurements are the accepted launch digests (96 hex digits).
	LaunchMeasurements []string
	// PolicyDigests are the accepted agent policy digests (64 hex digits,
	// optionally prefixed "sha256:").
	PolicyDigests []string
}

// RVPSMessage returns the reference values as an RVPS registration
// message of type "sample" (version 0.1.0): the payload is the base64 of
// a JSON object mapping each reference value name to its accepted values.
// The output is deterministic (sorted, de-duplicated values).
func RVPSMessage(rv ReferenceValues) ([]byte, error) {
	sample := map[string][]string{}
	for _, m := range rv.LaunchMeasurements {
		if d, err := hex.DecodeString(m); err != nil || len(d) != 48 {
			return nil, fmt.Errorf("%w: launch measurement %q, want 96 hex digits", ErrBadInput, m)
		}
		sample[RVLaunchMeasurement] = append(sample[RVLaunchMeasurement], m)
	}
	for _, p := range rv.PolicyDigests {
		if len(p) > 7 && p[:7] == "sha256:" {
			p = p[7:]
		}
		if d, err := hex.DecodeString(p); err != nil || len(d) != 32 {
			return nil, fmt.Errorf("%w: policy digest %q, want a SHA-256 (64 hex digits)", ErrBadInput, p)
		}
		sample[RVHostData] = append(sample[RVHostData], p)
	}
	if len(sample[RVLaunchMeasurement]) == 0 {
		return nil, fmt.Errorf("%w: no launch measurement for the reference values", ErrBadInput)
	}
	for k, v := range sample {
		slices.Sort(v)
		sample[k] = slices.Compact(v)
	}
	payload, err := json.Marshal(sample) // map keys are sorted
	if err != nil {
		return nil, err
	}
	msg := struct {
		Version string `json:"version"`
		Type    string `json:"type"`
		Payload string `json:"payload"`
	}{"0.1.0", "sample", base64.StdEncoding.EncodeToString(payload)}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(msg); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
