// Package jobs is the secret sync domain: each configured secret is a job
// whose pipeline fetches its data from a Source (source/kv), renders it
// (render), writes its file (files) and tells the application (notify).
// A dry run is the same pipeline with a side-effect-free fetch and a
// planner in the write slot. The run modes that drive it are in modes.
package jobs

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/files"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/notify"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/render"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/source"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/status"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
)

// Recorder receives sync metrics (*metrics.Metrics).
type Recorder interface {
	FetchDone(secret, vaultPath string, result metrics.Result, d time.Duration)
	Error(secret, vaultPath string, stage metrics.Stage)
	FileWritten(secret string)
	LastSuccess(secret string, t time.Time)
	Forget(secret, vaultPath string)
	// Init creates a secret's counters at zero, so that rate() and
	// increase() see their first event.
	Init(secret, vaultPath string)
	// RefreshInterval, VersionCreated and CertificateExpiry export what
	// tells an operator a secret is about to be stale or expire; the zero
	// time drops the series (KV v1, a file without a certificate).
	RefreshInterval(secret string, d time.Duration)
	VersionCreated(secret string, t time.Time)
	CertificateExpiry(secret string, t time.Time)
}

// StatusSink receives per-secret readiness (*status.Tracker).
type StatusSink interface {
	Configure(secrets []status.SecretInfo)
	Succeeded(name string, at time.Time, version int)
	Failed(name string, at time.Time, errText string)
	// LeaseExpiry records a leased secret's lease expiry.
	LeaseExpiry(name string, at time.Time)
	// Next records what the source does next on its own, and when.
	Next(name, action string, at time.Time)
	// Changed records that the file got new content.
	Changed(name string, at time.Time)
	// Certificate records the file's first certificate ("" when none).
	Certificate(name, serial string, notAfter time.Time)
}

// ChangeNotifier hears of every destination whose content really changed
// (*notify.Notifier): it runs the secret's change actions.
type ChangeNotifier interface {
	Changed(c notify.Change)
}

// ValueHolder keeps every secret's current values (*notify.Notifier: the
// output of an exec action with log_output is scrubbed of all of them).
type ValueHolder interface {
	Hold(secret string, values []logging.Redacted)
	Forget(secret string)
}

// DataObserver sees the data of every successful read (exec mode keeps the
// data of the secrets that become the child's environment). It must not
// keep a reference to data beyond what it needs, and must be quick.
type DataObserver interface {
	Observed(secret string, data map[string]any)
}

// Renderer turns a secret's data into file content (*render.Renderer).
type Renderer interface {
	RenderLease(data map[string]any, lease *render.Lease) ([]byte, error)
}

// SyncError is a failed sync: which secret, which stage, why. Its text
// never holds a secret value (Vault, render and file errors don't carry
// them; the renderer scrubs its own).
type SyncError struct {
	Secret string
	Stage  metrics.Stage
	Err    error
}

func (e *SyncError) Error() string { return fmt.Sprintf("secret %s: %s: %v", e.Secret, e.Stage, e.Err) }
func (e *SyncError) Unwrap() error { return e.Err }

// IsPermanent reports whether a sync error cannot succeed until the config
// changes, so retrying it at once only repeats it: a render error (a
// missing key, a NUL byte in an env file) or a read that does not fit its
// mount (vault.ErrConfig: a version pin on KV v1, a mount that is not KV).
// A destination a dry run cannot inspect (a link, a directory, permission
// denied) is permanent too. A missing secret (an init container may start
// before the secret is seeded), a denied read, a rejected login and
// network trouble are not.
func IsPermanent(err error) bool {
	var se *SyncError
	if errors.As(err, &se) && se.Stage == metrics.StageRender {
		return true
	}
	var dest destError
	return errors.Is(err, vault.ErrConfig) || errors.As(err, &dest)
}

// State is one job's memory of its last runs.
type State struct {
	LastSuccess time.Time
	LastError   string
	LastErrorAt time.Time
	Version     int      // Vault version last written
	Checksum    [32]byte // SHA-256 of the content last written or confirmed (kept in memory only)
	Writes      int      // files actually (re)written
	Failures    int      // consecutive failed syncs
}

// Job is one configured secret with its source, compiled renderer and
// state.
type Job struct {
	Secret   config.Secret
	source   Source
	renderer Renderer
	outputs  []output // a files: set's files, in order (renderer is then nil)

	mu    sync.Mutex
	state State
}

// State returns a copy of the job's state.
func (j *Job) State() State {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.state
}

// Syncer runs the fetch -> render -> write -> notify pipeline for jobs.
// It is safe for concurrent use.
type Syncer struct {
	source  Source
	rec     Recorder
	status  StatusSink
	tracer  trace.Tracer
	log     *zap.Logger
	notify  ChangeNotifier
	hold    ValueHolder // the Notifier's, kept by WithoutNotifier
	observe []DataObserver
	tmpl    *render.Set
	// batch, when set, takes the writes and leaves their directory fsync
	// to its Sync (once).
	batch *files.Batch
	dirs  *dirMutexes // shared by the copies (WithBatch, WithoutNotifier)
}

// SyncerOptions configure NewSyncer; nil fields get harmless defaults
// (NewSyncer without fx). In fx, every one comes from the graph.
type SyncerOptions struct {
	fx.In

	Recorder Recorder
	Status   StatusSink
	Tracer   trace.TracerProvider
	// Notifier is told of content changes (run and exec; once has
	// notify.Discard: it writes files before the application starts).
	Notifier ChangeNotifier
	// Observers see every successful read's data (value group
	// "data_observers": exec mode's child environment).
	Observers []DataObserver `group:"data_observers"`
	// Templates are the renderers the config loader compiled (nil: each
	// job compiles its own).
	Templates *render.Set
}

// NewSyncer returns a Syncer fetching from src (Route for several).
func NewSyncer(src Source, log *zap.Logger, o SyncerOptions) *Syncer {
	s := &Syncer{source: src, rec: o.Recorder, status: o.Status, log: log,
		notify: o.Notifier, observe: o.Observers, tmpl: o.Templates, dirs: &dirMutexes{}}
	if h, ok := o.Notifier.(ValueHolder); ok {
		s.hold = h
	}
	if s.tmpl == nil {
		s.tmpl = render.NewSet()
	}
	if s.rec == nil {
		s.rec = metrics.Discard{}
	}
	if s.status == nil {
		s.status = status.Discard{}
	}
	tp := o.Tracer
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	s.tracer = tp.Tracer("github.com/secrets-sidecar/secrets-sidecar/jobs")
	return s
}

// WithoutNotifier returns a Syncer that shares this one's reads and
// outlets but tells no ChangeNotifier: exec mode's initial sync writes the
// files the child starts from, so there is nobody to tell yet.
func (s *Syncer) WithoutNotifier() *Syncer {
	c := *s
	c.notify = nil
	return &c
}

// Forget drops a removed secret's held values: they are no longer the
// sidecar's to scrub from action output.
func (s *Syncer) Forget(secret string) {
	if s.hold != nil {
		s.hold.Forget(secret)
	}
}

// WithBatch returns a Syncer that shares this one's reads and outlets
// but writes through b: the renames become durable in b.Sync, one
// directory fsync per directory instead of one per file.
func (s *Syncer) WithBatch(b *files.Batch) *Syncer {
	c := *s
	c.batch = b
	return &c
}

// NewJob takes the secret's compiled output from the Templates set (the
// config loader has already parsed it, so an error here is unexpected).
func (s *Syncer) NewJob(sec config.Secret) (*Job, error) {
	if !s.source.Serves(&sec) {
		return nil, fmt.Errorf("secret %s: no source serves it", sec.Name)
	}
	j := &Job{Secret: sec, source: s.source}
	if sec.HasFiles() {
		for i := range sec.Files {
			o := sec.Output(i)
			r, err := s.tmpl.Renderer(&o)
			if err != nil {
				return nil, fmt.Errorf("secret %s: files[%d]: %w", sec.Name, i, err)
			}
			j.outputs = append(j.outputs, output{file: sec.Files[i], renderer: r})
		}
	} else {
		r, err := s.tmpl.Renderer(&sec)
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", sec.Name, err)
		}
		j.renderer = r
	}
	s.rec.Init(sec.Name, sec.VaultPath())
	s.rec.RefreshInterval(sec.Name, sec.RefreshInterval.Duration)
	return j, nil
}

// output is one file of a files: set and its compiled output.
type output struct {
	file     config.OutputFile
	renderer Renderer
}

// Sync runs one attempt for j and records the outcome in metrics, status,
// the job's state and a trace span. The error is a *SyncError.
func (s *Syncer) Sync(ctx context.Context, j *Job) error {
	sec := &j.Secret
	vaultPath := sec.VaultPath()
	ctx, span := s.tracer.Start(ctx, "sync", trace.WithAttributes(
		attribute.String("secret.name", sec.Name),
		attribute.String("vault.path", vaultPath),
	))
	defer span.End()

	write := files.Write
	if s.batch != nil {
		write = s.batch.Write
	}
	version, res, checksum, serr := s.pipeline(ctx, j, source.Live, write, s.writeSetLive)
	written := res.Written
	at := time.Now()
	if serr != nil {
		span.SetAttributes(attribute.String("result", string(metrics.ResultError)), attribute.String("stage", string(serr.Stage)))
		span.SetStatus(codes.Error, string(serr.Stage)+" failed")
		span.RecordError(serr)
		s.rec.Error(sec.Name, vaultPath, serr.Stage)
		s.status.Failed(sec.Name, at, serr.Error())
		j.mu.Lock()
		j.state.LastError, j.state.LastErrorAt = serr.Error(), at
		j.state.Failures++
		failures := j.state.Failures
		j.mu.Unlock()
		// The first failure of a streak is the news; retries log at debug,
		// with a reminder every tenth so a long outage stays visible.
		log := s.log.Debug
		if failures == 1 || failures%10 == 0 {
			log = s.log.Error
		}
		log("secret sync failed", zap.String("secret_name", sec.Name), zap.String("vault_path", vaultPath),
			zap.String("stage", string(serr.Stage)), zap.Int("consecutive_failures", failures), zap.Error(serr.Err))
		return serr
	}
	span.SetAttributes(attribute.String("result", string(metrics.ResultSuccess)), attribute.Bool("file.written", written))
	s.rec.LastSuccess(sec.Name, at)
	s.rec.VersionCreated(sec.Name, res.created)
	s.rec.CertificateExpiry(sec.Name, res.certs.earliest)
	if written {
		s.rec.FileWritten(sec.Name)
	}
	s.status.Succeeded(sec.Name, at, version)
	if res.lease != nil {
		s.status.LeaseExpiry(sec.Name, res.lease.Expires)
	}
	if res.next != "" || res.lease != nil {
		s.status.Next(sec.Name, res.next, res.nextAt)
	}
	if res.ContentChanged || res.Created {
		s.status.Changed(sec.Name, at)
	}
	s.status.Certificate(sec.Name, res.certs.leafSerial, res.certs.leafNotAfter)
	s.announce(ctx, sec, res)
	j.mu.Lock()
	recovered := j.state.Failures > 0
	j.state.LastSuccess, j.state.Version, j.state.Checksum, j.state.Failures = at, version, checksum, 0
	if written {
		j.state.Writes++
	}
	j.mu.Unlock()
	fields := []zap.Field{zap.String("secret_name", sec.Name), zap.String("vault_path", vaultPath),
		zap.Int("vault_version", version), zap.String("destination", destinationText(sec))}
	switch {
	case written:
		s.log.Info("secret file written", fields...)
	case recovered:
		s.log.Info("secret sync recovered; file already up to date", fields...)
	default:
		s.log.Debug("secret file up to date", fields...)
	}
	return nil
}

// announce tells the notifier of a destination whose content really
// changed, or that was created for a secret with on_start. A write that
// only repaired mode or owner, or found the file up to date, is no news.
func (s *Syncer) announce(ctx context.Context, sec *config.Secret, res writeResult) {
	onStart := sec.OnStart != nil && *sec.OnStart
	news := res.ContentChanged || (res.Created && onStart)
	if s.notify == nil || !news {
		return
	}
	paths := []string{sec.Destination}
	if sec.HasFiles() {
		paths = res.paths // one change per file of the set
	}
	for _, p := range paths {
		s.notify.Changed(notify.Change{
			Secret: sec.Name, Destination: p, Created: res.Created, Actions: sec.OnChange,
			Link: trace.SpanContextFromContext(ctx), Redact: notify.Values(res.data),
		})
	}
}

// writeResult is what the write stage did, with the data it rendered (for
// scrubbing the change actions' output; dropped once announced).
type writeResult struct {
	files.Result
	data    map[string]any
	created time.Time // the KV v2 version's created_time
	lease   *source.Lease
	certs   certs  // the content's PEM certificates
	next    string // the source's own next action (source.Data.NextAction)
	nextAt  time.Time
	paths   []string // a files: set's paths whose content changed (or were created)
}

// pipeline fetches j's data (in mode), renders it and hands the file to
// write: files.Write or a Batch for a sync, a planner for a dry run, which
// then also skips the data observers.
func (s *Syncer) pipeline(ctx context.Context, j *Job, mode source.Mode, write func(files.File) (files.Result, error),
	writeSet setWriter,
) (version int, res writeResult, checksum [32]byte, serr *SyncError) {
	sec := &j.Secret
	fail := func(stage metrics.Stage, err error) (int, writeResult, [32]byte, *SyncError) {
		return 0, writeResult{}, [32]byte{}, &SyncError{Secret: sec.Name, Stage: stage, Err: err}
	}

	fctx, fspan := s.tracer.Start(ctx, "fetch")
	start := time.Now()
	data := s.reuse(fctx, j, mode)
	var err error
	if data == nil {
		data, err = j.source.Fetch(fctx, sec, mode)
	}
	if mode == source.Live {
		s.rec.FetchDone(sec.Name, sec.VaultPath(), resultLabel(err), time.Since(start))
	}
	endSpan(fspan, err)
	if err != nil {
		stage := metrics.StageFetch
		if vault.IsAuthError(err) {
			stage = metrics.StageAuth
		}
		return fail(stage, err)
	}
	if mode == source.Live {
		for _, o := range s.observe {
			o.Observed(sec.Name, data.Values)
		}
		if s.hold != nil {
			s.hold.Hold(sec.Name, notify.Values(data.Values))
		}
	}
	if len(j.outputs) > 0 {
		return s.setStage(ctx, j, data, writeSet)
	}

	_, rspan := s.tracer.Start(ctx, "render")
	content, err := j.renderer.RenderLease(data.Values, (*render.Lease)(data.Lease))
	endSpan(rspan, err)
	if err != nil {
		return fail(metrics.StageRender, err)
	}

	_, wspan := s.tracer.Start(ctx, "write", trace.WithAttributes(attribute.String("file.path", sec.Destination)))
	file := files.File{
		Path: sec.Destination, Content: content, Mode: sec.Mode.FileMode, DirMode: sec.DirMode.FileMode,
		UID: sec.Owner, GID: sec.Group,
	}
	wres, err := write(file)
	wspan.SetAttributes(attribute.Bool("file.written", wres.Written), attribute.Bool("file.content_changed", wres.ContentChanged))
	endSpan(wspan, err)
	if err != nil {
		return fail(metrics.StageWrite, err)
	}
	cs := certificates(content)
	if cs.malformed > 0 {
		s.log.Debug("PEM CERTIFICATE blocks that do not parse are left out of certificate_expiry_timestamp_seconds",
			zap.String("secret_name", sec.Name), zap.Int("blocks", cs.malformed))
	}
	return data.Version, writeResult{Result: wres, data: data.Values, created: data.Created, certs: cs, lease: data.Lease,
			next: data.NextAction, nextAt: data.NextAt},
		sha256.Sum256(content), nil
}

func resultLabel(err error) metrics.Result {
	if err != nil {
		return metrics.ResultError
	}
	return metrics.ResultSuccess
}

func endSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, "failed")
		span.RecordError(err)
	}
	span.End()
}
