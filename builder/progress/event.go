package progress

import (
	"time"
)

// Kind is what happened.
type Kind string

// Event kinds, in the order they occur for one action.
const (
	// BuildStart opens a build; Total is the number of actions.
	BuildStart Kind = "build-start"
	// Start: the action began running (a cache miss).
	Start Kind = "start"
	// Cached: the action's outputs were served from the cache.
	Cached Kind = "cached"
	// Done: the action ran and succeeded.
	Done Kind = "done"
	// Failed: the action ran and failed; Error and Log say why.
	Failed Kind = "failed"
	// Skipped: the action did not run because a dependency failed or the
	// build was stopped.
	Skipped Kind = "skipped"
	// Warning is a message for the user (e.g. a corrupt cache entry).
	Warning Kind = "warning"
	// BuildEnd closes a build; Summary holds the counts.
	BuildEnd Kind = "build-end"
)

// Event is one thing that happened during a build.
type Event struct {
	Kind Kind `json:"kind"`
	// Time is when it happened (for display only; never recorded in build
	// outputs).
	Time time.Time `json:"time"`
	// Step is the step ID and Description its description.
	Step        string `json:"step,omitempty"`
	Description string `json:"description,omitempty"`
	// Key is the step's key.
	Key string `json:"key,omitempty"`
	// Duration is the run time of a Done/Failed/Cached action, or the wall
	// time of the build for BuildEnd.
	Duration time.Duration `json:"durationNS,omitempty"`
	// Log is the path of the action's log file.
	Log string `json:"log,omitempty"`
	// Error is the failure message (Failed, Skipped, BuildEnd) or the
	// warning text (Warning).
	Error string `json:"error,omitempty"`
	// Total is the number of actions (BuildStart).
	Total int `json:"total,omitempty"`
	// Summary is set on BuildEnd.
	Summary *Summary `json:"summary,omitempty"`
}

// Summary counts the actions of a build by outcome.
type Summary struct {
	Run     int `json:"run"`
	Cached  int `json:"cached"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

// Sink receives events. Implementations must be safe for concurrent use;
// Event must not block for long (renderers buffer or drop).
type Sink interface {
	Event(e Event)
}

// Discard is a Sink that drops every event.
type Discard struct{}

// Event drops e.
func (Discard) Event(Event) {}

var _ Sink = Discard{}
