package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/tidwall/gjson"
	"go.yaml.in/yaml/v3"
)

// renderKey is key: one field's bytes. An exact top-level name wins, then
// a gjson path over the secret's JSON (ESO's remoteRef.property).
func renderKey(data map[string]any, key string) ([]byte, bool, error) {
	if v, ok := data[key]; ok {
		return []byte(FieldText(v)), true, nil
	}
	doc, err := json.Marshal(data)
	if err != nil {
		return nil, false, fmt.Errorf("cannot encode the secret as JSON to look up the key: %w", err)
	}
	res := gjson.GetBytes(doc, key)
	if !res.Exists() {
		return nil, false, nil
	}
	switch res.Type {
	case gjson.String:
		return []byte(res.Str), true, nil
	case gjson.Null:
		return []byte("null"), true, nil
	case gjson.Number:
		if res.Raw != "" {
			return []byte(res.Raw), true, nil
		}
		return []byte(res.String()), true, nil
	default: // objects, arrays, true, false: their JSON text
		if res.Raw != "" {
			return []byte(res.Raw), true, nil
		}
		return []byte(res.String()), true, nil
	}
}

// renderJSON is format: json.
func renderJSON(data map[string]any) ([]byte, error) {
	if data == nil {
		data = map[string]any{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// renderYAML is format: yaml.
func renderYAML(data map[string]any) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(yamlNode(data)); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// yamlNode builds the YAML for a JSON value, so that numbers keep their text
// and map keys are sorted.
func yamlNode(v any) *yaml.Node {
	switch x := v.(type) {
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, k := range sortedKeys(x) {
			n.Content = append(n.Content, str(k), yamlNode(x[k]))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, e := range x {
			n.Content = append(n.Content, yamlNode(e))
		}
		return n
	case string:
		return str(x)
	case bool:
		return scalar("!!bool", strconv.FormatBool(x))
	case nil:
		return scalar("!!null", "null")
	case json.Number:
		return number(x.String())
	case float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return number(FieldText(x))
	}
	// Anything else: through its JSON, as a JSON value.
	b, err := json.Marshal(v)
	if err != nil {
		return str(FieldText(v))
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var j any
	if err := d.Decode(&j); err != nil {
		return str(string(b))
	}
	return yamlNode(j)
}

// number is a JSON number as a YAML int or float. A float with an exponent
// gets a fraction and a signed exponent (1e21 -> 1.0e+21): YAML 1.1 readers
// take "1e21" for a string.
func number(text string) *yaml.Node {
	if strings.ContainsAny(text, ".eE") || text == "NaN" || strings.Contains(text, "Inf") {
		return scalar("!!float", yaml11Float(text))
	}
	return scalar("!!int", text)
}

func yaml11Float(text string) string {
	i := strings.IndexAny(text, "eE")
	if i < 0 {
		return text
	}
	mant, exp := text[:i], text[i+1:]
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	if exp != "" && exp[0] != '-' && exp[0] != '+' {
		exp = "+" + exp
	}
	return mant + text[i:i+1] + exp
}

// str is a string node, always double-quoted: a plain or block scalar is
// read back as the same string only when no YAML 1.1 or 1.2 resolver takes
// it for a bool, null, number, timestamp, merge key or value key, and no
// indicator, comment or space rule changes it. Those rules differ between
// readers and versions; a double-quoted scalar is a string under all of
// them, and its escapes carry every character. Keys use it too.
func str(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle}
}

func scalar(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// renderEnv is format: env.
func renderEnv(data map[string]any) ([]byte, error) {
	keys := sortedKeys(data)
	var bad, nul []string
	for _, k := range keys {
		if !EnvName(k) {
			bad = append(bad, strconv.Quote(k))
		} else if strings.IndexByte(FieldText(data[k]), 0) >= 0 {
			nul = append(nul, strconv.Quote(k))
		}
	}
	switch {
	case len(bad) == 1:
		return nil, fmt.Errorf("format env: key %s is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*); use a template to rename it", bad[0])
	case len(bad) > 1:
		return nil, fmt.Errorf("format env: keys %s are not valid environment variable names ([A-Za-z_][A-Za-z0-9_]*); use a template to rename them", strings.Join(bad, ", "))
	case len(nul) > 0:
		return nil, fmt.Errorf("format env: the value of %s holds a NUL byte, which an environment variable cannot", strings.Join(nul, ", "))
	}
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(shellQuote(FieldText(data[k])))
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}

// EnvName reports whether k is [A-Za-z_][A-Za-z0-9_]*.
func EnvName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// shellQuote writes s so that POSIX sh reads it back unchanged: bare when
// every byte is safe, else single-quoted with each quote closed, escaped and
// reopened.
func shellQuote(s string) string {
	if s != "" && shellSafe(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func shellSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case strings.IndexByte("_@%+=:,./-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// renderProperties is format: properties.
func renderProperties(data map[string]any) []byte {
	var b strings.Builder
	for _, k := range sortedKeys(data) {
		propEscape(&b, k, true)
		b.WriteByte('=')
		propEscape(&b, FieldText(data[k]), false)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// propEscape escapes s as java.util.Properties.store does, with every
// character outside printable ASCII as \uXXXX.
func propEscape(b *strings.Builder, s string, key bool) {
	const hex = "0123456789ABCDEF"
	u := func(r rune) {
		b.WriteString(`\u`)
		for shift := 12; shift >= 0; shift -= 4 {
			b.WriteByte(hex[(r>>shift)&0xF])
		}
	}
	for i, r := range s {
		switch r {
		case ' ':
			if key || i == 0 {
				b.WriteByte('\\')
			}
			b.WriteByte(' ')
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\f':
			b.WriteString(`\f`)
		case '\\', '=', ':', '#', '!':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			switch {
			case r >= 0x20 && r <= 0x7e:
				b.WriteRune(r)
			case r > 0xFFFF:
				r1, r2 := utf16.EncodeRune(r)
				u(r1)
				u(r2)
			default:
				u(r)
			}
		}
	}
}
