// Package notify runs change actions: it tells the application beside the
// sidecar that a secret file changed, by signal, by running a command or by
// an HTTP call, once per rotation however many files changed.
//
// # Use
//
//	n := notify.NewNotifier(notify.Settings{Notify: cfg.Notify}, notify.Options{Log: log, Recorder: m, Status: st})
//	_ = n.Start(ctx)               // starts the window loop; never blocks
//	n.Changed(notify.Change{...})  // after a write that really changed content
//	n.Update(newCfg.Notify)        // on config reload
//	_ = n.Stop(ctx)                // runs what is pending, bounded by ctx
//
// The sync pipeline calls Changed for each destination whose content really
// changed, or that was created when the secret has on_start, passing the
// secret's resolved on_change list. Changed only records the change: it
// never waits for an action, so a hung or failing action cannot slow
// syncing, and nothing here touches readiness.
//
// # Windows
//
// The first change opens a fixed window (notify.debounce, default 2s). A
// steady trickle of changes cannot postpone it: the window closes
// Debounce after its first change. At its end the changes are cut into a
// batch and, after a random splay of up to notify.splay, each distinct
// action of the batch runs once, in the order it first appears (secrets in
// the order they changed, each secret's list in order); then every Hook
// runs with the whole batch. Actions are distinct when their resolved
// values differ: signal HUP and SIGHUP to the same pid file are one action,
// so five secrets rotated together send one SIGHUP. Changes that arrive
// while a batch runs open the next window (measured from their own first
// change); nothing is lost, and since one goroutine runs every batch, an
// action never runs concurrently with itself or with another action.
//
// # Runs, retries and reports
//
// Each run of an action is tried up to notify.attempts times (default 3),
// backing off 1s, 2s, 4s... (each with ±50% jitter) in between; an action
// whose config cannot be resolved (an unknown signal name, say) fails at
// once. One run is one span ("notify.action", linked to the sync span of
// every change that asked for it; attributes action.kind, action.target,
// action.result, action.attempts), one Recorder.ActionDone call, one
// Status.ActionDone call per secret that asked for it, and one log line:
// info on success, error on failure, with the kind, the target summary,
// the attempts and the error. A target summary is the pid file path, the
// process name, the command's argv[0] or the URL without userinfo, query
// and fragment: never a secret value, header or argument.
//
// # Actions
//
// signal sends the named signal (SIGHUP or HUP) to the PID in pid_file,
// read no-follow, at most 64 bytes, exactly one integer from 1 to 2^31-1
// that is not the sidecar's own PID, and, unless root owns the file, a
// process whose real or effective uid owns the file (else an application
// could have a sidecar running as root signal any process it can see); or
// to every process whose
// /proc/<pid>/comm is the process name exactly, or whose argv[0] has that
// base name (never a substring; comm holds at most 15 bytes, so a longer
// name matches through argv[0]); never the sidecar itself, and only the top
// of each same-named tree: a match whose parent matches too (an nginx
// worker, a subshell a script forked, which a signal it does not handle
// would kill) is left out. PID 1 is a valid target (a shared PID namespace
// where the application is PID 1). No process found, or any target
// refusing (EPERM; for a pid file also ESRCH), fails the run; a process
// found by name that exits before the signal is skipped.
//
// exec runs the command (argv, no shell) in its own process group, stdin
// /dev/null, killing the whole group when its timeout (default 30s) ends.
// Its environment is the sidecar's without credentials: every VAULT_* and
// BAO_* variable is dropped except VAULT_ADDR (userinfo stripped),
// VAULT_NAMESPACE, VAULT_CACERT, VAULT_CAPATH, VAULT_TLS_SERVER_NAME,
// VAULT_SKIP_VERIFY and VAULT_CLIENT_TIMEOUT (and their BAO_ twins), as
// are OTEL_EXPORTER_OTLP_*HEADERS; it gets SIDECAR_CHANGED (the names of
// the secrets that asked for this action, sorted, comma-separated) and
// SIDECAR_CHANGED_FILES (their destinations). Its stdout and stderr are
// not logged, only their sizes (stdout_bytes, stderr_bytes): a command may
// print any file it can read, in forms no scrubbing recognises. With
// log_output they are logged, at most 4 KiB each (marked when cut), with
// every value the sidecar holds (every secret's values, given by Hold, the
// batch's Change.Redact, the dropped credentials and the CredentialSource's;
// in their raw, JSON-, Go- and base64-encoded forms and line by line)
// replaced by [REDACTED]; values shorter than 4 bytes are not scrubbed
// (they would turn every line into noise and protect nothing). A non-zero
// exit or a timeout fails the run. The supervisor (exec mode) logs none of
// its child's output: the child's stdio is the sidecar's own.
//
// http sends method (default POST) to url with a timeout (default 5s), the
// headers of headers and of headers_file (read no-follow at every run, at
// most 64 KiB, "Name: value" lines, blank and # lines ignored; its lines
// win), User-Agent secrets-sidecar and a JSON body
// {"secrets":[...],"files":[...]}. Only a 2xx succeeds; redirects are not
// followed (a 3xx fails: the headers may carry tokens). The response body
// is drained, at most 64 KiB, and never logged.
//
// # Hooks
//
// A Hook (the process supervisor of `secrets-sidecar exec`) receives every
// batch at the end of its window, after the actions, and is run like an
// action: same attempts and backoff, a span, a log line, reports under the
// kind "hook" (or the hook's Name() when it has one). A Hook must return
// when its ctx is done.
//
// # Stop
//
// Stop runs what is pending at once (the open window's changes, without
// waiting for the rest of the window or the splay) and what arrives while
// it does, with the time left in Stop's ctx: writes finished before
// shutdown are still announced. When ctx ends first, the running action
// is aborted (an exec's process group killed, a request cancelled), the
// rest is skipped and logged, and Stop returns an error. Changes after
// Stop returned are ignored.
package notify
