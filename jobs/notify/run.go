package notify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

// maxErrorLen bounds an error text in a Report and a span.
const maxErrorLen = 1024

// maxBackoff caps the wait between attempts.
const maxBackoff = 30 * time.Second

// runner is a resolved action.
type runner interface {
	kind() string
	// target is the summary that may be logged: never a value.
	target() string
	// run makes one attempt; the fields describe it for the log line.
	run(ctx context.Context, n *Notifier, in input) ([]zap.Field, error)
}

// resolved is a runner with the key that makes equal actions one.
type resolved struct {
	key string
	act runner
}

// input is what an attempt knows about its batch.
type input struct {
	secrets, files []string
	scrub          *scrubber
}

// permanentError is an action that no retry can fix (its config cannot be
// resolved).
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// run runs one batch: each step in turn, each with its retries.
func (n *Notifier) run(w *window, s settings) {
	steps, _, values := w.plan(n.hooks)
	scrub := newScrubber(values)
	for i, st := range steps {
		if n.ctx.Err() != nil {
			n.log.Warn("stopped before change actions ran", zap.Int("skipped_actions", len(steps)-i))
			return
		}
		n.runStep(st, s.attempts, scrub)
	}
}

func (n *Notifier) runStep(st step, attempts int, scrub *scrubber) {
	kind, target := st.act.kind(), st.act.target()
	links := make([]trace.Link, 0, len(st.links))
	for _, l := range st.links {
		links = append(links, trace.Link{SpanContext: l})
	}
	ctx, span := n.tracer.Start(n.ctx, "notify.action", trace.WithLinks(links...), trace.WithAttributes(
		attribute.String("action.kind", kind), attribute.String("action.target", target)))
	defer span.End()

	in := input{secrets: st.secrets, files: st.files, scrub: scrub}
	start := n.clock.Now()
	var (
		fields []zap.Field
		err    error
		tries  int
	)
	for tries = 1; ; tries++ {
		fields, err = st.act.run(ctx, n, in)
		var perm permanentError
		if err == nil || tries >= attempts || errors.As(err, &perm) || ctx.Err() != nil {
			break
		}
		wait := n.backoffFor(tries)
		n.log.Debug("change action attempt failed; retrying", zap.String("kind", kind), zap.String("target", target),
			zap.Int("attempt", tries), zap.Duration("retry_in", wait), zap.String("error", scrub.apply(err.Error())))
		if !n.sleepCtx(ctx, wait) {
			break
		}
	}
	d := n.clock.Since(start)
	rep := Report{Kind: kind, Target: target, Result: metrics.ResultSuccess, At: n.clock.Now(), Attempts: tries, Duration: d}
	span.SetAttributes(attribute.Int("action.attempts", tries))
	common := []zap.Field{zap.String("kind", kind), zap.String("target", target), zap.Strings("secrets", st.secrets),
		zap.Int("attempts", tries), zap.Duration("duration", d)}
	if err != nil {
		rep.Result, rep.Error = metrics.ResultError, truncate(scrub.apply(err.Error()), maxErrorLen)
		span.SetAttributes(attribute.String("action.result", string(metrics.ResultError)))
		span.SetStatus(codes.Error, rep.Error)
		n.log.Error("change action failed", append(append(common, fields...), zap.String("error", rep.Error))...)
	} else {
		span.SetAttributes(attribute.String("action.result", string(metrics.ResultSuccess)))
		n.log.Info("change action succeeded", append(common, fields...)...)
	}
	// The status first: whoever sees the run counted (a test, or /ready
	// read right after a scrape) finds it in the status too.
	for _, s := range st.secrets {
		n.status.ActionDone(s, rep)
	}
	n.rec.ActionDone(kind, rep.Result, d)
}

// backoffFor is the wait after the given failed attempt: Backoff doubled
// per attempt, capped, with ±50% jitter.
func (n *Notifier) backoffFor(attempt int) time.Duration {
	d := n.backoff
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	return d/2 + rand.N(d+1)
}

// sleepCtx waits d on the clock; false when ctx ended first.
func (n *Notifier) sleepCtx(ctx context.Context, d time.Duration) bool {
	t := n.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return true
	case <-ctx.Done():
		return false
	}
}

func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}

// hookRunner runs a Hook like an action.
type hookRunner struct {
	h     Hook
	batch Batch
}

func (r hookRunner) kind() string {
	if nm, ok := r.h.(interface{ Name() string }); ok && nm.Name() != "" {
		return nm.Name()
	}
	return KindHook
}

func (r hookRunner) target() string { return r.kind() }

func (r hookRunner) run(ctx context.Context, _ *Notifier, _ input) ([]zap.Field, error) {
	if err := r.h.Notify(ctx, r.batch); err != nil {
		return nil, fmt.Errorf("hook %s: %w", r.kind(), err)
	}
	return nil, nil
}

type nopRecorder struct{}

func (nopRecorder) ActionDone(string, metrics.Result, time.Duration) {}

type nopStatus struct{}

func (nopStatus) ActionDone(string, Report) {}
