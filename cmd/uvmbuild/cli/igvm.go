package cli

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/uvmbuild/uvmbuild/builder/acpi/iasl"
	"github.com/uvmbuild/uvmbuild/builder/atomicfile"
	"github.com/uvmbuild/uvmbuild/builder/igvmgen"
)

type igvmOptions struct {
	kernel, cmdline, initrd string
	acpiDir, acpiPages      string
	iasl                    string
	bootMode, arch, cpuid   string
	vtl                     uint8
	svme, enc, pvalidate    bool
	svn, idKey              string
	out, measurementFile    string
}

func newIgvmCmd() *cobra.Command {
	o := igvmOptions{}
	def := igvmgen.DefaultParams()
	cmd := &cobra.Command{
		Use:   "igvm --kernel F --cmdline S -o OUT.igvm [flags]",
		Short: "Build an IGVM file and its SNP launch measurement (igvmgen-compatible)",
		Long: `Builds an IGVM file for an AMD SEV-SNP guest from a bzImage, a kernel command line,
an optional initrd and ACPI tables, byte for byte as microsoft/igvm-tooling's igvmgen
(-inform bzImage, -sign_deterministic 1) does, and prints the launch measurement
(96 hex digits) on stdout.

ACPI tables: --acpi-dir D compiles D/*.dsl with iasl exactly as igvmgen -acpi_dir;
--acpi-pages F reads pre-built pages (records of u64 GPA + 4096 bytes, igvmgen's
built-in snapshot flattened); with neither, uvmbuild's own Cloud Hypervisor tables
are compiled with iasl. The iasl version is stamped into the tables, so it changes
the measurement.

The ID block is signed with ECDSA P-384, RFC 6979 deterministic, with --id-key
(SEC1 or PKCS#8 PEM) or, without it, with a key derived from a public seed: such a
signature proves nothing, it only keeps the output reproducible.

Defaults are the Azure Linux confidential UVM's: x64, VTL 0, SVME, encrypted pages,
pvalidate optimisation. Outputs are written to temporary files and renamed.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runIgvm(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.kernel, "kernel", "", "bzImage (required)")
	f.StringVar(&o.cmdline, "cmdline", "", "kernel command line, used byte for byte (required)")
	f.StringVar(&o.initrd, "initrd", "", "initial ramdisk")
	f.StringVar(&o.acpiDir, "acpi-dir", "", "directory of ACPI sources (*.dsl) compiled with iasl as igvmgen -acpi_dir does")
	f.StringVar(&o.acpiPages, "acpi-pages", "", "file of pre-built ACPI pages (u64 GPA + 4096 bytes each)")
	f.StringVar(&o.iasl, "iasl", "iasl", "iasl binary")
	f.StringVar(&o.bootMode, "boot-mode", string(def.BootMode), "boot mode: x64 or x86")
	f.Uint8Var(&o.vtl, "vtl", def.VTL, "highest VTL")
	f.BoolVar(&o.svme, "svme", def.SVME, "set EFER.SVME in the VMSA")
	f.BoolVar(&o.enc, "encrypted-page", def.EncryptedPage, "set the C-bit in page tables and CR3 (x64)")
	f.BoolVar(&o.pvalidate, "pvalidate-opt", def.PvalidateOpt, "leave low memory and unused kernel memory out of the image")
	f.StringVar(&o.arch, "arch", string(def.Arch), "intel or amd (only changes RFLAGS)")
	f.StringVar(&o.cpuid, "cpuid-variant", string(def.CPUID), "CPUID leaf list: default (38 leaves) or azure-linux (35, the kata builder's patch)")
	f.StringVar(&o.svn, "svn", "0", "guest SVN written to the measurement file (not to the ID block, as igvmgen)")
	f.StringVar(&o.idKey, "id-key", "", "ID-block signing key, P-384 PEM (default: the public deterministic key)")
	f.StringVarP(&o.out, "output", "o", "", "output IGVM file (required)")
	f.StringVar(&o.measurementFile, "measurement-file", "", "write the measurement JSON (igvmgen's -measurement_file format) here")
	return cmd
}

func runIgvm(cmd *cobra.Command, o igvmOptions) error {
	var missing []string
	if o.kernel == "" {
		missing = append(missing, "--kernel")
	}
	if !cmd.Flags().Changed("cmdline") { // an explicitly empty command line is allowed
		missing = append(missing, "--cmdline")
	}
	if o.out == "" {
		missing = append(missing, "-o")
	}
	if len(missing) > 0 {
		return usageError(fmt.Errorf("missing %s", strings.Join(missing, ", ")))
	}
	if o.acpiDir != "" && o.acpiPages != "" {
		return usageError(errors.New("--acpi-dir and --acpi-pages are mutually exclusive"))
	}
	// The command allocates a few MiB (the kernel is mapped, its pages are
	// written from the mapping), but package initialisation leaves the heap
	// near the collector's first 4 MiB goal: a cycle would start during the
	// layout and cost ~2 ms of a ~20 ms command. A 10x goal skips it and
	// stays far below the memory target (2 x kernel + 32 MiB).
	defer debug.SetGCPercent(debug.SetGCPercent(1000))
	p := igvmgen.DefaultParams()
	if o.idKey != "" {
		// The first P-384 operation (parsing the key derives its public key)
		// builds ~2 ms of tables: do it on the other core while the kernel
		// is mapped and laid out; the key is needed only to sign.
		type keyResult struct {
			key *ecdsa.PrivateKey
			err error
		}
		keyc := make(chan keyResult, 1)
		go func() {
			k, err := igvmgen.LoadIDKey(o.idKey)
			keyc <- keyResult{k, err}
		}()
		p.IDKeyFunc = func() (*ecdsa.PrivateKey, error) {
			r := <-keyc
			return r.key, r.err
		}
	}
	p.BootMode, p.Arch, p.CPUID = igvmgen.BootMode(o.bootMode), igvmgen.Arch(strings.ToLower(o.arch)), igvmgen.CPUIDVariant(o.cpuid)
	p.VTL, p.SVME, p.EncryptedPage, p.PvalidateOpt = o.vtl, o.svme, o.enc, o.pvalidate
	p.Cmdline = []byte(o.cmdline)
	var err error
	kernel, release, err := igvmgen.MapFile(o.kernel)
	if err != nil {
		return fmt.Errorf("kernel: %w", err)
	}
	defer release()
	p.Kernel = kernel
	if err := igvmgen.CheckKernel(o.kernel, kernel); err != nil {
		return err
	}
	p.KernelName = o.kernel
	if o.initrd != "" {
		if p.Initrd, err = os.ReadFile(o.initrd); err != nil {
			return fmt.Errorf("initrd: %w", err)
		}
		p.InitrdName = o.initrd
	}
	ctx := cmd.Context()
	comp := iasl.Compiler{Path: o.iasl}
	if p.ACPI, err = igvmgen.LoadACPI(ctx, igvmgen.ACPISource{Dir: o.acpiDir, PagesFile: o.acpiPages}, comp); err != nil {
		return err
	}
	if o.acpiPages == "" {
		// The iasl version is stamped into the tables: say which one was used.
		if v, err := comp.Version(ctx); err == nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "uvmbuild igvm: ACPI tables compiled with iasl %s\n", v)
		}
	}
	im, err := igvmgen.GenerateFile(ctx, p, o.out)
	if err != nil {
		return err
	}
	if o.measurementFile != "" {
		js := igvmgen.MarshalMeasurement(igvmgen.Measurement{SVN: o.svn, LaunchMeasurement: im.Digest.String()})
		if err := atomicfile.WriteFile(o.measurementFile, js, 0o644, atomicfile.NoSync()); err != nil {
			os.Remove(o.out) // keep the pair consistent: no IGVM without its measurement
			return err
		}
	}
	_, err = fmt.Fprintln(cmd.OutOrStdout(), im.Digest.String())
	return err
}
