package vault

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestSecretPrintsRedacted(t *testing.T) {
	const value = "hunter2-super-secret"
	s := &Secret{
		Data:    map[string]any{"password": value, "nested": map[string]any{"k": value}},
		Version: 3, CreatedTime: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), KVVersion: 2,
	}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, *s))
	}
	outs = append(outs, fmt.Sprint(s), fmt.Sprintln(*s), s.String())
	j, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	j, _ = json.Marshal(map[string]any{"secret": *s, "list": []*Secret{s}})
	outs = append(outs, string(j))
	txt, _ := s.MarshalText()
	outs = append(outs, string(txt))

	log, logs := newLogger(t)
	log.Info("secret", zap.Any("s", s), zap.Any("v", *s), zap.Object("o", s), zap.Stringer("str", s), zap.Reflect("r", s))
	outs = append(outs, logs.String())

	for _, out := range outs {
		if strings.Contains(out, value) {
			t.Fatalf("secret value printed: %s", out)
		}
	}
	// Metadata is still useful in a log line.
	if !strings.Contains(outs[0], "Version:3") || !strings.Contains(string(j), `"[REDACTED]"`) {
		t.Fatalf("redacted forms lost the metadata: %s / %s", outs[0], j)
	}
}
