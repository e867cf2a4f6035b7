// Package logtest captures the production logger's output for tests that
// assert on log lines (and on what must never appear in them).
package logtest

import (
	"bytes"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

// Buffer collects log output; safe to read while loggers write to it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// New returns the production JSON logger at debug level writing to a
// Buffer; the logs are printed when the test fails.
func New(tb testing.TB) (*zap.Logger, *Buffer) {
	tb.Helper()
	buf := &Buffer{}
	log, err := logging.NewLogger(logging.Options{Level: "debug", Format: "json"}, buf)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("logs:\n%s", buf.String())
		}
	})
	return log, buf
}
