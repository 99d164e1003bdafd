package graph

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/uvmbuild/uvmbuild/builder/atomicfile"
)

// historyEntry is the key material of the last build of one step ID, kept
// so that `plan` can explain a miss by what changed.
type historyEntry struct {
	ID       string        `json:"id"`
	Key      digest.Digest `json:"key"`
	Material historyKM     `json:"material"`
}

// historyKM is KeyMaterial with input sources.
type historyKM struct {
	Schema  string          `json:"schema"`
	Kind    string          `json:"kind"`
	Version string          `json:"version"`
	Image   digest.Digest   `json:"image,omitempty"`
	Params  json.RawMessage `json:"params"`
	Inputs  []keyInputJSON  `json:"inputs"`
	Outputs []string        `json:"outputs"`
}

func toHistory(km *KeyMaterial) historyKM {
	h := historyKM{Schema: km.Schema, Kind: km.Kind, Version: km.Version, Image: km.Image, Params: km.Params, Outputs: km.Outputs}
	for _, in := range km.Inputs {
		h.Inputs = append(h.Inputs, keyInputJSON(in))
	}
	return h
}

func fromHistory(h historyKM) *KeyMaterial {
	km := &KeyMaterial{Schema: h.Schema, Kind: h.Kind, Version: h.Version, Image: h.Image, Params: h.Params, Outputs: h.Outputs}
	for _, in := range h.Inputs {
		km.Inputs = append(km.Inputs, KeyInput(in))
	}
	return km
}

func (b *builder) historyPath(id string) string {
	sum := sha256.Sum256([]byte(id))
	return filepath.Join(b.opts.WorkDir, "history", hex.EncodeToString(sum[:16])+".json")
}

// readHistory returns the last recorded key material of step id, or nil.
func (b *builder) readHistory(id string) *historyEntry {
	data, err := os.ReadFile(b.historyPath(id))
	if err != nil {
		return nil
	}
	var h historyEntry
	if json.Unmarshal(data, &h) != nil || h.ID != id {
		return nil
	}
	return &h
}

// writeHistory records n's key material unless it is already the latest.
func (b *builder) writeHistory(n *node) error {
	h := historyEntry{ID: n.step.ID, Key: n.key, Material: toHistory(n.km)}
	// Without HTML escaping, so that the stored params stay byte-equal to
	// their canonical form.
	data, err := marshalNoEscape(h)
	if err != nil {
		return err
	}
	p := b.historyPath(n.step.ID)
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	// No fsync: history only explains rebuilds, and a lost entry costs
	// an explanation, never a wrong result.
	return atomicfile.WriteFile(p, data, 0o644, atomicfile.NoSync())
}
