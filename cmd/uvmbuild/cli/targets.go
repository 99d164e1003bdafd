package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newTargetsCmd(o *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "targets",
		Short: "List the recipe's targets",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := o.recipe()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, t := range r.Targets() {
				fmt.Fprintf(tw, "%s\t%s\n", t.Name, t.Description)
			}
			return tw.Flush()
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}
