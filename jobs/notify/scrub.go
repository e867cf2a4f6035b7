package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

// scrubber replaces secret values, in the forms a program may print them,
// with [REDACTED] (logging.Scrubber), and cuts output without cutting a
// value in two.
type scrubber struct {
	values []string
	*logging.Scrubber
}

func newScrubber(values []string) *scrubber {
	return &scrubber{values: values, Scrubber: logging.NewScrubber(values...)}
}

// with is s scrubbing extra values too.
func (s *scrubber) with(extra []string) *scrubber {
	if len(extra) == 0 {
		return s
	}
	return newScrubber(append(slices.Clone(s.values), extra...))
}

func (s *scrubber) apply(text string) string { return s.Replace(text) }

// longest is the length of the longest form scrubbed.
func (s *scrubber) longest() int {
	if n := s.Needles(); len(n) > 0 {
		return len(n[0])
	}
	return 0
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
		for _, n := range s.Needles() {
			lo, hi := max(0, cut-len(n)+1), min(len(b), cut+len(n)-1)
			if i := bytes.Index(b[lo:hi], []byte(n)); i >= 0 && lo+i < cut {
				cut, changed = lo+i, true
			}
		}
	}
	return cut
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

// size is how many bytes were written, kept or not.
func (c *capture) size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
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
