package logging

import (
	"fmt"
	"io"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// RedactedText replaces every secret value in logs and formatted output.
const RedactedText = "[REDACTED]"

// Redacted holds a secret value (a token, a secret_id, a field of a Vault
// secret). Every way of printing it (fmt verbs, JSON, text, zap.Any,
// zap.Stringer) prints RedactedText; only Reveal returns the value. Keep
// secrets in this type until the moment they are used.
type Redacted string

// Reveal returns the secret value. Never pass the result to a logger.
func (r Redacted) Reveal() string { return string(r) }

// String implements fmt.Stringer.
func (Redacted) String() string { return RedactedText }

// GoString implements fmt.GoStringer (%#v).
func (Redacted) GoString() string { return RedactedText }

// Format implements fmt.Formatter, so %s, %v, %q and %x all redact.
func (Redacted) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, RedactedText) }

// MarshalText implements encoding.TextMarshaler.
func (Redacted) MarshalText() ([]byte, error) { return []byte(RedactedText), nil }

// MarshalJSON implements json.Marshaler.
func (Redacted) MarshalJSON() ([]byte, error) { return []byte(`"` + RedactedText + `"`), nil }

// sensitiveKeys are log field names that only ever carry secrets. A field
// with one of these names is redacted whatever its value, so a careless
// zap.String("token", t) cannot leak.
var sensitiveKeys = map[string]bool{
	"token": true, "client_token": true, "vault_token": true, "accessor": true,
	"secret_id": true, "password": true, "passwd": true, "jwt": true,
	"private_key": true, "value": true, "values": true, "data": true,
	"secret_data": true, "secret_value": true, "plaintext": true,
}

// IsSensitiveKey reports whether a log field with this name is redacted.
func IsSensitiveKey(key string) bool { return sensitiveKeys[strings.ToLower(key)] }

// redactCore redacts sensitive fields before they reach the encoder.
type redactCore struct{ zapcore.Core }

func (c redactCore) With(fields []zapcore.Field) zapcore.Core {
	return redactCore{c.Core.With(redactFields(fields))}
}

func (c redactCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c redactCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	return c.Core.Write(e, redactFields(fields))
}

func redactFields(fields []zapcore.Field) []zapcore.Field {
	var out []zapcore.Field
	for i, f := range fields {
		if !IsSensitiveKey(f.Key) {
			continue
		}
		if out == nil {
			out = append([]zapcore.Field(nil), fields...)
		}
		out[i] = zap.String(f.Key, RedactedText)
	}
	if out == nil {
		return fields
	}
	return out
}
