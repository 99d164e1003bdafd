package graph

import (
	"fmt"

	"github.com/opencontainers/go-digest"
)

// StepError is the failure of one step. Log is the step's log file (an
// absolute path), so that the CLI can print its tail.
type StepError struct {
	Step string
	Key  digest.Digest
	Log  string
	Err  error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step %s: %v", e.Step, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }
