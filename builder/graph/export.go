package graph

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// GraphNode is one step in an exported graph.
type GraphNode struct {
	ID          string      `json:"id"`
	Description string      `json:"description,omitempty"`
	Kind        string      `json:"kind"`
	Version     string      `json:"version,omitempty"`
	Image       string      `json:"image,omitempty"`
	Outputs     []string    `json:"outputs"`
	Inputs      []GraphEdge `json:"inputs"`
}

// GraphEdge is one input of a step.
type GraphEdge struct {
	Name string `json:"name"`
	// Source is "path", "blob" or "step:<id>[/<output>]".
	Source string `json:"source"`
	// Path is a host input's path as the recipe gave it.
	Path string `json:"path,omitempty"`
	From string `json:"from,omitempty"`
}

// Describe returns the steps reachable from roots in build order.
func Describe(roots []*Step) ([]GraphNode, error) {
	g, err := newDAG(roots)
	if err != nil {
		return nil, err
	}
	var out []GraphNode
	for _, n := range g.nodes {
		s := n.step
		gn := GraphNode{ID: s.ID, Description: s.Meta.Description, Kind: s.Spec.Kind, Version: s.Spec.Version,
			Image: string(s.Spec.Image), Outputs: s.Outputs, Inputs: []GraphEdge{}}
		for _, in := range s.Inputs {
			e := GraphEdge{Name: in.Name, Source: inputSource(in, "path")}
			if in.From != nil {
				e.From = in.From.ID
			} else if in.Blob == nil {
				e.Path = in.Path
			}
			gn.Inputs = append(gn.Inputs, e)
		}
		out = append(out, gn)
	}
	return out, nil
}

// WriteGraph writes the graph of roots to w as "dot" (Graphviz), "mermaid"
// or "json".
func WriteGraph(w io.Writer, roots []*Step, format string) error {
	nodes, err := Describe(roots)
	if err != nil {
		return err
	}
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(struct {
			Steps []GraphNode `json:"steps"`
		}{nodes})
	case "dot":
		return writeDOT(w, nodes)
	case "mermaid":
		return writeMermaid(w, nodes)
	}
	return fmt.Errorf("unknown graph format %q: want dot, mermaid or json", format)
}

func writeDOT(w io.Writer, nodes []GraphNode) error {
	var b strings.Builder
	b.WriteString("digraph uvmbuild {\n\trankdir=LR;\n\tnode [shape=box];\n")
	for _, n := range nodes {
		fmt.Fprintf(&b, "\t%q [label=%q];\n", n.ID, n.ID+"\n"+n.Kind)
	}
	for _, n := range nodes {
		for _, e := range n.Inputs {
			if e.From != "" {
				fmt.Fprintf(&b, "\t%q -> %q [label=%q];\n", e.From, n.ID, e.Name)
			}
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeMermaid(w io.Writer, nodes []GraphNode) error {
	ids := map[string]string{}
	for i, n := range nodes {
		ids[n.ID] = fmt.Sprintf("s%d", i)
	}
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for _, n := range nodes {
		fmt.Fprintf(&b, "    %s[\"%s<br/>%s\"]\n", ids[n.ID], mermaidText(n.ID), mermaidText(n.Kind))
	}
	for _, n := range nodes {
		for _, e := range n.Inputs {
			if e.From != "" {
				fmt.Fprintf(&b, "    %s -->|%s| %s\n", ids[e.From], mermaidText(e.Name), ids[n.ID])
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mermaidText escapes characters that end a Mermaid label.
func mermaidText(s string) string {
	return strings.NewReplacer(`"`, "#quot;", "|", "#124;", "<", "#lt;", ">", "#gt;").Replace(s)
}
