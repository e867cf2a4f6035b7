package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/render"
)

// entries parses a file of one format into its top-level keys, each with
// a text that is equal exactly when the values are. The texts are compared
// and dropped, never shown.
type entries func(content []byte) (map[string]string, error)

var formatEntries = map[string]entries{
	render.FormatJSON:       jsonEntries,
	render.FormatYAML:       yamlEntries,
	render.FormatEnv:        envEntries,
	render.FormatProperties: propertiesEntries,
}

// diffKeys names the keys that differ between two files of format; it is
// empty for templates, key outputs, and a file that does not parse (a
// format changed in the config, or a file edited by hand).
func diffKeys(format string, old, updated []byte) KeyDiff {
	parse := formatEntries[format]
	if parse == nil {
		return KeyDiff{}
	}
	before, err := parse(old)
	if err != nil {
		return KeyDiff{}
	}
	after, err := parse(updated)
	if err != nil {
		return KeyDiff{}
	}
	var d KeyDiff
	for k, v := range after {
		was, ok := before[k]
		switch {
		case !ok:
			d.Added = append(d.Added, k)
		case was != v:
			d.Changed = append(d.Changed, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			d.Removed = append(d.Removed, k)
		}
	}
	sort.Strings(d.Added)
	sort.Strings(d.Removed)
	sort.Strings(d.Changed)
	return d
}

func jsonEntries(b []byte) (map[string]string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		var c bytes.Buffer
		if err := json.Compact(&c, v); err != nil {
			return nil, err
		}
		out[k] = c.String()
	}
	return out, nil
}

func yamlEntries(b []byte) (map[string]string, error) {
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = fmt.Sprintf("%#v", v) // fmt prints maps with sorted keys
	}
	return out, nil
}

var errUnterminated = errors.New("unterminated quote")

// envEntries reads KEY=value lines as the env format writes them (values
// in single quotes may span lines); blank lines, # comments and an
// "export " prefix are allowed.
func envEntries(b []byte) (map[string]string, error) {
	s := string(b)
	out := map[string]string{}
	for len(s) > 0 {
		line, rest, _ := strings.Cut(s, "\n")
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			s = rest
			continue
		}
		s = strings.TrimPrefix(strings.TrimLeft(s, " \t"), "export ")
		key, val, ok := strings.Cut(s, "=")
		if !ok || strings.ContainsAny(key, "\n") {
			return nil, errors.New("not KEY=value")
		}
		end, err := shellWordEnd(val)
		if err != nil {
			return nil, err
		}
		out[strings.TrimSpace(key)] = val[:end]
		s = strings.TrimPrefix(val[end:], "\n")
	}
	return out, nil
}

// shellWordEnd is where a shell value ends: the first newline outside
// quotes.
func shellWordEnd(s string) (int, error) {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			}
		case quote == '"' && c == '\\':
			i++
		case quote == '"':
			if c == '"' {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '\\':
			i++
		case c == '\n':
			return i, nil
		}
	}
	if quote != 0 {
		return 0, errUnterminated
	}
	return len(s), nil
}

// propertiesEntries reads key=value lines as the properties format writes
// them: the key ends at the first unescaped = or :; # and ! lines are
// comments. A key is named as written (escaped).
func propertiesEntries(b []byte) (map[string]string, error) {
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		t := strings.TrimLeft(line, " \t\f")
		if t == "" || t[0] == '#' || t[0] == '!' {
			continue
		}
		end := -1
		for i := 0; i < len(t) && end < 0; i++ {
			switch t[i] {
			case '\\':
				i++
			case '=', ':':
				end = i
			}
		}
		if end < 0 {
			return nil, errors.New("not key=value")
		}
		out[t[:end]] = t[end+1:]
	}
	return out, nil
}
