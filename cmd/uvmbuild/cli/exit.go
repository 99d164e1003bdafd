package cli

import (
	"errors"
	"fmt"
)

// Exit codes, a contract for scripts and CI.
const (
	// ExitOK means success.
	ExitOK = 0
	// ExitFailed means a build failed or the input was bad.
	ExitFailed = 1
	// ExitUsage means the command line was malformed.
	ExitUsage = 2
	// ExitDiffers means two things compared (verify, diff, measure --expect,
	// compare-measurement) are different.
	ExitDiffers = 3
)

// ExitError carries an exit code through cobra's error return.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// usageError marks err as a command-line mistake (exit code 2).
func usageError(err error) error { return &ExitError{Code: ExitUsage, Err: err} }

// differsError marks a comparison that found a difference (exit code 3).
func differsError(err error) error { return &ExitError{Code: ExitDiffers, Err: err} }

// exitCode maps an error to the process exit code.
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return ExitFailed
}
