package actions

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/verity"
)

// VerityKind is the Spec.Kind of dm-verity steps.
const VerityKind = "go/verity"

// verityVersion is bumped when the bytes a verity step writes could change
// for the same params and input (builder/verity's output included).
const verityVersion = "1"

// VerityParams describe a dm-verity format of the step's "data" input.
type VerityParams struct {
	// Hash is the algorithm ("" = sha256).
	Hash string `json:"hash,omitempty"`
	// DataBlockSize and HashBlockSize default to 4096.
	DataBlockSize uint32 `json:"data_block_size,omitempty"`
	HashBlockSize uint32 `json:"hash_block_size,omitempty"`
	// Salt is hex, "-" for none, "" to derive it from the data.
	Salt string `json:"salt,omitempty"`
	// UUID pins the superblock UUID ("" = derived from the data).
	UUID string `json:"uuid,omitempty"`
	// NoSuperblock selects the kernelinit layout.
	NoSuperblock bool `json:"no_superblock,omitempty"`
}

// VeritySpec returns the Spec of a verity step. The step has one input,
// "data" (a file whose size is a multiple of the data block size), and
// writes any of "hash.img" (the hash device), "root_hash.txt" (veritysetup's
// report) and "verity.json" (its JSON form) that it declares as Outputs.
func VeritySpec(p VerityParams) graph.Spec {
	params := map[string]any{"no_superblock": p.NoSuperblock}
	if p.Hash != "" {
		params["hash"] = p.Hash
	}
	if p.DataBlockSize != 0 {
		params["data_block_size"] = p.DataBlockSize
	}
	if p.HashBlockSize != 0 {
		params["hash_block_size"] = p.HashBlockSize
	}
	if p.Salt != "" {
		params["salt"] = p.Salt
	}
	if p.UUID != "" {
		params["uuid"] = p.UUID
	}
	return graph.Spec{Kind: VerityKind, Version: verityVersion, Params: params}
}

// Verity runs verity steps.
type Verity struct{}

var _ graph.Executor = Verity{}

// Run implements graph.Executor.
func (Verity) Run(ctx context.Context, x *graph.Exec) error {
	var p VerityParams
	if err := decodeParams(x.Step.Spec, &p); err != nil {
		return err
	}
	in, ok := x.Inputs["data"]
	if !ok {
		return errors.New(`verity step: no input "data"`)
	}
	vp := verity.Params{Hash: p.Hash, DataBlockSize: p.DataBlockSize, HashBlockSize: p.HashBlockSize, NoSuperblock: p.NoSuperblock}
	if p.Salt != "" && p.Salt != "-" {
		s, err := hex.DecodeString(p.Salt)
		if err != nil {
			return fmt.Errorf("verity step: salt %q: not hex: %w", p.Salt, err)
		}
		vp.Salt = s
	}
	if p.UUID != "" {
		u, err := verity.ParseUUID(p.UUID)
		if err != nil {
			return fmt.Errorf("verity step: %w", err)
		}
		vp.UUID = u
	}
	f, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("verity step: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if _, _, _, err := verity.Size(vp, st.Size()); err != nil {
		return fmt.Errorf("verity step: data: %w", err)
	}
	if p.Salt == "" || (p.UUID == "" && !p.NoSuperblock) {
		seed, err := verity.ContentSeed(ctx, f, st.Size())
		if err != nil {
			return fmt.Errorf("verity step: %w", err)
		}
		if p.Salt == "" {
			vp.Salt = verity.DeriveSalt(seed)
		}
		if p.UUID == "" {
			vp.UUID = verity.DeriveUUID(seed)
		}
	}
	hashPath := filepath.Join(x.TempDir, "hash.img")
	if declared(x.Step, "hash.img") {
		hashPath = filepath.Join(x.OutDir, "hash.img")
	}
	hf, err := os.OpenFile(hashPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	res, err := verity.FormatFile(ctx, f, 0, st.Size(), hf, vp)
	if cerr := hf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("verity step: %w", err)
	}
	return writeVerityInfo(x, res.Info("hash.img"))
}

// writeVerityInfo writes the declared root_hash.txt and verity.json.
func writeVerityInfo(x *graph.Exec, info verity.Info) error {
	if declared(x.Step, "root_hash.txt") {
		if err := os.WriteFile(filepath.Join(x.OutDir, "root_hash.txt"), []byte(info.Text()), 0o644); err != nil {
			return err
		}
	}
	if declared(x.Step, "verity.json") {
		b, err := info.JSON()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(x.OutDir, "verity.json"), b, 0o644); err != nil {
			return err
		}
	}
	if x.Log != nil {
		fmt.Fprintf(x.Log, "root hash %s, salt %s, %d data blocks\n", info.RootHash, info.Salt, info.DataBlocks)
	}
	return nil
}

func declared(s *graph.Step, name string) bool {
	for _, o := range s.Outputs {
		if o == name {
			return true
		}
	}
	return false
}
