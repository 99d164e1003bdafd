package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// NewRootCmd returns the uvmbuild command tree of a real process (recipes
// from the composition root, the process environment).
func NewRootCmd() *cobra.Command { return newRootCmd(newOptions()) }

// newRootCmd returns the command tree over o. The root command itself is
// the make-style build.
func newRootCmd(o *Options) *cobra.Command {
	root := &cobra.Command{
		Use:   "uvmbuild [flags] [TARGET...] [VAR=value...]",
		Short: "Reproducible builder for the Kata confidential utility VM",
		Long: `uvmbuild builds the targets of a recipe like make: uvmbuild [TARGET...] [VAR=value...]
(default target: all). VAR=value on the command line beats the environment, which
beats the default ('uvmbuild vars' lists them, 'uvmbuild targets' the targets).
Artifacts go to --out (default out/) with a build record out/build.json; action
results are kept in a content-addressed cache (--cache-dir, $UVMBUILD_CACHE,
default $XDG_CACHE_HOME/uvmbuild).

Exit codes: 0 ok, 1 build failed or bad input, 2 usage error, 3 compared things differ.`,
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd.Context(), o, args, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.addFlags(root.Flags())
	o.addDryRunFlag(root.Flags())
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError(err) })
	for _, c := range []*cobra.Command{
		newBuildCmd(o),
		newTargetsCmd(o),
		newVarsCmd(o),
		newPlanCmd(o),
		newGraphCmd(o),
		newCacheCmd(o),
		newVerityCmd(),
		newDiffCmd(),
		newCompareMeasurementCmd(),
		newEndorseCmd(),
		newProvenanceCmd(),
		newIgvmCmd(),
		newMeasureCmd(),
		newInspectCmd(),
		newDeployCmd(o),
		newUndeployCmd(),
		newImageCmd(),
		newVerifyCmd(),
		newLockCmd(o),
		// commands: one per line, keep this marker
	} {
		root.AddCommand(c)
	}
	return root
}

// Main runs uvmbuild with args and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(ctx, newOptions(), args, stdin, stdout, stderr)
}

// run executes the command tree over o and prints a failure as one line.
func run(ctx context.Context, o *Options, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(o)
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
