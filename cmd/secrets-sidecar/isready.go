package main

import (
	"fmt"
	"time"
)

// cmdIsReady answers Docker's HEALTHCHECK from the status file.
func cmdIsReady(g globals, _ string, _ time.Duration) int {
	fmt.Fprintln(g.stderr, "isready: not available in this build yet")
	return exitFailure
}
