// Package source holds what every kind of secret source hands the sync
// pipeline (fetch -> render -> write -> notify): the data to render and
// its metadata. The sources themselves live in sub-packages (kv); the
// pipeline (package jobs) declares the interface they implement.
package source

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

// Mode says what a fetch may cause besides reading.
type Mode int

const (
	// Live is a sync's fetch: a source may do what serving the secret
	// takes (a leased source mints or renews).
	Live Mode = iota
	// Peek is a dry run's fetch: no side effect anywhere. A source that
	// cannot answer without one (minting a lease) returns an error
	// wrapping ErrWouldChange instead.
	Peek
)

// ErrWouldChange is wrapped by a Peek that could only be answered by
// changing something in Vault.
var ErrWouldChange = fmt.Errorf("answering needs a change in Vault")

// Data is one fetch's result: the template's data and what is known about
// it. Printing it shows the metadata and the number of fields, never a
// value.
type Data struct {
	// Values are the secret's fields as the source returned them
	// (numbers as json.Number).
	Values map[string]any
	// Version is the KV v2 version read; 0 when the source has none.
	Version int
	// Created is when that version was created; zero when unknown.
	Created time.Time
	// Lease is the data's lease (leased sources; nil for KV): what the
	// template's lease functions tell, never the lease id.
	Lease *Lease
	// NextAction is what the source will do next on its own ("renew",
	// "replace", "read" for a static role) and NextAt when; empty for a
	// source that waits for the next refresh.
	NextAction string
	NextAt     time.Time
}

// Lease is what is known of a lease.
type Lease struct {
	Expires   time.Time     // as last granted; zero: unknown
	TTL       time.Duration // the TTL last granted
	Renewable bool
}

func (d Data) summary() string {
	created := ""
	if !d.Created.IsZero() {
		created = " Created:" + d.Created.UTC().Format(time.RFC3339)
	}
	lease := ""
	if d.Lease != nil {
		lease = fmt.Sprintf(" Lease:{TTL:%s Renewable:%t}", d.Lease.TTL, d.Lease.Renewable)
	}
	return fmt.Sprintf("source.Data{Version:%d%s%s Values:%s (%d fields)}", d.Version, created, lease, logging.RedactedText, len(d.Values))
}

// String implements fmt.Stringer.
func (d Data) String() string { return d.summary() }

// GoString implements fmt.GoStringer.
func (d Data) GoString() string { return d.summary() }

// Format implements fmt.Formatter: every verb prints the redacted summary.
func (d Data) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, d.summary()) }

// Wake carries the names of secrets whose source has new data for them
// (a lease replaced, a static role rotated): the daemon runs their jobs at
// once instead of at their next refresh. Wake never blocks; a name already
// waiting is not queued twice.
type Wake struct {
	mu      sync.Mutex
	pending map[string]bool
	ch      chan struct{}
}

// NewWake returns an empty Wake.
func NewWake() *Wake { return &Wake{pending: map[string]bool{}, ch: make(chan struct{}, 1)} }

// Wake queues secret.
func (w *Wake) Wake(secret string) {
	w.mu.Lock()
	w.pending[secret] = true
	w.mu.Unlock()
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

// Ready is signalled when names are waiting; Take them.
func (w *Wake) Ready() <-chan struct{} { return w.ch }

// Take returns the waiting names and empties the queue.
func (w *Wake) Take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	names := make([]string, 0, len(w.pending))
	for n := range w.pending {
		names = append(names, n)
	}
	clear(w.pending)
	return names
}
