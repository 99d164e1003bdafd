package igvmgen

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"os"

	"github.com/uvmbuild/uvmbuild/builder/acpi"
	"github.com/uvmbuild/uvmbuild/builder/acpi/clh"
	"github.com/uvmbuild/uvmbuild/builder/snp"
)

// ACPISource says where the ACPI tables come from. At most one of Dir and
// PagesFile is set; with neither, uvmbuild's own Cloud Hypervisor set
// (package acpi/clh) is compiled.
type ACPISource struct {
	// Dir is a directory of iasl sources (*.dsl), igvmgen's -acpi_dir.
	Dir string
	// PagesFile holds pre-built pages in the flat form (u64 GPA + 4096 bytes).
	PagesFile string
}

// LoadACPI reads or compiles the ACPI tables. c compiles DSL sources (the
// iasl binary in practice, package acpi/iasl); it is not used for PagesFile.
func LoadACPI(ctx context.Context, src ACPISource, c acpi.Compiler) (*acpi.Tables, error) {
	switch {
	case src.Dir != "" && src.PagesFile != "":
		return nil, fmt.Errorf("ACPI: give a DSL directory (%s) or a pages file (%s), not both", src.Dir, src.PagesFile)
	case src.PagesFile != "":
		b, err := os.ReadFile(src.PagesFile)
		if err != nil {
			return nil, fmt.Errorf("ACPI pages file: %w", err)
		}
		return acpi.ParseFlat(src.PagesFile, b)
	case src.Dir != "":
		st, err := os.Stat(src.Dir)
		if err != nil {
			return nil, fmt.Errorf("ACPI directory: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("ACPI directory %s: not a directory", src.Dir)
		}
		return acpi.FromDSL(ctx, src.Dir, os.DirFS(src.Dir), c)
	default:
		return acpi.FromDSL(ctx, "builtin:clh", clh.Sources(), c)
	}
}

// LoadIDKey reads a P-384 private key (SEC1 or PKCS#8 PEM). An empty path
// returns nil: Generate then uses snp.DefaultKey.
func LoadIDKey(path string) (*ecdsa.PrivateKey, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ID key: %w", err)
	}
	return snp.ParseKey(path, b)
}
