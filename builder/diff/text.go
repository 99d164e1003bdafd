package diff

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

const (
	// maxTextSize is the largest file given a line diff.
	maxTextSize = 64 << 10
	// maxTextLines bounds the LCS table (lines A × lines B).
	maxTextLines = 4000
	// contextLines is the unified diff context.
	contextLines = 3
)

// isText reports whether p looks like small text worth a line diff.
func isText(p []byte) bool {
	return len(p) <= maxTextSize && utf8.Valid(p) && bytes.IndexByte(p, 0) < 0
}

// unified returns a unified diff of two texts, or "" when they are equal.
func unified(nameA, nameB string, a, b []byte) string {
	la, lb := splitLines(a), splitLines(b)
	if len(la) > maxTextLines || len(lb) > maxTextLines {
		return fmt.Sprintf("(%d and %d lines: too long for a line diff)\n", len(la), len(lb))
	}
	ops := lineOps(la, lb)
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", nameA, nameB)
	// Group the edit script into hunks with contextLines of context.
	i := 0
	for i < len(ops) {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		start := max(i-contextLines, 0)
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			// Run of equal lines: end the hunk if it is long enough.
			j := end
			for j < len(ops) && ops[j].kind == ' ' {
				j++
			}
			if j == len(ops) || j-end > 2*contextLines {
				end = min(end+contextLines, len(ops))
				break
			}
			end = j
		}
		h := ops[start:end]
		aStart, bStart := h[0].a, h[0].b
		var na, nb int
		for _, o := range h {
			if o.kind != '+' {
				na++
			}
			if o.kind != '-' {
				nb++
			}
		}
		fmt.Fprintf(&sb, "@@ -%d,%d +%d,%d @@\n", aStart+1, na, bStart+1, nb)
		for _, o := range h {
			var line string
			if o.kind == '+' {
				line = lb[o.b]
			} else {
				line = la[o.a]
			}
			sb.WriteByte(o.kind)
			sb.WriteString(line)
			if !strings.HasSuffix(line, "\n") {
				sb.WriteString("\n\\ No newline at end of file\n")
			}
		}
		i = end
	}
	return sb.String()
}

type lineOp struct {
	kind byte // ' ', '-' or '+'
	a, b int  // line indexes in A and B at this point
}

// lineOps computes a shortest edit script by longest common subsequence.
func lineOps(a, b []string) []lineOp {
	n, m := len(a), len(b)
	// lcs[i*(m+1)+j] = LCS length of a[i:], b[j:].
	lcs := make([]int32, (n+1)*(m+1))
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i*(m+1)+j] = lcs[(i+1)*(m+1)+j+1] + 1
			} else {
				lcs[i*(m+1)+j] = max(lcs[(i+1)*(m+1)+j], lcs[i*(m+1)+j+1])
			}
		}
	}
	var ops []lineOp
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, lineOp{' ', i, j})
			i++
			j++
		case i < n && (j == m || lcs[(i+1)*(m+1)+j] >= lcs[i*(m+1)+j+1]):
			ops = append(ops, lineOp{'-', i, j})
			i++
		default:
			ops = append(ops, lineOp{'+', i, j})
			j++
		}
	}
	return ops
}

func splitLines(p []byte) []string {
	if len(p) == 0 {
		return nil
	}
	s := string(p)
	var out []string
	for len(s) > 0 {
		k := strings.IndexByte(s, '\n')
		if k < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:k+1])
		s = s[k+1:]
	}
	return out
}
