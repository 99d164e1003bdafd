package progress

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// TailLines is how many lines of a failed action's log are shown.
const TailLines = 40

// Tail returns the last n lines of the file at path.
func Tail(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Logs can be large: read only the end.
	const window = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		if _, err := f.Seek(-window, io.SeekEnd); err != nil {
			return nil, err
		}
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines, sc.Err()
}

// formatDuration rounds for display.
func formatDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(100 * time.Millisecond).String()
	}
}

// line formats one event for the plain and tty renderers; "" for events
// that print nothing.
func line(e Event) string {
	switch e.Kind {
	case BuildStart:
		return fmt.Sprintf("build: %d actions", e.Total)
	case Start:
		if e.Description != "" {
			return fmt.Sprintf("[run]     %s: %s", e.Step, e.Description)
		}
		return fmt.Sprintf("[run]     %s", e.Step)
	case Cached:
		return fmt.Sprintf("[cached]  %s", e.Step)
	case Done:
		return fmt.Sprintf("[done]    %s (%s)", e.Step, formatDuration(e.Duration))
	case Failed:
		var b strings.Builder
		fmt.Fprintf(&b, "[FAILED]  %s (%s): %s", e.Step, formatDuration(e.Duration), firstLine(e.Error))
		if e.Log != "" {
			if tail, err := Tail(e.Log, TailLines); err == nil && len(tail) > 0 {
				fmt.Fprintf(&b, "\n  --- last %d lines of %s ---", len(tail), e.Log)
				for _, l := range tail {
					b.WriteString("\n  | " + l)
				}
			}
			fmt.Fprintf(&b, "\n  log: %s", e.Log)
		}
		return b.String()
	case Skipped:
		return fmt.Sprintf("[skipped] %s: %s", e.Step, e.Error)
	case Warning:
		return "warning: " + e.Error
	case BuildEnd:
		return summaryLine(e)
	}
	return ""
}

func summaryLine(e Event) string {
	s := Summary{}
	if e.Summary != nil {
		s = *e.Summary
	}
	status := "ok"
	if e.Error != "" {
		status = "FAILED"
	}
	return fmt.Sprintf("build %s: %d run, %d cached, %d failed, %d skipped in %s",
		status, s.Run, s.Cached, s.Failed, s.Skipped, formatDuration(e.Duration))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// Plain writes one line per event; it is the default when the output is
// not a terminal.
type Plain struct {
	mu sync.Mutex
	w  io.Writer
}

// NewPlain returns a plain renderer writing to w.
func NewPlain(w io.Writer) *Plain { return &Plain{w: w} }

// Event prints e.
func (p *Plain) Event(e Event) {
	l := line(e)
	if l == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, l)
}

// JSON writes one JSON object per event and line, for CI.
type JSON struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// NewJSON returns a JSON renderer writing to w.
func NewJSON(w io.Writer) *JSON {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &JSON{enc: enc}
}

// Event encodes e.
func (j *JSON) Event(e Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.enc.Encode(e)
}

// TTY renders a live view: finished events scroll as in Plain, and below
// them the running actions with their elapsed time, redrawn in place.
// Close stops the redraw.
type TTY struct {
	mu      sync.Mutex
	w       io.Writer
	running map[string]runningAction
	drawn   int // lines of the live block currently on screen
	width   int
	stop    chan struct{}
	stopped chan struct{}
	now     func() time.Time
}

type runningAction struct {
	desc  string
	start time.Time
}

// NewTTY returns a live renderer for a terminal of the given width
// (columns; 0 means 80).
func NewTTY(w io.Writer, width int) *TTY {
	if width <= 0 {
		width = 80
	}
	t := &TTY{w: w, running: map[string]runningAction{}, width: width,
		stop: make(chan struct{}), stopped: make(chan struct{}), now: time.Now}
	go t.tick()
	return t
}

func (t *TTY) tick() {
	defer close(t.stopped)
	tk := time.NewTicker(200 * time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tk.C:
			t.mu.Lock()
			t.redraw()
			t.mu.Unlock()
		}
	}
}

// Event records e and prints its line above the live block.
func (t *TTY) Event(e Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch e.Kind {
	case Start:
		t.running[e.Step] = runningAction{desc: e.Description, start: e.Time}
		t.redraw()
		return // shown in the live block
	case Done, Failed, Cached, Skipped:
		delete(t.running, e.Step)
	}
	if e.Kind == Cached {
		t.redraw()
		return // a live view stays readable: cached actions only count
	}
	t.clear()
	if l := line(e); l != "" {
		fmt.Fprintln(t.w, l)
	}
	t.redraw()
}

// clear erases the live block.
func (t *TTY) clear() {
	if t.drawn > 0 {
		fmt.Fprintf(t.w, "\x1b[%dA\x1b[J", t.drawn)
		t.drawn = 0
	}
}

func (t *TTY) redraw() {
	t.clear()
	ids := make([]string, 0, len(t.running))
	for id := range t.running {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return t.running[ids[i]].start.Before(t.running[ids[j]].start) })
	now := t.now()
	for _, id := range ids {
		r := t.running[id]
		l := fmt.Sprintf("  %6s  %s", now.Sub(r.start).Round(100*time.Millisecond), id)
		if r.desc != "" {
			l += ": " + r.desc
		}
		if r := []rune(l); len(r) > t.width-1 {
			l = string(r[:t.width-2]) + "…"
		}
		fmt.Fprintln(t.w, l)
		t.drawn++
	}
}

// Close stops the live redraw and erases the live block.
func (t *TTY) Close() error {
	close(t.stop)
	<-t.stopped
	t.mu.Lock()
	defer t.mu.Unlock()
	t.clear()
	return nil
}

var (
	_ Sink = (*Plain)(nil)
	_ Sink = (*JSON)(nil)
	_ Sink = (*TTY)(nil)
)
