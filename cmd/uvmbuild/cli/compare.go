package cli

import (
	"crypto"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/uvmbuild/uvmbuild/builder/attest"
)

type compareOptions struct {
	pub  string
	pubB string
}

func newCompareMeasurementCmd() *cobra.Command {
	var o compareOptions
	cmd := &cobra.Command{
		Use:   "compare-measurement A B",
		Short: "Compare two launch measurements (measurement JSON or COSE endorsements)",
		Long: `Compares two measurement files: igvmgen's JSON (node-builder's *.cose files)
or COSE_Sign1 endorsements made by "uvmbuild endorse sign". With --pub, A must
be an endorsement whose signature verifies with that key (typically the pinned,
published value); --pub-b does the same for B. Without a key, an endorsement's
payload is compared unverified.

Exit status: 0 same measurement, 3 different, 1 bad input (unreadable or
corrupt file, signature that does not verify, wrong key).`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return badInput(runCompareMeasurement(cmd.OutOrStdout(), args[0], args[1], o))
		},
	}
	cmd.Flags().StringVar(&o.pub, "pub", "", "PEM public key A's endorsement must verify with")
	cmd.Flags().StringVar(&o.pubB, "pub-b", "", "PEM public key B's endorsement must verify with")
	return cmd
}

func loadPub(p string) (crypto.PublicKey, error) {
	if p == "" {
		return nil, nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", attest.ErrBadInput, err)
	}
	k, err := attest.ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", p, err)
	}
	return k, nil
}

func runCompareMeasurement(out io.Writer, a, b string, o compareOptions) error {
	pa, err := loadPub(o.pub)
	if err != nil {
		return err
	}
	pb, err := loadPub(o.pubB)
	if err != nil {
		return err
	}
	ma, _, err := attest.ReadMeasurement(a, pa)
	if err != nil {
		return err
	}
	mb, _, err := attest.ReadMeasurement(b, pb)
	if err != nil {
		return err
	}
	return reportMeasurements(out, a, b, ma, mb)
}

func reportMeasurements(out io.Writer, a, b string, ma, mb *attest.Measurement) error {
	d := attest.Compare(ma, mb)
	if len(d) == 0 {
		fmt.Fprintf(out, "same measurement: launch digest %s, guest SVN %q\n", ma.LaunchDigest, ma.GuestSVN)
		return nil
	}
	fmt.Fprintf(out, "--- %s\n+++ %s\n", a, b)
	for _, x := range d {
		fmt.Fprintf(out, "%s:\n  - %s\n  + %s\n", x.Field, x.A, x.B)
	}
	return differsError(fmt.Errorf("measurements differ: %s and %s", a, b))
}

// CheckExpect is the post-build check behind the build option
// --expect FILE: it compares every measurement artifact in outDir with the
// expected measurement file (igvmgen JSON, or an endorsement, verified
// with pub when pub is a key file path). It returns nil when one of the
// build's measurements matches, an exit-3 error naming the difference when
// none does, and an exit-1 error for unreadable input.
func CheckExpect(out io.Writer, outDir, expectFile, pub string) error {
	k, err := loadPub(pub)
	if err != nil {
		return badInput(err)
	}
	want, _, err := attest.ReadMeasurement(expectFile, k)
	if err != nil {
		return badInput(err)
	}
	rec, _, ok := loadRecord(outDir)
	if !ok {
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("--expect: no readable build record in %s", outDir)}
	}
	got, err := attest.LaunchDigests(rec, outDir)
	if err != nil {
		return badInput(err)
	}
	if len(got) == 0 {
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("--expect %s: the build produced no measurement file", expectFile)}
	}
	for name, ld := range got {
		if ld == want.LaunchDigest {
			fmt.Fprintf(out, "measurement of %s matches %s: %s\n", name, expectFile, ld)
			return nil
		}
	}
	fmt.Fprintf(out, "--- expected (%s)\n+++ built\n", expectFile)
	for _, name := range sortedNames(got) {
		fmt.Fprintf(out, "%s launch digest:\n  - %s\n  + %s\n", name, want.LaunchDigest, got[name])
	}
	return differsError(fmt.Errorf("--expect %s: no built measurement matches", expectFile))
}

func sortedNames(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
