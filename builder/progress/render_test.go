package progress_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uvmbuild/uvmbuild/builder/progress"
)

func failedEvent(t *testing.T) progress.Event {
	t.Helper()
	log := filepath.Join(t.TempDir(), "step.log")
	var b strings.Builder
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	os.WriteFile(log, []byte(b.String()), 0o644)
	return progress.Event{Kind: progress.Failed, Step: "uvm/image", Error: "exit status 1", Log: log, Duration: time.Second}
}

func TestPlainFailureShowsLogTail(t *testing.T) {
	var buf bytes.Buffer
	p := progress.NewPlain(&buf)
	e := failedEvent(t)
	p.Event(e)
	out := buf.String()
	if !strings.Contains(out, "[FAILED]  uvm/image (1s): exit status 1") {
		t.Errorf("no failure line:\n%s", out)
	}
	if !strings.Contains(out, "| line 61\n") || strings.Contains(out, "| line 60\n") || !strings.Contains(out, "| line 100") {
		t.Errorf("tail is not the last 40 lines:\n%s", out)
	}
	if !strings.Contains(out, "log: "+e.Log) {
		t.Errorf("no log path:\n%s", out)
	}
}

func TestPlainOneLinePerEvent(t *testing.T) {
	var buf bytes.Buffer
	p := progress.NewPlain(&buf)
	p.Event(progress.Event{Kind: progress.BuildStart, Total: 2})
	p.Event(progress.Event{Kind: progress.Start, Step: "a", Description: "do a"})
	p.Event(progress.Event{Kind: progress.Done, Step: "a", Duration: 1500 * time.Millisecond})
	p.Event(progress.Event{Kind: progress.Cached, Step: "b"})
	p.Event(progress.Event{Kind: progress.BuildEnd, Duration: 2 * time.Second, Summary: &progress.Summary{Run: 1, Cached: 1}})
	want := "build: 2 actions\n[run]     a: do a\n[done]    a (1.5s)\n[cached]  b\nbuild ok: 1 run, 1 cached, 0 failed, 0 skipped in 2s\n"
	if buf.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestJSONEvents(t *testing.T) {
	var buf bytes.Buffer
	j := progress.NewJSON(&buf)
	j.Event(progress.Event{Kind: progress.Start, Step: "a"})
	j.Event(progress.Event{Kind: progress.BuildEnd, Summary: &progress.Summary{Run: 1}})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	var e progress.Event
	if err := json.Unmarshal([]byte(lines[1]), &e); err != nil || e.Kind != progress.BuildEnd || e.Summary.Run != 1 {
		t.Errorf("decoded %+v, %v", e, err)
	}
}

func TestTTYLiveView(t *testing.T) {
	var buf bytes.Buffer
	tty := progress.NewTTY(&buf, 60)
	now := time.Now()
	tty.Event(progress.Event{Kind: progress.Start, Step: "uvm/rootfs", Description: "build the rootfs", Time: now})
	if !strings.Contains(buf.String(), "uvm/rootfs: build the rootfs") {
		t.Errorf("running action not shown:\n%q", buf.String())
	}
	tty.Event(progress.Event{Kind: progress.Done, Step: "uvm/rootfs", Duration: time.Second})
	tty.Event(progress.Event{Kind: progress.BuildEnd, Duration: time.Second, Summary: &progress.Summary{Run: 1}})
	tty.Close()
	out := buf.String()
	if !strings.Contains(out, "\x1b[1A\x1b[J") {
		t.Errorf("live block never erased:\n%q", out)
	}
	if !strings.Contains(out, "[done]    uvm/rootfs (1s)") || !strings.HasSuffix(out, "build ok: 1 run, 0 cached, 0 failed, 0 skipped in 1s\n") {
		t.Errorf("summary missing:\n%q", out)
	}
}
