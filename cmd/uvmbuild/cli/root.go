package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// NewRootCmd returns the uvmbuild command tree.
func NewRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "uvmbuild [flags] [TARGET...] [VAR=value...]",
		Short:         "Reproducible builder for the Kata confidential utility VM",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError(err) })
	for _, c := range []*cobra.Command{
		newVerityCmd(),
		newDiffCmd(),
		newCompareMeasurementCmd(),
		newEndorseCmd(),
		newProvenanceCmd(),
		// commands: one per line, keep this marker
	} {
		root.AddCommand(c)
	}
	return root
}

// Main runs uvmbuild with args and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := NewRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "uvmbuild: %v\n", err)
	}
	return exitCode(err)
}
