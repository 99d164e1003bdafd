package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/uvmbuild/uvmbuild/recipes"
)

// varInfo is one variable in `uvmbuild vars --json`.
type varInfo struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	Enum        []string `json:"enum,omitempty"`
	Default     string   `json:"default"`
	Derived     bool     `json:"derived,omitempty"`
	IgnoreEnv   bool     `json:"ignoreEnv,omitempty"`
	Value       string   `json:"value"`
	Source      string   `json:"source"`
	Description string   `json:"description"`
}

func newVarsCmd(o *Options) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "vars [VAR=value...]",
		Short: "List the recipe's variables with their type, value and where the value comes from",
		Long: `Lists every variable of the recipe: its type, its resolved value and where that
value comes from (command line, environment, derived, default). VAR=value
arguments are resolved as a build would.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := o.recipe()
			if err != nil {
				return err
			}
			targets, assigns := recipes.SplitArgs(args)
			if len(targets) > 0 {
				return usageError(fmt.Errorf("vars takes only VAR=value arguments, not %q", targets[0]))
			}
			vals, src, err := recipes.ResolveSources(r, assigns, o.Environ)
			if err != nil {
				return err
			}
			var infos []varInfo
			for _, v := range r.Vars() {
				t := v.Type
				if t == "" {
					t = recipes.String
				}
				infos = append(infos, varInfo{Name: v.Name, Type: string(t), Enum: v.Enum, Default: v.Default,
					Derived: v.Derive != nil, IgnoreEnv: v.IgnoreEnv, Value: vals[v.Name], Source: string(src[v.Name]), Description: v.Description})
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				if infos == nil {
					infos = []varInfo{}
				}
				return enc.Encode(infos)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTYPE\tVALUE\tSOURCE\tDESCRIPTION")
			for _, v := range infos {
				typ := v.Type
				if len(v.Enum) > 0 {
					typ = strings.Join(v.Enum, "|")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Name, typ, quoteEmpty(v.Value), v.Source, v.Description)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	o.addFlags(cmd.Flags())
	return cmd
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}
