package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// childEnv makes the test binary act as a deploying child process (see
// TestMain): it deploys, and pauses for ever at a chosen event so the parent
// can SIGKILL it there.
const childEnv = "UVMBUILD_DEPLOY_TEST_CHILD"

type childSpec struct {
	Root, Out string
	// PauseOn is an Event action ("staged" or "installed"); PauseAt the
	// 1-based count of such events at which to pause (0: never pause).
	PauseOn string
	PauseAt int
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}

func interruptParams(out string) Params {
	p, err := ParamsFromVars("deploy-confpods", map[string]string{"START_SERVICES": "no"}, out, "")
	if err != nil {
		panic(err)
	}
	return p
}

func runChild(specJSON string) int {
	var spec childSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	n := 0
	observe := func(ev Event) {
		if ev.Action != spec.PauseOn {
			return
		}
		n++
		if n == spec.PauseAt {
			fmt.Printf("paused %s\n", ev.Dest)
			select {} // wait for SIGKILL
		}
	}
	if _, err := Deploy(context.Background(), spec.Root, interruptParams(spec.Out), os.Stderr, WithObserver(observe)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("done")
	return 0
}

// startChild runs a deploying child; it returns once the child reported it
// paused (or finished), with the line it printed.
func startChild(t *testing.T, spec childSpec) (*exec.Cmd, string, *bufio.Reader) {
	t.Helper()
	data, _ := json.Marshal(spec)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(data))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	if spec.PauseAt == 0 {
		return cmd, "", r
	}
	line, err := r.ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %v", err)
	}
	return cmd, strings.TrimSpace(line), r
}

// checkOldOrNew asserts that every destination holds exactly the old or the
// new content, with the right mode, and returns which ones are new.
func checkOldOrNew(t *testing.T, root string, oldFiles, newFiles []File) map[string]bool {
	t.Helper()
	isNew := map[string]bool{}
	want := func(f File) []byte {
		if f.Src == "" {
			return f.Content
		}
		b, err := os.ReadFile(f.Src)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for i, nf := range newFiles {
		of := oldFiles[i]
		got, err := os.ReadFile(hostPath(root, nf.Dest))
		if err != nil {
			t.Errorf("%s: %v", nf.Dest, err)
			continue
		}
		switch string(got) {
		case string(want(nf)):
			isNew[nf.Dest] = true
		case string(want(of)):
		default:
			t.Errorf("%s is neither the old nor the new file (%d bytes): partial install", nf.Dest, len(got))
		}
		st, _ := os.Stat(hostPath(root, nf.Dest))
		if st.Mode().Perm() != nf.Mode {
			t.Errorf("%s has mode %v, want %v", nf.Dest, st.Mode().Perm(), nf.Mode)
		}
	}
	return isNew
}

func TestInterruptedDeploy(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	ctx := context.Background()
	outOld := makeOut(t, t.TempDir(), "old", 2<<20)
	outNew := makeOut(t, t.TempDir(), "new-and-longer", 3<<20)
	root := t.TempDir()
	oldFiles, err := Layout(interruptParams(outOld))
	if err != nil {
		t.Fatal(err)
	}
	newFiles, err := Layout(interruptParams(outNew))
	if err != nil {
		t.Fatal(err)
	}
	reset := func() {
		t.Helper()
		if _, err := Deploy(ctx, root, interruptParams(outOld), os.Stderr); err != nil {
			t.Fatal(err)
		}
	}
	// The files whose content changes between the two builds, in install
	// order (the generated host files are the same in both).
	var changing []string
	index := map[string]int{}
	for _, f := range newFiles {
		if f.Src != "" {
			index[f.Dest] = len(changing)
			changing = append(changing, f.Dest)
		}
	}

	// Killed at chosen points: after the N-th file was written beside its
	// destination but before the rename, and after the N-th rename.
	for _, tc := range []struct {
		on string
		at int
	}{{"staged", 1}, {"staged", 6}, {"staged", len(changing)}, {"installed", 3}} {
		t.Run(fmt.Sprintf("%s-%d", tc.on, tc.at), func(t *testing.T) {
			reset()
			cmd, line, _ := startChild(t, childSpec{Root: root, Out: outNew, PauseOn: tc.on, PauseAt: tc.at})
			cmd.Process.Kill()
			cmd.Wait()
			dest := strings.TrimPrefix(line, "paused ")
			k, ok := index[dest]
			if !ok {
				t.Fatalf("child paused at unknown %q", line)
			}
			isNew := checkOldOrNew(t, root, oldFiles, newFiles)
			for i, d := range changing {
				wantNew := i < k || (i == k && tc.on == "installed")
				if isNew[d] != wantNew {
					t.Errorf("%s: new=%v, want %v (killed at %s of %s)", d, isNew[d], wantNew, tc.on, dest)
				}
			}
			// The next deploy finishes the job and leaves no temporary file.
			if _, err := Deploy(ctx, root, interruptParams(outNew), os.Stderr); err != nil {
				t.Fatal(err)
			}
			for p := range listTree(t, root) {
				if strings.Contains(p, tempInfix) || strings.Contains(p, "~") {
					t.Errorf("left behind: %s", p)
				}
			}
			if isNew := checkOldOrNew(t, root, oldFiles, newFiles); len(isNew) != len(newFiles) {
				t.Errorf("after re-deploy only %d of %d files are new", len(isNew), len(newFiles))
			}
		})
	}

	// Killed at arbitrary moments, most of them in the middle of copying an
	// image.
	t.Run("random", func(t *testing.T) {
		for i, delay := range []time.Duration{10 * time.Millisecond, 30 * time.Millisecond, 60 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond, 250 * time.Millisecond} {
			reset()
			cmd, _, _ := startChild(t, childSpec{Root: root, Out: outNew})
			time.Sleep(delay)
			cmd.Process.Kill()
			cmd.Wait()
			isNew := checkOldOrNew(t, root, oldFiles, newFiles)
			n := 0
			for _, d := range changing {
				if isNew[d] {
					n++
				}
			}
			t.Logf("kill %d after %v: %d of %d changed files new", i, delay, n, len(changing))
			if _, err := ReadManifest(root); err != nil {
				t.Errorf("manifest unreadable after kill: %v", err)
			}
		}
	})

	// Whatever was interrupted, undeploy still removes everything.
	if _, err := Uninstall(ctx, root, nil); err != nil {
		t.Fatal(err)
	}
	if left := listTree(t, root); len(left) != 0 {
		t.Errorf("after undeploy the root still holds %v", sortedKeys(left))
	}
}
