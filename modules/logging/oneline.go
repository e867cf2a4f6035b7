package logging

import (
	"strings"
	"unicode/utf8"
)

// OneLine folds every run of whitespace (newlines included) to one space and
// cuts the text to at most n bytes, marking a cut with "...". A cut never
// splits a UTF-8 character: it moves back to the character's first byte.
func OneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	cut := max(n-3, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
