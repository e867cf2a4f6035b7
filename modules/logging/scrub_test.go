package logging_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

func TestScrubberForms(t *testing.T) {
	pw := `p@ss"w0rd<x>`
	pem := "-----BEGIN KEY-----\nAAAABBBBCCCCDDDD\n-----END KEY-----"
	s := logging.NewScrubber(pw, pem, "abc", base64.StdEncoding.EncodeToString([]byte("decoded-secret")))
	for _, in := range []string{
		pw, `p@ss\"w0rd\u003cx\u003e`, `p@ss\"w0rd<x>`,
		base64.StdEncoding.EncodeToString([]byte(pw)), base64.RawURLEncoding.EncodeToString([]byte(pw)),
		"line: AAAABBBBCCCCDDDD", "decoded-secret",
	} {
		out := s.Replace("before " + in + " after")
		if strings.Contains(out, "w0rd") || strings.Contains(out, "AAAABBBB") || strings.Contains(out, "decoded-secret") {
			t.Errorf("%q -> %q: a form survived", in, out)
		}
		if !strings.Contains(out, logging.RedactedText) {
			t.Errorf("%q -> %q: nothing replaced", in, out)
		}
	}
	if out := s.Replace("abc is short"); out != "abc is short" {
		t.Errorf("a value under %d bytes was replaced: %q", logging.MinScrubbed, out)
	}
	n := s.Needles()
	for i := 1; i < len(n); i++ {
		if len(n[i]) > len(n[i-1]) {
			t.Fatalf("needles not longest first: %q before %q", n[i-1], n[i])
		}
	}
	if out := logging.NewScrubber().Replace("nothing"); out != "nothing" {
		t.Errorf("empty scrubber changed text: %q", out)
	}
}
