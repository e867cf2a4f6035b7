// Package httpserver serves /health, /ready and /metrics on
// SIDECAR_HTTP_ADDR. An empty address disables it: the module then does
// nothing.
//
//   - GET /health: 200 "ok" while the process runs.
//   - GET /ready: 200 when every configured secret has been written, else
//     503; the body is the readiness snapshot as JSON (per secret: name,
//     vault_path, ready, last_success, last_error; never a value).
//   - GET /metrics: the private Prometheus registry.
package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// Server timeouts: a slow or idle client cannot hold a connection for long.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 60 * time.Second
)

// Readiness is what /ready reports (*status.Tracker): whether every
// configured secret is ready, and the report that says why, served as
// JSON; both from one reading.
type Readiness interface {
	ReadyReport() (ready bool, report any)
}

// Module provides the *Server and runs it with the app when
// config.Env.HTTPAddr is set. It needs a Readiness (the status tracker,
// bound with fx.As) and the metrics' *prometheus.Registry.
var Module = fx.Module("httpserver",
	fx.Provide(New),
	fx.Invoke(func(*Server) {}),
)

// Params are New's inputs.
type Params struct {
	fx.In

	Lifecycle fx.Lifecycle
	Env       config.Env
	Log       *zap.Logger
	Registry  *prometheus.Registry
	Ready     Readiness
}

// New builds the server for Env.HTTPAddr and ties it to the lifecycle; with
// an empty address it returns a server that is never started.
func New(p Params) *Server {
	if p.Env.HTTPAddr == "" {
		p.Log.Info("HTTP server disabled (SIDECAR_HTTP_ADDR is empty)")
		return &Server{}
	}
	s := NewServer(p.Env.HTTPAddr, Handler(p.Ready, p.Registry, p.Log), p.Log)
	p.Lifecycle.Append(fx.StartStopHook(s.Start, s.Stop))
	return s
}

// Handler routes /health, /ready and /metrics.
func Handler(ready Readiness, metrics prometheus.Gatherer, log *zap.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		ok, report := ready.ReadyReport()
		body, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			log.Error("/ready: cannot encode the readiness state", zap.Error(err))
			http.Error(w, "cannot encode the readiness state", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if ok {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write(append(body, '\n'))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{
		ErrorLog:      zap.NewStdLog(log.Named("metrics")),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	return mux
}

// Server is an HTTP server bound in Start and shut down in Stop.
type Server struct {
	addr string
	log  *zap.Logger
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// NewServer returns a server for addr (host:port); nothing listens before
// Start.
func NewServer(addr string, h http.Handler, log *zap.Logger) *Server {
	return &Server{
		addr: addr,
		log:  log,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: ReadHeaderTimeout,
			ReadTimeout:       ReadTimeout,
			WriteTimeout:      WriteTimeout,
			IdleTimeout:       IdleTimeout,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          zap.NewStdLog(log.Named("http")),
		},
	}
}

// Addr is the address the server listens on once started (with the real
// port when the configured one was 0); "" for a disabled server.
func (s *Server) Addr() string {
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.addr
}

// Start binds the listener (an address in use fails here, naming it) and
// serves in a goroutine.
func (s *Server) Start(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("HTTP server (SIDECAR_HTTP_ADDR) cannot listen on %s: %w", s.addr, err)
	}
	s.ln, s.done = ln, make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("HTTP server stopped serving", zap.String("addr", ln.Addr().String()), zap.Error(err))
		}
	}()
	s.log.Info("HTTP server listening", zap.String("addr", ln.Addr().String()))
	return nil
}

// Stop shuts the server down gracefully within ctx, then closes what is
// left.
func (s *Server) Stop(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
		err = fmt.Errorf("HTTP server shutdown: %w", err)
	}
	<-s.done
	return err
}
