package render

import (
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

// redact replaces every value of data (see the package doc for the forms)
// found in msg with [REDACTED].
func redact(msg string, data map[string]any) string {
	var values []string
	for _, v := range data {
		collect(v, &values, true)
	}
	return logging.NewScrubber(values...).Replace(msg)
}

// collect adds v and every value nested in it: strings, and the text of
// numbers and of nested values as the dot shows them.
func collect(v any, values *[]string, top bool) {
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			collect(e, values, false)
		}
	case []any:
		for _, e := range x {
			collect(e, values, false)
		}
	case bool, nil:
		return
	case string:
		*values = append(*values, x)
		return
	}
	if top || !isContainer(v) {
		*values = append(*values, FieldText(v))
	}
}

func isContainer(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}
