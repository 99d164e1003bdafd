package actions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/uvmbuild/uvmbuild/builder/acpi/clh"
	"github.com/uvmbuild/uvmbuild/builder/acpi/iasl"
	"github.com/uvmbuild/uvmbuild/builder/atomicfile"
	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/igvmgen"
)

// IGVMKind is the Spec.Kind of IGVM steps (native Go, builder/igvmgen).
const IGVMKind = "go/igvm"

// igvmVersion is bumped whenever the bytes an IGVM step writes could change
// for the same spec and inputs (generator, ACPI handling, JSON format).
const igvmVersion = "1"

// ACPI sources of an IGVM step.
const (
	// ACPIBuiltinCLH compiles uvmbuild's own Cloud Hypervisor tables
	// (builder/acpi/clh); their content digest is in the key.
	ACPIBuiltinCLH = "builtin-clh"
	// ACPIDir compiles the directory given as input "acpi" (igvmgen -acpi_dir).
	ACPIDir = "dir"
	// ACPIPages reads the flat pages file given as input "acpi".
	ACPIPages = "pages"
)

// Input names of an IGVM step.
const (
	IGVMInputKernel = "kernel" // bzImage (required)
	IGVMInputInitrd = "initrd" // optional
	IGVMInputACPI   = "acpi"   // DSL directory or pages file, per IGVMParams.ACPI
	IGVMInputIDKey  = "id-key" // optional P-384 PEM; absent: the public default key
)

// IGVMParams is the hashed description of an IGVM step. Inputs (kernel,
// initrd, ACPI sources, key) are keyed by content through Step.Inputs.
type IGVMParams struct {
	Cmdline       string `json:"cmdline"`
	BootMode      string `json:"boot_mode"`
	VTL           uint8  `json:"vtl"`
	SVME          bool   `json:"svme"`
	EncryptedPage bool   `json:"encrypted_page"`
	PvalidateOpt  bool   `json:"pvalidate_opt"`
	Arch          string `json:"arch"`
	CPUID         string `json:"cpuid_variant"`
	// SVN goes into the measurement JSON only.
	SVN string `json:"svn"`
	// ACPI is ACPIBuiltinCLH, ACPIDir or ACPIPages.
	ACPI string `json:"acpi"`
	// IASLVersion is iasl's version (IASLVersion()); required when ACPI is
	// compiled, since iasl stamps it into every table.
	IASLVersion string `json:"iasl_version,omitempty"`
}

// DefaultIGVMParams returns the Azure Linux confidential UVM's settings
// with uvmbuild's Cloud Hypervisor tables.
func DefaultIGVMParams() IGVMParams {
	d := igvmgen.DefaultParams()
	return IGVMParams{BootMode: string(d.BootMode), VTL: d.VTL, SVME: d.SVME, EncryptedPage: d.EncryptedPage,
		PvalidateOpt: d.PvalidateOpt, Arch: string(d.Arch), CPUID: string(d.CPUID), SVN: "0", ACPI: ACPIBuiltinCLH}
}

// IASLVersion returns the version of the iasl binary (empty path: "iasl"
// from PATH), for IGVMParams.IASLVersion and the build record.
func IASLVersion(ctx context.Context, iaslPath string) (string, error) {
	return iasl.Compiler{Path: iaslPath}.Version(ctx)
}

// clhSourcesDigest is the sha256 over the embedded CLH sources (name and
// content, sorted), so editing them changes the key.
func clhSourcesDigest() (string, error) {
	h := sha256.New()
	var names []string
	if err := fs.WalkDir(clh.Sources(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return err
	}); err != nil {
		return "", err
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := fs.ReadFile(clh.Sources(), n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// IGVMSpec returns the Spec of an IGVM step.
func IGVMSpec(p IGVMParams) (graph.Spec, error) {
	if p.ACPI != ACPIPages && p.IASLVersion == "" {
		return graph.Spec{}, fmt.Errorf("IGVM step: ACPI %q is compiled with iasl: IASLVersion is required", p.ACPI)
	}
	params := map[string]any{
		"cmdline": p.Cmdline, "boot_mode": p.BootMode, "vtl": int(p.VTL), "svme": p.SVME,
		"encrypted_page": p.EncryptedPage, "pvalidate_opt": p.PvalidateOpt, "arch": p.Arch,
		"cpuid_variant": p.CPUID, "svn": p.SVN, "acpi": p.ACPI,
	}
	if p.ACPI != ACPIPages {
		params["iasl_version"] = p.IASLVersion
	}
	if p.ACPI == ACPIBuiltinCLH {
		d, err := clhSourcesDigest()
		if err != nil {
			return graph.Spec{}, err
		}
		params["clh_sources"] = d
	}
	return graph.Spec{Kind: IGVMKind, Version: igvmVersion, Params: params}, nil
}

// IGVM runs IGVM steps: it writes Step.Outputs[0] (the IGVM file) and, when
// declared, Step.Outputs[1] (the measurement JSON, igvmgen's format).
type IGVM struct {
	// IASL is the iasl binary ("" = iasl from PATH).
	IASL string
}

var _ graph.Executor = (*IGVM)(nil)

func igvmParamsFrom(m map[string]any) (IGVMParams, error) {
	var p IGVMParams
	str := func(k string) string { s, _ := m[k].(string); return s }
	boolean := func(k string) bool { b, _ := m[k].(bool); return b }
	p.Cmdline, p.BootMode, p.Arch, p.CPUID, p.SVN, p.ACPI, p.IASLVersion =
		str("cmdline"), str("boot_mode"), str("arch"), str("cpuid_variant"), str("svn"), str("acpi"), str("iasl_version")
	p.SVME, p.EncryptedPage, p.PvalidateOpt = boolean("svme"), boolean("encrypted_page"), boolean("pvalidate_opt")
	switch v := m["vtl"].(type) {
	case int:
		p.VTL = uint8(v)
	case float64:
		p.VTL = uint8(v)
	case int64:
		p.VTL = uint8(v)
	}
	switch p.ACPI {
	case ACPIBuiltinCLH, ACPIDir, ACPIPages:
	default:
		return p, fmt.Errorf("IGVM step: acpi %q, want %s, %s or %s", p.ACPI, ACPIBuiltinCLH, ACPIDir, ACPIPages)
	}
	return p, nil
}

// Run builds the IGVM file and its measurement.
func (e *IGVM) Run(ctx context.Context, x *graph.Exec) error {
	s := x.Step
	if len(s.Outputs) < 1 || len(s.Outputs) > 2 {
		return fmt.Errorf("IGVM step %s: declare 1 or 2 outputs (IGVM file, measurement JSON), got %d", s.ID, len(s.Outputs))
	}
	p, err := igvmParamsFrom(s.Spec.Params)
	if err != nil {
		return err
	}
	comp := iasl.Compiler{Path: e.IASL}
	if p.ACPI != ACPIPages {
		v, err := comp.Version(ctx)
		if err != nil {
			return err
		}
		if v != p.IASLVersion {
			return fmt.Errorf("IGVM step %s: iasl is version %s but the step was keyed with %s (it changes the measurement)", s.ID, v, p.IASLVersion)
		}
	}
	gp := igvmgen.DefaultParams()
	gp.Cmdline, gp.BootMode, gp.VTL = []byte(p.Cmdline), igvmgen.BootMode(p.BootMode), p.VTL
	gp.SVME, gp.EncryptedPage, gp.PvalidateOpt = p.SVME, p.EncryptedPage, p.PvalidateOpt
	gp.Arch, gp.CPUID = igvmgen.Arch(p.Arch), igvmgen.CPUIDVariant(p.CPUID)
	kpath, ok := x.Inputs[IGVMInputKernel]
	if !ok {
		return fmt.Errorf("IGVM step %s: no %q input", s.ID, IGVMInputKernel)
	}
	kernel, release, err := igvmgen.MapFile(kpath)
	if err != nil {
		return fmt.Errorf("IGVM step %s: kernel: %w", s.ID, err)
	}
	defer release()
	gp.Kernel = kernel
	gp.KernelName = IGVMInputKernel
	if rd, ok := x.Inputs[IGVMInputInitrd]; ok {
		if gp.Initrd, err = os.ReadFile(rd); err != nil {
			return fmt.Errorf("IGVM step %s: initrd: %w", s.ID, err)
		}
		gp.InitrdName = IGVMInputInitrd
	}
	if kp, ok := x.Inputs[IGVMInputIDKey]; ok {
		if gp.IDKey, err = igvmgen.LoadIDKey(kp); err != nil {
			return err
		}
	}
	var src igvmgen.ACPISource
	if p.ACPI != ACPIBuiltinCLH {
		in, ok := x.Inputs[IGVMInputACPI]
		if !ok {
			return fmt.Errorf("IGVM step %s: acpi %q needs an %q input", s.ID, p.ACPI, IGVMInputACPI)
		}
		if p.ACPI == ACPIDir {
			src.Dir = in
		} else {
			src.PagesFile = in
		}
	}
	if gp.ACPI, err = igvmgen.LoadACPI(ctx, src, comp); err != nil {
		return err
	}
	out := filepath.Join(x.OutDir, filepath.FromSlash(s.Outputs[0]))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	im, err := igvmgen.GenerateFile(ctx, gp, out)
	if err != nil {
		return fmt.Errorf("IGVM step %s: %w", s.ID, err)
	}
	if len(s.Outputs) == 2 {
		js := igvmgen.MarshalMeasurement(igvmgen.Measurement{SVN: p.SVN, LaunchMeasurement: im.Digest.String()})
		mp := filepath.Join(x.OutDir, filepath.FromSlash(s.Outputs[1]))
		if err := os.MkdirAll(filepath.Dir(mp), 0o755); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(mp, js, 0o644, atomicfile.NoSync()); err != nil {
			return err
		}
	}
	if x.Log != nil {
		fmt.Fprintf(x.Log, "igvm: %d bytes, launch measurement %s\n", im.Size(), im.Digest)
	}
	return nil
}
