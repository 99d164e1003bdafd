package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/uvmbuild/uvmbuild/builder/attest"
	"github.com/uvmbuild/uvmbuild/builder/record"
)

func newProvenanceCmd() *cobra.Command {
	var out, check string
	cmd := &cobra.Command{
		Use:   "provenance [--out DIR | --check FILE]",
		Short: "Write or check the in-toto SLSA provenance of a build",
		Long: `Writes DIR/provenance.intoto.json from DIR/build.json: an in-toto v1 statement
with a SLSA v1 provenance predicate whose subjects are the artifacts and the
launch digests (sha384) and whose resolved dependencies are every host input,
builder image and digest the build recorded. Builds write it themselves; this
command regenerates it. --check validates a statement against the in-toto and
SLSA types instead.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if check != "" {
				return badInput(runProvenanceCheck(cmd.OutOrStdout(), check))
			}
			return badInput(runProvenanceWrite(cmd.OutOrStdout(), out))
		},
	}
	cmd.Flags().StringVar(&out, "out", "out", "output directory holding build.json")
	cmd.Flags().StringVar(&check, "check", "", "validate this statement file instead")
	return cmd
}

func runProvenanceWrite(w io.Writer, dir string) error {
	rec, _, ok := loadRecord(dir)
	if !ok {
		return fmt.Errorf("%w: no readable build record in %s", attest.ErrBadInput, dir)
	}
	if err := WriteProvenance(rec, dir, nil); err != nil {
		return err
	}
	fmt.Fprintln(w, filepath.Join(dir, attest.ProvenanceFile))
	return nil
}

func runProvenanceCheck(w io.Writer, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("%w: %w", attest.ErrBadInput, err)
	}
	st, _, err := attest.ParseStatement(data)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	for _, s := range st.Subject {
		for alg, d := range s.Digest {
			fmt.Fprintf(w, "%s %s:%s\n", s.Name, alg, d)
		}
	}
	return nil
}

// WriteProvenance writes outDir/provenance.intoto.json for the build b,
// naming this uvmbuild binary (module version, VCS revision, Go version) as
// the builder. launch maps measured artifacts to their launch digests (nil:
// read them from outDir). The build command calls it after writing
// build.json.
func WriteProvenance(b *record.Build, outDir string, launch map[string]string) error {
	return attest.WriteProvenance(b, outDir, attest.ProvenanceOptions{BuilderVersion: builderVersion(), LaunchDigests: launch})
}

// builderVersion describes the running binary from its build information.
func builderVersion() map[string]string {
	v := map[string]string{"go": runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v["uvmbuild"] = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v["vcs.revision"] = s.Value
		case "vcs.modified":
			v["vcs.modified"] = s.Value
		}
	}
	return v
}
