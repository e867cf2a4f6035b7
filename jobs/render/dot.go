package render

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// dot builds a template's dot: every field as text (see the package doc).
func dot(data map[string]any) map[string]string {
	out := make(map[string]string, len(data))
	for k, v := range data {
		out[k] = FieldText(v)
	}
	return out
}

// FieldText is a field's value as the dot, key: and env/properties show it.
func FieldText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return "null"
	case []byte:
		return string(x)
	}
	// Numbers from a caller that decoded without UseNumber, nested objects
	// and arrays: their JSON text, as encoding/json writes it (ESO's way).
	b, err := json.Marshal(v)
	if err != nil {
		// NaN, infinities, an invalid json.Number inside a nested value:
		// nothing JSON can say, so the Go text of the value.
		return fmt.Sprint(v)
	}
	return string(b)
}
