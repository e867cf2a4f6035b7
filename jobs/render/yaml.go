package render

import (
	"strings"

	"sigs.k8s.io/yaml"
)

// toYAML is ESO's toYaml: YAML without the final newline, "" if v cannot be
// marshalled.
func toYAML(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

// fromYAML is ESO's fromYaml: a map, with the parse error's text under
// "Error" when str is not a YAML mapping.
func fromYAML(str string) map[string]any {
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}
