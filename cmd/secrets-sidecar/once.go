package main

import "fmt"

// cmdOnce syncs every secret once (init container mode).
func cmdOnce(g globals, _ onceFlags) int {
	fmt.Fprintln(g.stderr, "once: not available in this build yet")
	return exitFailure
}
