package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/uvmbuild/uvmbuild/builder/attest"
	"github.com/uvmbuild/uvmbuild/builder/diff"
	"github.com/uvmbuild/uvmbuild/builder/record"
)

type diffOptions struct {
	json     bool
	maxItems int
}

func newDiffCmd() *cobra.Command {
	var o diffOptions
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Explain how two artifacts, out/ directories or build records differ",
		Long: `Compares two files, two directories (e.g. two out/ directories) or two build
records (build.json) and explains the difference down to its cause:

  IGVM files       fixed header, variable headers, guest memory regions (kernel
                   command line, boot_params, VMSA, ACPI table, initrd, kernel),
                   both command lines, the ID block fields
  measurements     key by key
  root_hash.txt    field by field
  disk images      MBR partition table, ext4 / dm-verity superblock fields, then
                   the differing byte ranges by partition and 4 KiB block
  tar archives     per entry: type, mode, owner, mtime, size, content digest,
                   and a unified diff of small text files
  other files      a unified diff (small text) or the first differing offset,
                   the number of differing bytes and a hexdump of both sides

Two build records (or two out/ directories holding build.json) are compared
action by action in graph order; the first action whose outputs differ is
named, with the structured diff of its differing files where they are found in
the out/ directories. Large files are streamed with bounded memory.

Exit status: 0 identical, 3 different, 1 unreadable or incomparable input.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiff(cmd.Context(), cmd.OutOrStdout(), args[0], args[1], o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the report as JSON")
	cmd.Flags().IntVar(&o.maxItems, "max-items", 200, "list at most this many differences per report")
	return cmd
}

func runDiff(ctx context.Context, out io.Writer, a, b string, o diffOptions) error {
	opt := &diff.Options{MaxItems: o.maxItems}
	var reports []*diff.Report
	recA, dirA, err := findRecord(a)
	if err != nil {
		return &ExitError{Code: ExitFailed, Err: err}
	}
	recB, dirB, err := findRecord(b)
	if err != nil {
		return &ExitError{Code: ExitFailed, Err: err}
	}
	okA, okB := recA != nil, recB != nil
	if okA && okB {
		rr, err := diff.Records(ctx, recA, recB, &diff.RecordOptions{
			Options: diff.Options{MaxItems: o.maxItems, LabelA: a, LabelB: b},
			Fetch:   outDirFetcher([2]string{dirA, dirB}, [2]*record.Build{recA, recB}),
		})
		if err != nil {
			return badInput(err)
		}
		reports = append(reports, rr.Report)
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA != nil {
		return errA
	}
	if errB != nil {
		return errB
	}
	if !(okA && okB) || fa.IsDir() && fb.IsDir() {
		if okA && okB {
			opt.Skip = []string{record.FileName, attest.ProvenanceFile}
		}
		r, err := diff.Files(ctx, a, b, opt)
		if err != nil {
			return err
		}
		reports = append(reports, r)
	}
	same := true
	for _, r := range reports {
		same = same && r.Same()
	}
	if err := printReports(out, reports, o.json); err != nil {
		return err
	}
	if !same {
		return differsError(fmt.Errorf("%s and %s differ", a, b))
	}
	return nil
}

func printReports(out io.Writer, reports []*diff.Report, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(reports)
	}
	for _, r := range reports {
		if err := r.WriteText(out); err != nil {
			return err
		}
	}
	return nil
}

// loadRecord reads a build record given as build.json or as a directory
// holding one; it returns the record and its out/ directory.
func loadRecord(p string) (*record.Build, string, bool) {
	b, dir, err := findRecord(p)
	return b, dir, err == nil && b != nil
}

// findRecord is loadRecord that tells "not a record" (nil, nil) from "a
// record that cannot be read" (an error): a file named build.json, or a
// directory holding one, must parse.
func findRecord(p string) (*record.Build, string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, "", err
	}
	f := p
	switch {
	case fi.IsDir():
		f = filepath.Join(p, record.FileName)
		if _, err := os.Stat(f); err != nil {
			return nil, "", nil // a plain directory
		}
	case filepath.Base(p) != record.FileName:
		// Any other file is a record only if it parses as one; large
		// files and files not starting like JSON are not read.
		if fi.Size() > 64<<20 || !startsWithBrace(p) {
			return nil, "", nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, "", nil
		}
		b, err := record.Parse(data, p)
		if err != nil {
			return nil, "", nil
		}
		return b, filepath.Dir(p), nil
	}
	b, err := record.Read(f)
	if err != nil {
		return nil, "", err
	}
	return b, filepath.Dir(f), nil
}

func startsWithBrace(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [64]byte
	n, _ := f.Read(b[:])
	for _, c := range b[:n] {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

// outDirFetcher finds an output entry's content among the artifacts
// materialised in each side's out/ directory, by digest.
func outDirFetcher(dirs [2]string, recs [2]*record.Build) func(context.Context, int, string, record.Entry) (string, error) {
	return func(ctx context.Context, side int, action string, e record.Entry) (string, error) {
		return findInOutDir(dirs[side], recs[side], e)
	}
}

func findInOutDir(dir string, rec *record.Build, e record.Entry) (string, error) {
	if dir == "" || rec == nil {
		return "", nil
	}
	for _, a := range rec.Artifacts {
		switch {
		case a.Type == record.TypeFile && a.Digest == e.Digest:
			return filepath.Join(dir, filepath.FromSlash(a.Name)), nil
		case a.Type == record.TypeDir:
			for _, x := range a.Entries {
				if x.Type == record.TypeFile && x.Digest == e.Digest {
					return filepath.Join(dir, filepath.FromSlash(a.Name), filepath.FromSlash(x.Path)), nil
				}
			}
		}
	}
	return "", nil
}

// badInput maps library sentinels of bad input to exit code 1 with the
// message as is; everything else passes through.
func badInput(err error) error {
	if errors.Is(err, diff.ErrIncomparable) || errors.Is(err, attest.ErrBadInput) || errors.Is(err, attest.ErrSignature) {
		return &ExitError{Code: ExitFailed, Err: err}
	}
	return err
}
