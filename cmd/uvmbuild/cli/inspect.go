package cli

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/uvmbuild/uvmbuild/builder/igvmgen"
)

func newInspectCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect FILE.igvm",
		Short: "Describe an IGVM file: headers, memory, command line, VMSA, CPUID, ID block",
		Long: `Prints the fixed header and checksum validity, the variable headers (PAGE_DATA runs
merged, with page types: NORMAL with data, ZERO without, CPUID, SECRETS, VMSA,
UNMEASURED), the kernel command line (found through the VMSA's RSI -> boot_params),
the non-zero VMSA fields, the CPUID page's leaves, the ID block (with signature
check) and the recomputed launch digest. --json prints the same as JSON.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, size, err := openSized(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			rep, err := igvmgen.Inspect(cmd.Context(), f, size)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return rep.WriteText(cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// openSized opens a file for a reader-at-and-size API (inspect, measure).
func openSized(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}
