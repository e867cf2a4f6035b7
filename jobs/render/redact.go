package render

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
)

const (
	redacted = "[REDACTED]"
	// minSecret is the shortest value that is scrubbed from errors: shorter
	// ones would turn every message into noise and protect nothing.
	minSecret = 4
	// minLine is the shortest line of a multi-line value that is scrubbed on
	// its own (errors quote single PEM or config lines).
	minLine = 8
)

// redact replaces every value of data (see the package doc for the forms)
// found in msg with [REDACTED].
func redact(msg string, data map[string]any) string {
	set := map[string]bool{}
	for _, v := range data {
		collect(v, set, true)
	}
	if len(set) == 0 {
		return msg
	}
	needles := make([]string, 0, len(set))
	for n := range set {
		needles = append(needles, n)
	}
	// Longest first, so that a value is replaced whole before any part of it.
	sort.Slice(needles, func(i, j int) bool {
		if len(needles[i]) != len(needles[j]) {
			return len(needles[i]) > len(needles[j])
		}
		return needles[i] < needles[j]
	})
	pairs := make([]string, 0, 2*len(needles))
	for _, n := range needles {
		pairs = append(pairs, n, redacted)
	}
	return strings.NewReplacer(pairs...).Replace(msg)
}

// collect adds the scrubbable forms of v and of every value nested in it.
func collect(v any, set map[string]bool, top bool) {
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			collect(e, set, false)
		}
	case []any:
		for _, e := range x {
			collect(e, set, false)
		}
	case bool, nil:
		return
	case string:
		forms(x, set)
		return
	}
	// Numbers, and the JSON text of nested values as the dot shows them.
	if top || !isContainer(v) {
		forms(FieldText(v), set)
	}
}

func isContainer(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

// forms adds s as it may appear in an error: raw, JSON- and Go-escaped,
// base64-encoded, base64-decoded, and line by line.
func forms(s string, set map[string]bool) {
	if len(s) < minSecret {
		return
	}
	add := func(f string) {
		if len(f) >= minSecret {
			set[f] = true
		}
	}
	add(s)
	add(jsonInner(s, true))
	add(jsonInner(s, false))
	if q := strconv.Quote(s); len(q) >= 2 {
		add(q[1 : len(q)-1])
	}
	if q := strconv.QuoteToASCII(s); len(q) >= 2 {
		add(q[1 : len(q)-1])
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		add(enc.EncodeToString([]byte(s)))
		if dec, err := enc.DecodeString(strings.TrimSpace(s)); err == nil && len(dec) >= minSecret {
			add(string(dec))
		}
	}
	if strings.ContainsAny(s, "\r\n") {
		for _, line := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
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
