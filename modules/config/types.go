package config

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a YAML duration written as Go duration text ("90s", "5m").
// Decoding never fails: the raw text is kept and validation reports a bad
// value with its file, line and field, next to every other problem.
type Duration struct {
	time.Duration
	raw   string
	set   bool
	valid bool
}

// NewDuration returns a set, valid Duration.
func NewDuration(d time.Duration) Duration {
	return Duration{Duration: d, raw: d.String(), set: true, valid: true}
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	*d = Duration{raw: n.Value, set: true}
	if n.Kind != yaml.ScalarNode {
		return nil
	}
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err == nil {
		d.Duration, d.valid = v, true
	}
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// IsSet reports whether the field was given.
func (d Duration) IsSet() bool { return d.set }

// problem describes what is wrong with a set duration, or "" when it is fine.
func (d Duration) problem() string {
	switch {
	case !d.set:
		return ""
	case !d.valid:
		return fmt.Sprintf("%q is not a duration (use Go duration text such as 30s, 5m, 1h)", d.raw)
	case d.Duration <= 0:
		return fmt.Sprintf("%q must be positive", d.raw)
	}
	return ""
}

// FileMode is a permission mode written as an octal string ("0440").
type FileMode struct {
	fs.FileMode
	raw   string
	set   bool
	valid bool
}

// NewFileMode returns a set, valid FileMode.
func NewFileMode(m fs.FileMode) FileMode {
	return FileMode{FileMode: m, raw: fmt.Sprintf("%04o", uint32(m)), set: true, valid: true}
}

// UnmarshalYAML implements yaml.Unmarshaler. YAML 1.1 reads an unquoted
// 0440 as octal and YAML 1.2 as decimal; the raw text is always read as
// octal, so both spellings mean what an operator expects.
func (m *FileMode) UnmarshalYAML(n *yaml.Node) error {
	*m = FileMode{raw: n.Value, set: true}
	if n.Kind != yaml.ScalarNode {
		return nil
	}
	text := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(n.Value), "0o"), "0O")
	v, err := strconv.ParseUint(text, 8, 32)
	if err == nil && text != "" && v <= 0o777 {
		m.FileMode, m.valid = fs.FileMode(v), true
	}
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (m FileMode) MarshalYAML() (any, error) { return fmt.Sprintf("%04o", uint32(m.FileMode)), nil }

// IsSet reports whether the field was given.
func (m FileMode) IsSet() bool { return m.set }

// String is the mode as four octal digits.
func (m FileMode) String() string { return fmt.Sprintf("%04o", uint32(m.FileMode)) }

func (m FileMode) problem() string {
	if m.set && !m.valid {
		return fmt.Sprintf("%q is not an octal file mode (use 0400 to 0777)", m.raw)
	}
	return ""
}
