package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/uvmbuild/uvmbuild/builder/graph"
)

func newPlanCmd(o *Options) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plan [TARGET...] [VAR=value...]",
		Short: "Dry run: list every action, cached or not, and why each miss would run",
		Long: `Shows what 'uvmbuild [TARGET...] [VAR=value...]' would do without running anything:
every action in build order, whether its result is cached and, for each miss, what
changed against the last build of that action (variable, parameter, input, image or
version, with old and new values or digests).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPlan(cmd.Context(), o, args, asJSON, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	o.addFlags(cmd.Flags())
	return cmd
}

// runPlan prints what a build of args would do (also `uvmbuild -n`).
func runPlan(ctx context.Context, o *Options, args []string, asJSON bool, w, stderr io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	log := newLogger(stderr)
	_, _, _, plan, err := o.planFor(ctx, args, log)
	if err != nil {
		return err
	}
	store, err := o.openCache(ctx, log)
	if err != nil {
		return err
	}
	defer store.Close()
	acts, err := graph.Explain(ctx, plan.Steps(), graph.Options{Store: store, WorkDir: store.Dir(), Jobs: o.Jobs, Logger: log})
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if acts == nil {
			acts = []graph.PlannedAction{}
		}
		return enc.Encode(acts)
	}
	run := 0
	for _, a := range acts {
		if a.Cached {
			fmt.Fprintf(w, "cached  %s\n", a.ID)
			continue
		}
		run++
		fmt.Fprintf(w, "run     %s", a.ID)
		if a.Description != "" {
			fmt.Fprintf(w, ": %s", a.Description)
		}
		fmt.Fprintln(w)
		for _, r := range a.Reasons {
			fmt.Fprintf(w, "          %s\n", r)
		}
	}
	for _, c := range plan.Clean {
		fmt.Fprintf(w, "clean   %s\n", c)
	}
	fmt.Fprintf(w, "%d actions: %d cached, %d to run\n", len(acts), len(acts)-run, run)
	return nil
}
