package graph

// Artifact is a step output that a build materialises into the output
// directory.
type Artifact struct {
	// Step produces the artifact.
	Step *Step
	// Output is one of Step.Outputs.
	Output string
	// As is the slash path under the output directory, e.g.
	// "kata-containers.img" or "agent-install".
	As string
}
