package cli

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/uvmbuild/uvmbuild/builder/igvmgen"
)

type measureOptions struct {
	svn    string
	json   bool
	expect string
}

func newMeasureCmd() *cobra.Command {
	var o measureOptions
	cmd := &cobra.Command{
		Use:   "measure FILE.igvm",
		Short: "Recompute the SNP launch measurement of any IGVM file",
		Long: `Recomputes the SEV-SNP launch digest of an IGVM file by replaying its directives
(PAGE_DATA, PARAMETER_INSERT, VP_CONTEXT) in file order, independently of the
generator, so it checks files made by igvmgen or anyone else. The file is validated
first (checksum, offsets, header order).

Prints the digest (96 hex digits), or with --json the measurement file igvmgen writes
(with --svn as its guest SVN). --expect HEX compares: on a mismatch both values are
printed and the exit code is 3.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runMeasure(cmd, args[0], o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.svn, "svn", "0", "guest SVN for the --json output")
	f.BoolVar(&o.json, "json", false, "print the measurement JSON (igvmgen -measurement_file format)")
	f.StringVar(&o.expect, "expect", "", "expected launch digest (hex); exit 3 when it differs")
	return cmd
}

func runMeasure(cmd *cobra.Command, path string, o measureOptions) error {
	want := strings.ToLower(strings.TrimSpace(o.expect))
	if want != "" {
		if b, err := hex.DecodeString(want); err != nil || len(b) != 48 {
			return usageError(fmt.Errorf("--expect %q: want 96 hex digits", o.expect))
		}
	}
	f, size, err := openSized(path)
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := igvmgen.Measure(cmd.Context(), f, size)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	got := res.Digest.String()
	out := cmd.OutOrStdout()
	if o.json {
		fmt.Fprintf(out, "%s\n", igvmgen.MarshalMeasurement(igvmgen.Measurement{SVN: o.svn, LaunchMeasurement: got}))
	} else {
		fmt.Fprintln(out, got)
	}
	if want != "" && want != got {
		return differsError(fmt.Errorf("%s: launch measurement differs\n  expected %s\n  actual   %s", path, want, got))
	}
	return nil
}
