package modes

import (
	"errors"
	"fmt"
	"strings"
)

// ExitError is how a run mode (Once, Exec) ends other than with success:
// the process's exit code, and why.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit code %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the process exit code for a run mode's error: 0 for nil,
// the code of an *ExitError, else 1.
func ExitCode(err error) int {
	var ee *ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.Code
	}
	return 1
}

// SyncFailed is a once run that did not write every file: the secrets
// that failed, in config order, with their last errors, or a run cut
// short (a signal, a cancelled context).
type SyncFailed struct {
	Failed      []Failure
	Interrupted bool
}

func (e *SyncFailed) Error() string {
	names := make([]string, len(e.Failed))
	for i, f := range e.Failed {
		names[i] = f.Secret
	}
	msg := fmt.Sprintf("%d secrets not written", len(e.Failed))
	if len(names) > 0 {
		msg += ": " + strings.Join(names, ", ")
	}
	if e.Interrupted {
		msg += " (interrupted)"
	}
	return msg
}
