package notify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

const (
	// minSecret is the shortest value scrubbed: shorter ones would turn
	// every line into noise and protect nothing.
	minSecret = 4
	// minLine is the shortest line of a multi-line value scrubbed on its
	// own (a PEM key printed line by line).
	minLine = 8
)

// scrubber replaces secret values, in the forms a program may print them,
// with [REDACTED].
type scrubber struct {
	values  []string
	needles []string // longest first
	r       *strings.Replacer
}

func newScrubber(values []string) *scrubber {
	s := &scrubber{values: values}
	set := map[string]bool{}
	for _, v := range values {
		addForms(v, set)
	}
	for n := range set {
		s.needles = append(s.needles, n)
	}
	// Longest first, so a value is replaced whole before any part of it.
	slices.SortFunc(s.needles, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	pairs := make([]string, 0, 2*len(s.needles))
	for _, n := range s.needles {
		pairs = append(pairs, n, logging.RedactedText)
	}
	s.r = strings.NewReplacer(pairs...)
	return s
}

// with is s scrubbing extra values too.
func (s *scrubber) with(extra []string) *scrubber {
	if len(extra) == 0 {
		return s
	}
	return newScrubber(append(slices.Clone(s.values), extra...))
}

func (s *scrubber) apply(text string) string {
	if len(s.needles) == 0 {
		return text
	}
	return s.r.Replace(text)
}

// longest is the length of the longest form scrubbed.
func (s *scrubber) longest() int {
	if len(s.needles) == 0 {
		return 0
	}
	return len(s.needles[0])
}

// cutAt is where to cut b to at most limit bytes without splitting a rune
// or a value: a value that would straddle the cut is left out whole.
// b must hold limit+longest() bytes when it holds more than limit.
func (s *scrubber) cutAt(b []byte, limit int) int {
	if len(b) <= limit {
		return len(b)
	}
	cut := limit
	for changed := true; changed; {
		changed = false
		for cut > 0 && !utf8.RuneStart(b[cut]) {
			cut--
			changed = true
		}
		for _, n := range s.needles {
			lo, hi := max(0, cut-len(n)+1), min(len(b), cut+len(n)-1)
			if i := bytes.Index(b[lo:hi], []byte(n)); i >= 0 && lo+i < cut {
				cut, changed = lo+i, true
			}
		}
	}
	return cut
}

// addForms adds v as it may appear in output: raw, JSON- and Go-escaped,
// base64-encoded, and line by line.
func addForms(v string, set map[string]bool) {
	if len(v) < minSecret {
		return
	}
	add := func(f string) {
		if len(f) >= minSecret {
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
	}
	if strings.ContainsAny(v, "\r\n") {
		for _, line := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' }) {
			if line = strings.TrimSpace(line); len(line) >= minLine {
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

// jsonText is a number's JSON text ("" when it has none).
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// capture keeps the first bytes of an output stream and counts the rest.
type capture struct {
	mu    sync.Mutex
	limit int
	buf   []byte
	total int64
}

func newCapture(limit int) *capture { return &capture{limit: limit} }

// Write implements io.Writer; it never fails, so the command never sees
// a broken pipe because its output was long.
func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total += int64(len(p))
	if room := c.limit - len(c.buf); room > 0 {
		c.buf = append(c.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// text is the output, at most limit bytes, scrubbed, and marked when cut.
func (c *capture) text(s *scrubber, limit int) string {
	c.mu.Lock()
	b, total := c.buf, c.total
	c.mu.Unlock()
	cut := s.cutAt(b, limit)
	out := s.apply(string(b[:cut]))
	if int64(cut) < total {
		out += fmt.Sprintf(" [output cut: %d of %d bytes shown]", cut, total)
	}
	return out
}
