package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/uvmbuild/uvmbuild/builder/cache"
	"github.com/uvmbuild/uvmbuild/builder/diff"
	"github.com/uvmbuild/uvmbuild/builder/record"
)

type verifyOptions struct {
	against  string
	cacheDir string
	jobs     int
	keep     bool
	json     bool
	maxItems int
	// recipe, projectDir and kataSrc are passed to both builds.
	recipe, projectDir, kataSrc string
	// copyProject makes build 2 use a copy of the project directory.
	copyProject bool
	// exe is the uvmbuild binary to re-execute (tests point it at the test
	// binary); empty means os.Executable().
	exe string
	// env is extra environment for both builds (tests).
	env []string
	// tmpDir is where the builds' directories go ("" is the system's).
	tmpDir string
}

func newVerifyCmd() *cobra.Command {
	var o verifyOptions
	cmd := &cobra.Command{
		Use:   "verify [flags] TARGET... [VAR=value...] [-- BUILD-FLAGS...]",
		Short: "Build twice under perturbations and fail if any step's outputs differ",
		Long: `Builds the targets twice by running uvmbuild itself, the second time with an
empty cache and under perturbations that must not matter:

  build dir    a copy of the project directory elsewhere (-C), another working
               directory, another cache/work directory and another out/ directory
  umask        077
  TZ, LC_ALL   Pacific/Kiritimati (UTC+14), tr_TR.UTF-8
  hostname     another one (a new UTS namespace; needs root and unshare)
  -j           -jN for the first build, -j1 for the second
  date         +1000 days via faketime (Debian package faketime); it reaches
               the dynamically linked tools a build runs outside the sandbox,
               not uvmbuild's own Go code or the hermetic containers

With --against OUT-DIR or BUILD.JSON the first build is not run: the second is
compared with that build (e.g. the one CI published from another machine).

Both build records (build.json) are compared action by action in graph order.
The FIRST action whose outputs differ is reported (actions downstream of it
usually differ as a consequence), with whether its inputs were equal (then the
step itself is not deterministic) and the structured diff of its differing
output files, taken from each build's cache.

Flags after -- are passed to both builds (e.g. -- --kata-src ../kata).

Exit status: 0 reproducible, 3 outputs differ, 1 a build failed or a record
is unreadable or of different targets, 2 usage.`,
		Args: func(cmd *cobra.Command, args []string) error {
			n := len(args)
			if d := cmd.ArgsLenAtDash(); d >= 0 {
				n = d
			}
			if n == 0 {
				return usageError(errors.New("verify needs at least one TARGET"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, extra := args, []string(nil)
			if d := cmd.ArgsLenAtDash(); d >= 0 {
				spec, extra = args[:d], args[d:]
			}
			return badInput(runVerify(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), spec, extra, o))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.against, "against", "", "compare with this out/ directory or build.json instead of building first")
	f.StringVar(&o.cacheDir, "cache-dir", "", "cache directory of the first build (default: the usual one)")
	f.IntVarP(&o.jobs, "jobs", "j", 0, "parallel steps of the first build (default: the number of CPUs, at least 2)")
	f.BoolVar(&o.keep, "keep", false, "keep the builds' directories even when they match")
	f.BoolVar(&o.json, "json", false, "print the report as JSON")
	f.IntVar(&o.maxItems, "max-items", 200, "list at most this many differences")
	f.StringVar(&o.recipe, "recipe", "", "recipe to build (passed to both builds)")
	f.StringVarP(&o.projectDir, "project-dir", "C", ".", "project directory (build 2 uses a copy of it)")
	f.StringVar(&o.kataSrc, "kata-src", "", "kata-containers source tree (passed to both builds)")
	f.BoolVar(&o.copyProject, "copy-project", true, "run build 2 on a copy of the project directory (without .git) in another place")
	return cmd
}

// perturbation is one way the second build differs from the first.
type perturbation struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	Applied bool   `json:"applied"`
	Note    string `json:"note,omitempty"`
}

func keptDir(kept bool, dir string) string {
	if kept {
		return dir
	}
	return ""
}

// buildRun is one invocation of uvmbuild.
type buildRun struct {
	label    string
	outDir   string
	cacheDir string // "" if unknown (--against)
	rec      *record.Build
}

func runVerify(ctx context.Context, stdout, stderr io.Writer, spec, extra []string, o verifyOptions) error {
	exe := o.exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("finding the uvmbuild binary to re-run: %w", err)
		}
	}
	work, err := os.MkdirTemp(o.tmpDir, "uvmbuild-verify-")
	if err != nil {
		return err
	}
	keep := o.keep
	defer func() {
		if !keep {
			os.RemoveAll(work)
		}
	}()
	jobs := o.jobs
	if jobs <= 0 {
		jobs = max(runtime.NumCPU(), 2)
	}
	proj, err := filepath.Abs(o.projectDir)
	if err != nil {
		return err
	}
	common := func(projectDir string) []string {
		var f []string
		if o.recipe != "" {
			f = append(f, "--recipe", o.recipe)
		}
		if o.kataSrc != "" {
			k, _ := filepath.Abs(o.kataSrc)
			f = append(f, "--kata-src", k)
		}
		return append(f, "-C", projectDir)
	}

	// Build A: as the user would, or the build given with --against.
	var a buildRun
	if o.against != "" {
		rec, dir, ok := loadRecord(o.against)
		if !ok {
			return &ExitError{Code: ExitFailed, Err: fmt.Errorf("--against %s: no readable build record (want an out/ directory or build.json)", o.against)}
		}
		a = buildRun{label: o.against, outDir: dir, rec: rec}
	} else {
		a = buildRun{label: "build 1", outDir: filepath.Join(work, "1", "out"), cacheDir: o.cacheDir}
		if a.cacheDir == "" {
			if a.cacheDir, err = cache.DefaultDir(os.Getenv); err != nil {
				return err
			}
		}
		args := []string{"--cache-dir", a.cacheDir, "--out", a.outDir, "-j", strconv.Itoa(jobs), "--progress", "plain"}
		args = append(append(append(args, common(proj)...), extra...), spec...)
		fmt.Fprintf(stderr, "verify: build 1: %s %s\n", exe, strings.Join(args, " "))
		c := exec.CommandContext(ctx, exe, args...)
		c.Env = append(os.Environ(), o.env...)
		c.Stdout, c.Stderr = stderr, stderr
		if err := c.Run(); err != nil {
			keep = true
			return &ExitError{Code: ExitFailed, Err: fmt.Errorf("build 1 failed (%v); its output is above, its directories are kept in %s", err, work)}
		}
	}

	// Build B: empty cache, perturbed.
	b := buildRun{label: "build 2 (perturbed)", outDir: filepath.Join(work, "2", "out-perturbed"), cacheDir: filepath.Join(work, "2", "cache-empty")}
	cwd := filepath.Join(work, "2", "cwd")
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		return err
	}
	proj2 := proj
	projNote := "project " + proj + " used in place"
	if o.copyProject {
		proj2 = filepath.Join(work, "2", "project-copy")
		if err := copyTree(proj, proj2, []string{filepath.Join(proj, ".git"), work, a.outDir}); err != nil {
			return fmt.Errorf("copying the project directory for build 2: %w", err)
		}
		projNote = "project copied to " + proj2
	}
	args := []string{"--cache-dir", b.cacheDir, "--out", b.outDir, "-j", "1", "--progress", "plain"}
	args = append(append(append(args, common(proj2)...), extra...), spec...)
	argv, env, perts := perturb(exe, args)
	perts = append([]perturbation{
		{Name: "build dir", Value: fmt.Sprintf("%s; cwd %s; cache %s; out %s", projNote, cwd, b.cacheDir, b.outDir), Applied: true},
		{Name: "-j", Value: fmt.Sprintf("%d then 1", jobs), Applied: o.against == ""},
	}, perts...)
	fmt.Fprintf(stderr, "verify: build 2: %s\n", strings.Join(argv, " "))
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Dir = cwd
	c.Env = append(append(os.Environ(), o.env...), env...)
	c.Stdout, c.Stderr = stderr, stderr
	if err := c.Run(); err != nil {
		keep = true
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("build 2 (perturbed) failed (%v); its output is above, its directories are kept in %s", err, work)}
	}

	for _, r := range []*buildRun{&a, &b} {
		if r.rec != nil {
			continue
		}
		rec, err := record.Read(filepath.Join(r.outDir, record.FileName))
		if err != nil {
			keep = true
			return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%s: %w", r.label, err)}
		}
		r.rec = rec
	}
	// Logs are recorded relative to each build's cache directory.
	for _, r := range []*buildRun{&a, &b} {
		if r.cacheDir == "" {
			continue
		}
		for i := range r.rec.Actions {
			if l := r.rec.Actions[i].Log; l != "" && !filepath.IsAbs(l) {
				r.rec.Actions[i].Log = filepath.Join(r.cacheDir, filepath.FromSlash(l))
			}
		}
	}

	rr, err := diff.Records(ctx, a.rec, b.rec, &diff.RecordOptions{
		Options: diff.Options{MaxItems: o.maxItems, LabelA: a.label, LabelB: b.label},
		Fetch:   verifyFetcher(filepath.Join(work, "fetch"), [2]buildRun{a, b}),
	})
	if err != nil {
		return err
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Reproducible  bool           `json:"reproducible"`
			First         string         `json:"firstDivergingAction,omitempty"`
			SameInputs    bool           `json:"sameInputs,omitempty"`
			Diverging     []string       `json:"divergingActions,omitempty"`
			Perturbations []perturbation `json:"perturbations"`
			Report        *diff.Report   `json:"report"`
			Kept          string         `json:"keptIn,omitempty"`
		}{rr.Same(), rr.First, rr.SameInputs, rr.Diverging, perts, rr.Report, keptDir(!rr.Same(), work)}); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(stdout, "perturbations of build 2:")
		for _, p := range perts {
			state := "applied"
			if !p.Applied {
				state = "NOT applied"
			}
			fmt.Fprintf(stdout, "  %-10s %-11s %s", p.Name, state, p.Value)
			if p.Note != "" {
				fmt.Fprintf(stdout, " (%s)", p.Note)
			}
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "compared %d actions\n", len(a.rec.Actions))
		if err := rr.WriteText(stdout); err != nil {
			return err
		}
	}
	if rr.Same() {
		if !o.json {
			fmt.Fprintln(stdout, "reproducible: every action's outputs are identical")
		}
		return nil
	}
	keep = true
	if !o.json {
		fmt.Fprintf(stdout, "builds kept in %s\n", work)
	}
	return differsError(fmt.Errorf("not reproducible: first diverging action %s (%d action(s) differ)", rr.First, len(rr.Diverging)))
}

// perturb wraps the second build's command line: a new UTS namespace with
// another hostname (root only), umask 077 and faketime, and returns the
// environment changes and what was applied.
func perturb(exe string, args []string) (argv, env []string, perts []perturbation) {
	env = []string{"TZ=Pacific/Kiritimati", "LC_ALL=tr_TR.UTF-8", "LANG=tr_TR.UTF-8"}
	perts = append(perts,
		perturbation{Name: "TZ", Value: "Pacific/Kiritimati", Applied: true},
		perturbation{Name: "LC_ALL", Value: "tr_TR.UTF-8", Applied: true},
		perturbation{Name: "umask", Value: "077", Applied: true})
	inner := []string{exe}
	if ft, err := exec.LookPath("faketime"); err == nil {
		inner = []string{ft, "-f", "+1000d", exe}
		perts = append(perts, perturbation{Name: "date", Value: "+1000 days", Applied: true,
			Note: "faketime reaches dynamically linked tools run outside the sandbox, not Go code"})
	} else {
		perts = append(perts, perturbation{Name: "date", Value: "+1000 days", Note: "faketime not installed (Debian package faketime)"})
	}
	inner = append(inner, args...)
	const host = "uvmbuild-verify-2"
	us, err := exec.LookPath("unshare")
	switch {
	case err == nil && os.Geteuid() == 0:
		argv = append([]string{us, "--uts", "--", "sh", "-c", `hostname "$0" && umask 077 && exec "$@"`, host}, inner...)
		perts = append(perts, perturbation{Name: "hostname", Value: host, Applied: true})
	default:
		argv = append([]string{"sh", "-c", `umask 077 && exec "$@"`, "sh"}, inner...)
		note := "needs root"
		if err != nil {
			note = "unshare not found"
		}
		perts = append(perts, perturbation{Name: "hostname", Value: host, Note: note})
	}
	return argv, env, perts
}

// verifyFetcher extracts a differing output file of either build from its
// cache (or, for --against, its out/ directory) into dir.
func verifyFetcher(dir string, runs [2]buildRun) func(context.Context, int, string, record.Entry) (string, error) {
	return func(ctx context.Context, side int, action string, e record.Entry) (string, error) {
		r := runs[side]
		if r.cacheDir != "" {
			if _, err := os.Stat(r.cacheDir); err == nil {
				st, err := cache.Open(ctx, r.cacheDir)
				if err == nil {
					defer st.Close()
					dst := filepath.Join(dir, strconv.Itoa(side), e.Digest.Encoded())
					if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
						return "", err
					}
					if err := st.LinkFile(ctx, e.Digest, 0o644, dst); err == nil {
						return dst, nil
					}
				}
			}
		}
		return findInOutDir(r.outDir, r.rec, e)
	}
}

// copyTree copies the tree at src to dst (hard links for files where
// possible, else copies), skipping the absolute paths in skip and
// directories holding a build.json (out/ directories).
func copyTree(src, dst string, skip []string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, s := range skip {
			if p == s {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		rel, _ := filepath.Rel(src, p)
		t := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			// Output directories of earlier builds are not inputs.
			if p != src {
				if _, err := os.Stat(filepath.Join(p, record.FileName)); err == nil {
					return filepath.SkipDir
				}
			}
			if err := os.MkdirAll(t, 0o755); err != nil {
				return err
			}
			return os.Chmod(t, info.Mode().Perm())
		case info.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, t)
		case info.Mode().IsRegular():
			if os.Link(p, t) == nil {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(t, data, info.Mode().Perm()); err != nil {
				return err
			}
			return os.Chmod(t, info.Mode().Perm())
		}
		return nil // sockets, devices: not project inputs
	})
}
