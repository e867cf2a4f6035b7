package logging_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

func TestOneLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\n\tb  c\r\n", 10, "a b c"},
		{"short", 5, "short"},
		{"abcdefgh", 7, "abcd..."},
		// "é" is two bytes, "日" three, "😀" four: no cut lands inside one.
		{"ééééé", 8, "éé..."},
		{"ééééé", 7, "éé..."},
		{"aéééé", 7, "aé..."},
		{"日本語日本語", 10, "日本..."},
		{"日本語日本語", 8, "日..."},
		{"😀😀😀", 9, "😀..."},
		{"😀😀😀", 6, "..."},
	} {
		got := logging.OneLine(tc.in, tc.n)
		if got != tc.want {
			t.Errorf("OneLine(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
	// Every length over every multi-byte text: valid UTF-8, never longer than n.
	text := strings.Repeat("aé日😀 ", 20)
	for n := 3; n < len(text)+2; n++ {
		got := logging.OneLine(text, n)
		if !utf8.ValidString(got) || len(got) > n {
			t.Fatalf("OneLine(_, %d) = %q: valid UTF-8 %v, %d bytes", n, got, utf8.ValidString(got), len(got))
		}
	}
}
