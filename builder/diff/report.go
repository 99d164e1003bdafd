package diff

import (
	"fmt"
	"io"
	"strings"
)

// Report is the result of comparing two things.
type Report struct {
	// A and B name the two sides (file names or labels).
	A, B string
	// Kind is the comparison used: "igvm", "measurement", "verity-info",
	// "disk", "tar", "text", "binary", "dir" or "record".
	Kind string
	// Items are the differences in the order a reader should see them:
	// the most structural (headers) first.
	Items []Item
	// Omitted counts differences not listed to keep the report short.
	Omitted int
}

// Same reports whether no difference was found.
func (r *Report) Same() bool { return len(r.Items) == 0 && r.Omitted == 0 }

// Item is one difference.
type Item struct {
	// Where locates the difference, e.g. "header[3] PAGE_DATA gpa" or
	// "entry etc/hostname: mode".
	Where string `json:"where"`
	// A and B are the values on each side; "" with Missing set means absent.
	A string `json:"a,omitempty"`
	B string `json:"b,omitempty"`
	// Detail is optional multi-line context: a hexdump or a unified diff.
	Detail string `json:"detail,omitempty"`
	// Sub is a nested report, e.g. the structured diff of one file of two
	// directories.
	Sub *Report `json:"sub,omitempty"`
}

// add appends an item unless the report already lists max items.
func (r *Report) add(max int, it Item) {
	if max > 0 && len(r.Items) >= max {
		r.Omitted++
		return
	}
	r.Items = append(r.Items, it)
}

// WriteText renders the report for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	r.text(&b, "")
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) text(b *strings.Builder, indent string) {
	if r.Same() {
		fmt.Fprintf(b, "%s%s and %s are identical (%s)\n", indent, r.A, r.B, r.Kind)
		return
	}
	fmt.Fprintf(b, "%s--- %s\n%s+++ %s\n%s(%s: %d difference(s))\n", indent, r.A, indent, r.B, indent, r.Kind, len(r.Items)+r.Omitted)
	for _, it := range r.Items {
		switch {
		case it.A != "" || it.B != "":
			fmt.Fprintf(b, "%s%s:\n%s  - %s\n%s  + %s\n", indent, it.Where, indent, orNone(it.A), indent, orNone(it.B))
		default:
			fmt.Fprintf(b, "%s%s\n", indent, it.Where)
		}
		if it.Detail != "" {
			for _, l := range strings.Split(strings.TrimRight(it.Detail, "\n"), "\n") {
				fmt.Fprintf(b, "%s    %s\n", indent, l)
			}
		}
		if it.Sub != nil {
			it.Sub.text(b, indent+"    ")
		}
	}
	if r.Omitted > 0 {
		fmt.Fprintf(b, "%s... and %d more difference(s) not listed\n", indent, r.Omitted)
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
