package cli

import (
	"github.com/spf13/cobra"

	"github.com/uvmbuild/uvmbuild/builder/graph"
)

func newGraphCmd(o *Options) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "graph [TARGET...] [VAR=value...]",
		Short: "Print the action graph of targets as dot, mermaid or json",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "dot", "mermaid", "json":
			default:
				return usageError(errorf("--format %q: want dot, mermaid or json", format))
			}
			_, _, _, plan, err := o.planFor(cmd.Context(), args, newLogger(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			return graph.WriteGraph(cmd.OutOrStdout(), plan.Steps(), format)
		},
	}
	cmd.Flags().StringVar(&format, "format", "dot", "output format: dot, mermaid or json")
	o.addFlags(cmd.Flags())
	return cmd
}
