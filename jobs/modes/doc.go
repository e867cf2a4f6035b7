// Package modes holds the run modes, each composed in cmd/ from the same
// components and run there by one runner: the Daemon (run: scheduled
// jobs and reloads, in the app's lifecycle), Once (once: every secret a
// single time, for init containers; --dry-run through the pipeline's
// planner) and Exec (exec: the process supervisor). Once and Exec return
// an *ExitError from Run. The pipeline they drive is package jobs.
package modes
