package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/uvmbuild/uvmbuild/builder/attest"
	"github.com/uvmbuild/uvmbuild/builder/graph"
	"github.com/uvmbuild/uvmbuild/builder/record"
)

func newBuildCmd(o *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "build [TARGET...] [VAR=value...]",
		Short: "Build targets (the same as 'uvmbuild [TARGET...] [VAR=value...]')",
		Long: `Builds the targets of the selected recipe (default target: all) into the output
directory and writes out/build.json. VAR=value on the command line beats the
environment, which beats the variable's default. Actions whose key is in the cache
are not run again.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd.Context(), o, args, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.addFlags(cmd.Flags())
	o.addDryRunFlag(cmd.Flags())
	return cmd
}

// runBuild is the make-style build: plan, clean, build, materialise,
// record. On failure the output directory is left as it was.
func runBuild(ctx context.Context, o *Options, args []string, stdout, stderr io.Writer) error {
	if o.DryRun {
		return runPlan(ctx, o, args, false, stdout, stderr)
	}
	if err := o.validate(); err != nil {
		return err
	}
	log := newLogger(stderr)
	r, targets, vals, plan, err := o.planFor(ctx, args, log)
	if err != nil {
		return err
	}
	outDir, err := filepath.Abs(o.OutDir)
	if err != nil {
		return err
	}
	if err := checkWritableDir(outDir); err != nil {
		return err
	}
	if len(plan.Clean) > 0 {
		if err := graph.Clean(outDir, append(plan.Clean, record.FileName, attest.ProvenanceFile)); err != nil {
			return err
		}
		for _, c := range plan.Clean {
			fmt.Fprintf(stdout, "cleaned %s\n", filepath.Join(o.OutDir, filepath.FromSlash(c)))
		}
	}
	if len(plan.Artifacts) == 0 {
		return nil
	}
	store, err := o.openCache(ctx, log)
	if err != nil {
		return err
	}
	defer store.Close()
	sink, flush := o.sink(stderr)
	res, err := graph.Build(ctx, plan.Steps(), graph.Options{
		Store:     store,
		WorkDir:   store.Dir(),
		Jobs:      o.Jobs,
		KeepGoing: o.KeepGoing,
		Sink:      sink,
		Logger:    log,
	})
	flush()
	if err != nil {
		return buildError(err)
	}
	arts, err := res.Materialize(ctx, outDir, plan.Artifacts)
	if err != nil {
		return fmt.Errorf("placing artifacts in %s: %w", o.OutDir, err)
	}
	b := &record.Build{
		SchemaVersion: record.SchemaVersion,
		Recipe:        r.Name(),
		Targets:       targets,
		Vars:          vals,
		Actions:       res.Actions,
		Artifacts:     arts,
		Record:        plan.Record,
	}
	if err := record.Write(filepath.Join(outDir, record.FileName), b); err != nil {
		return err
	}
	launch, err := attest.LaunchDigests(b, outDir)
	if err != nil {
		return err
	}
	if err := WriteProvenance(b, outDir, launch); err != nil {
		return err
	}
	for _, a := range arts {
		fmt.Fprintf(stdout, "%s\t%s\n", filepath.Join(o.OutDir, filepath.FromSlash(a.Name)), a.Digest)
	}
	keys := make([]string, 0, len(plan.Record))
	for k := range plan.Record {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(stdout, "%s\t%s\n", k, plan.Record[k])
	}
	// The launch measurement is what a release engineer publishes: last,
	// one line per measured IGVM file.
	names := make([]string, 0, len(launch))
	for n := range launch {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(stdout, "launch measurement\t%s\t%s\n", filepath.Join(o.OutDir, filepath.FromSlash(n)), launch[n])
	}
	if o.Expect != "" {
		return CheckExpect(stdout, outDir, o.Expect, o.ExpectPub)
	}
	return nil
}

// buildError turns the graph's failure into one line (the renderer has
// already shown each failed step's log tail).
func buildError(err error) error {
	var failed []string
	var first *graph.StepError
	for _, e := range flatten(err) {
		var se *graph.StepError
		if errors.As(e, &se) {
			if first == nil {
				first = se
			}
			failed = append(failed, se.Step)
		}
	}
	switch {
	case len(failed) == 1:
		msg := fmt.Sprintf("step %s failed: %s", first.Step, firstLine(first.Err.Error()))
		if first.Log != "" {
			msg += " (log: " + first.Log + ")"
		}
		return errors.New(msg)
	case len(failed) > 1:
		return fmt.Errorf("%d steps failed: %s", len(failed), strings.Join(failed, ", "))
	}
	return errors.New(firstLine(err.Error()))
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// checkWritableDir creates dir if needed and checks that files can be
// created in it, so a build does not run for nothing.
func checkWritableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output directory %s: %w", dir, unwrapPathErr(err))
	}
	f, err := os.CreateTemp(dir, ".uvmbuild-probe-")
	if err != nil {
		return fmt.Errorf("output directory %s is not writable: %w", dir, unwrapPathErr(err))
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
