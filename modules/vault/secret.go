package vault

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

// ReadRequest names one secret to read.
type ReadRequest struct {
	Mount     string // KV mount, no slashes ("secret")
	Path      string // path inside the mount, without "data/" ("myapp/db")
	KVVersion string // config.KVAuto, config.KV1 or config.KV2 ("" = auto)
	Version   int    // KV v2 version pin; 0 = latest
}

// Secret is one secret as read from Vault. It prints redacted through fmt,
// encoding/json, encoding.TextMarshaler and zap, so it cannot be logged by
// accident; only its Data field holds the values.
type Secret struct {
	// Data is the secret's fields as Vault returned them, JSON-decoded with
	// numbers kept as json.Number (their exact text).
	Data map[string]any
	// Version is the KV v2 version read; 0 for KV v1.
	Version int
	// CreatedTime is the KV v2 version's created_time; zero for KV v1.
	CreatedTime time.Time
	// KVVersion is 1 or 2, as actually read.
	KVVersion int
}

// summary is what printing a Secret shows: metadata, never values.
func (s Secret) summary() string {
	created := ""
	if !s.CreatedTime.IsZero() {
		created = " CreatedTime:" + s.CreatedTime.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("vault.Secret{KVVersion:%d Version:%d%s Data:%s (%d fields)}",
		s.KVVersion, s.Version, created, logging.RedactedText, len(s.Data))
}

// String implements fmt.Stringer.
func (s Secret) String() string { return s.summary() }

// GoString implements fmt.GoStringer.
func (s Secret) GoString() string { return s.summary() }

// Format implements fmt.Formatter: every verb prints the redacted summary.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.summary()) }

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.summary()), nil }

// MarshalJSON implements json.Marshaler: metadata, and Data redacted.
func (s Secret) MarshalJSON() ([]byte, error) {
	var created *time.Time
	if !s.CreatedTime.IsZero() {
		created = &s.CreatedTime
	}
	return json.Marshal(struct {
		Data        string     `json:"data"`
		Fields      int        `json:"fields"`
		Version     int        `json:"version,omitempty"`
		CreatedTime *time.Time `json:"created_time,omitempty"`
		KVVersion   int        `json:"kv_version"`
	}{logging.RedactedText, len(s.Data), s.Version, created, s.KVVersion})
}

// MarshalLogObject implements zapcore.ObjectMarshaler.
func (s Secret) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("data", logging.RedactedText)
	enc.AddInt("fields", len(s.Data))
	enc.AddInt("kv_version", s.KVVersion)
	if s.Version > 0 {
		enc.AddInt("version", s.Version)
	}
	if !s.CreatedTime.IsZero() {
		enc.AddTime("created_time", s.CreatedTime)
	}
	return nil
}
