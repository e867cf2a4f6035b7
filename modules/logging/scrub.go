package logging

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

const (
	// MinScrubbed is the shortest value a Scrubber replaces: shorter ones
	// would turn every message into noise and protect nothing.
	MinScrubbed = 4
	// minScrubbedLine is the shortest line of a multi-line value that is
	// replaced on its own (a PEM key or a config printed line by line).
	minScrubbedLine = 8
)

// Scrubber replaces secret values with RedactedText in text that may quote
// them: an error message, a command's output. It finds each value in the
// forms such text holds it: raw and trimmed, JSON- and Go-escaped,
// base64-encoded (standard and URL alphabets, padded or not) and, for a
// value that is itself base64, decoded, and for a multi-line value each
// line of at least 8 bytes. Longer forms are replaced first, so a value is
// replaced whole before any part of it. Safe for concurrent use.
type Scrubber struct {
	needles []string // longest first
	r       *strings.Replacer
}

// NewScrubber returns a Scrubber for values; values shorter than
// MinScrubbed bytes are left alone.
func NewScrubber(values ...string) *Scrubber {
	set := map[string]bool{}
	for _, v := range values {
		scrubForms(v, set)
	}
	s := &Scrubber{needles: make([]string, 0, len(set))}
	for n := range set {
		s.needles = append(s.needles, n)
	}
	slices.SortFunc(s.needles, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	pairs := make([]string, 0, 2*len(s.needles))
	for _, n := range s.needles {
		pairs = append(pairs, n, RedactedText)
	}
	s.r = strings.NewReplacer(pairs...)
	return s
}

// Replace returns text with every form of every value replaced.
func (s *Scrubber) Replace(text string) string {
	if len(s.needles) == 0 {
		return text
	}
	return s.r.Replace(text)
}

// Needles are the forms replaced, longest first (for callers that must cut
// text without cutting a value in two). Do not modify them.
func (s *Scrubber) Needles() []string { return s.needles }

func scrubForms(v string, set map[string]bool) {
	if len(v) < MinScrubbed {
		return
	}
	add := func(f string) {
		if len(f) >= MinScrubbed {
			set[f] = true
		}
	}
	add(v)
	add(strings.TrimSpace(v))
	add(jsonInner(v, true))
	add(jsonInner(v, false))
	if q := strconv.Quote(v); len(q) >= 2 {
		add(q[1 : len(q)-1])
	}
	if q := strconv.QuoteToASCII(v); len(q) >= 2 {
		add(q[1 : len(q)-1])
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		add(enc.EncodeToString([]byte(v)))
		if dec, err := enc.DecodeString(strings.TrimSpace(v)); err == nil && len(dec) >= MinScrubbed {
			add(string(dec))
		}
	}
	if strings.ContainsAny(v, "\r\n") {
		for _, line := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' }) {
			if line = strings.TrimSpace(line); len(line) >= minScrubbedLine {
				add(line)
			}
		}
	}
}

// jsonInner is s JSON-encoded, without the quotes.
func jsonInner(s string, escapeHTML bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(s); err != nil {
		return ""
	}
	out := strings.TrimSuffix(b.String(), "\n")
	if len(out) < 2 {
		return ""
	}
	return out[1 : len(out)-1]
}
