package notify

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

// Kinds of action, as reported to the Recorder and the StatusSink.
const (
	KindSignal = "signal"
	KindExec   = "exec"
	KindHTTP   = "http"
	KindHook   = "hook"
)

// DefaultBackoff is the first wait between an action's attempts. The
// settings of the notify: block and of each action come from config.Load,
// which has filled in every default (config.DefaultDebounce, ...).
const DefaultBackoff = time.Second

// Change is one destination whose content really changed, or that was
// created and whose secret has on_start.
type Change struct {
	Secret      string
	Destination string
	// Created: the destination did not exist before.
	Created bool
	// Actions is the secret's resolved on_change list.
	Actions []config.Action
	// Link is the sync span that wrote the file; the action spans link to it.
	Link trace.SpanContext
	// Redact are the secret's values, scrubbed from exec output. They are
	// held only until the batch ran. See Values.
	Redact []logging.Redacted
}

// Batch is what one window collected, as a Hook sees it.
type Batch struct {
	// Secrets are the distinct secret names, sorted.
	Secrets []string
	// Files are the distinct destinations, sorted.
	Files []string
	// Created: every destination of the batch was created, none changed
	// (a first sync with on_start).
	Created bool
}

// Hook receives every batch at the end of its window, after the actions,
// and is run like an action (attempts, backoff, span, reports). It must
// return when ctx is done. A Hook with a Name() string method is reported
// under that kind instead of "hook".
type Hook interface {
	Notify(ctx context.Context, b Batch) error
}

// Recorder receives one call per action run (*metrics.Metrics): kind is
// signal, exec, http or a hook's kind; result success or error; d the
// run's duration, retries included.
type Recorder interface {
	ActionDone(kind string, result metrics.Result, d time.Duration)
}

// StatusSink receives each run's outcome for every secret that asked for
// the action (the status file's last_action).
type StatusSink interface {
	ActionDone(secret string, r Report)
}

// Report is the outcome of one action run. It never holds a secret value.
type Report struct {
	Kind string
	// Target is the summary: pid file path, process name, argv[0] or URL
	// without userinfo and query.
	Target   string
	Result   metrics.Result
	Error    string
	At       time.Time
	Attempts int
	Duration time.Duration
}

// Values flattens a secret's data (as read from Vault) into the values
// Change.Redact wants: every string, and the JSON text of every number,
// at any depth. Booleans and nulls are left out.
func Values(data map[string]any) []logging.Redacted {
	var out []logging.Redacted
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case string:
			out = append(out, logging.Redacted(x))
		case bool, nil:
		default:
			if s := jsonText(x); s != "" {
				out = append(out, logging.Redacted(s))
			}
		}
	}
	walk(data)
	return out
}
