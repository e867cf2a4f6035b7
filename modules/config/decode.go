package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decoder fills a Config from the YAML node tree one field at a time, in
// step with the Go types, so every problem it meets is known by its field
// path. yaml.v3's own Decode reports type errors as "line N: ..." only,
// which cannot tell apart the fields of a flow mapping written on one line,
// and it drops a list item whose mapping has a duplicate key, which shifts
// the index of every later item (and empties a one-item secrets: list).
// Scalars are still decoded by yaml.v3 (Node.Decode), so values mean what
// they mean to yaml.v3.
type decoder struct {
	idx   *index
	probs *Problems
	// lookup reads the environment for ${NAME} in values.
	lookup func(string) (string, bool)
	// budget is how many more nodes may be visited. Aliases let a small
	// file expand into a huge tree ("billion laughs"); the walk stops
	// instead of following them without end.
	budget int
	// structs caches structFields per type: a config of 1,000 secrets
	// would otherwise build the same key map 1,000 times.
	structs map[reflect.Type]map[string]int
}

// structFields is structFields(t), built once per type and decode; the
// map is only read.
func (d *decoder) structFields(t reflect.Type) map[string]int {
	if f, ok := d.structs[t]; ok {
		return f
	}
	if d.structs == nil {
		d.structs = map[reflect.Type]map[string]int{}
	}
	f := structFields(t)
	d.structs[t] = f
	return f
}

// decodeBudget is the number of node visits allowed beyond the number of
// nodes the file itself holds, for configs that share blocks by alias.
const decodeBudget = 100_000

// decodeConfig decodes doc into cfg. It returns false when the file
// expands too far through aliases to be decoded at all.
func decodeConfig(doc *yaml.Node, cfg *Config, idx *index, probs *Problems, lookup func(string) (string, bool)) bool {
	d := &decoder{idx: idx, probs: probs, lookup: lookup, budget: decodeBudget + 10*countNodes(doc)}
	d.value(doc, reflect.ValueOf(cfg).Elem(), "")
	return d.budget >= 0
}

// countNodes counts the nodes written in the file (aliases not followed).
func countNodes(n *yaml.Node) int {
	c := 1
	for _, ch := range n.Content {
		c += countNodes(ch)
	}
	return c
}

func (d *decoder) problem(n *yaml.Node, path, format string, args ...any) {
	*d.probs = append(*d.probs, Problem{File: d.idx.file, Line: n.Line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

// fail records that path could not be decoded, so validation stays quiet
// about it.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.idx.broken[path] = true
	d.problem(n, path, format, args...)
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	typeWords       = map[reflect.Type]string{
		reflect.TypeFor[Duration](): "a duration (such as 30s)",
		reflect.TypeFor[FileMode](): `an octal file mode (such as "0440")`,
	}
	kindWords = map[reflect.Kind]string{
		reflect.String: "a string", reflect.Int: "an integer", reflect.Bool: "true or false",
		reflect.Slice: "a list", reflect.Struct: "a mapping", reflect.Map: "a mapping",
	}
)

// mismatch reports a value of the wrong shape: "expected a list, got
// mapping", with a short prefix of a scalar's text.
func (d *decoder) mismatch(n *yaml.Node, t reflect.Type, path string) {
	want := typeWords[t]
	if want == "" {
		want = kindWords[t.Kind()]
	}
	if written, ok := d.idx.expanded[n]; ok {
		d.fail(n, path, "%s is not %s", valueFrom(written), want)
		return
	}
	got := yamlKind(n)
	if n.Kind == yaml.ScalarNode {
		v := n.Value
		if len(v) > 10 {
			v = v[:7] + "..."
		}
		got += fmt.Sprintf(" %q", v)
		if strings.HasSuffix(path, ".exec.command") {
			got += `: write the program and each argument as list items, such as ["/usr/local/bin/reload", "--fast"] (no shell)`
		}
	}
	d.fail(n, path, "expected %s, got %s", want, got)
}

func yamlKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	}
	switch n.ShortTag() {
	case "!!str", "!!binary":
		return "string"
	case "!!int", "!!float":
		return "number"
	case "!!bool":
		return "boolean"
	case "!!null":
		return "null"
	}
	return n.ShortTag()
}

// deref follows aliases, spending budget on each node reached.
func (d *decoder) deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	d.budget--
	if d.budget == -1 {
		*d.probs = append(*d.probs, Problem{File: d.idx.file, Line: n.Line,
			Msg: "the file expands to too many values through aliases (*name)"})
	}
	if d.budget < 0 {
		return nil
	}
	return n
}

// value decodes n into v (settable) and records it as path.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if n = d.deref(n); n == nil {
		return
	}
	if n = d.expand(n, path); n == nil {
		return
	}
	if path != "" {
		d.idx.nodes[path] = n
	}
	if isNull(n) {
		v.SetZero() // as yaml.v3 does: unset, the default applies
		return
	}
	t := v.Type()
	if t.Kind() == reflect.Pointer {
		e := reflect.New(t.Elem())
		d.nonNull(n, e.Elem(), path)
		v.Set(e)
		return
	}
	d.nonNull(n, v, path)
}

func (d *decoder) nonNull(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if n.Kind != yaml.ScalarNode {
			d.mismatch(n, t, path)
			return
		}
		d.scalar(n, v, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.mismatch(n, t, path)
			return
		}
		d.fields(n, v, path, d.structFields(t), map[string]bool{})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.mismatch(n, t, path)
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.value(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode || t.Key().Kind() != reflect.String {
			d.mismatch(n, t, path)
			return
		}
		d.stringMap(n, v, path)
	default:
		if n.Kind != yaml.ScalarNode {
			d.mismatch(n, t, path)
			return
		}
		d.scalar(n, v, path)
	}
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	err := n.Decode(v.Addr().Interface())
	var te *yaml.TypeError
	switch {
	case err == nil:
	case errors.As(err, &te):
		d.mismatch(n, v.Type(), path)
	default:
		d.fail(n, path, "%v", err)
	}
}

// keys walks a mapping's keys, reporting duplicates (yaml.v3 rejects them
// too) and calling fn for each first occurrence. Merge keys (<<) are
// returned, in order, for the caller to apply after the mapping's own keys.
func (d *decoder) keys(n *yaml.Node, path string, fn func(key, val *yaml.Node)) (merges []*yaml.Node) {
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key = d.deref(key); key == nil {
			return nil
		}
		if line, dup := first[key.Value]; dup {
			where := fmt.Sprintf("first set on line %d", line)
			if line == key.Line {
				where = "set earlier on this line"
			}
			d.fail(key, joinPath(path, key.Value), "duplicate key %q (%s)", key.Value, where)
			continue
		}
		first[key.Value] = key.Line
		if key.Kind == yaml.ScalarNode && key.ShortTag() == "!!merge" {
			merges = append(merges, val)
			continue
		}
		fn(key, val)
	}
	return merges
}

// fields decodes a mapping into struct v. A key already in set was given
// by a mapping that merges this one, and wins over it, as in yaml.v3.
func (d *decoder) fields(n *yaml.Node, v reflect.Value, path string, fields map[string]int, set map[string]bool) {
	merges := d.keys(n, path, func(key, val *yaml.Node) {
		child := joinPath(path, key.Value)
		i, ok := fields[key.Value]
		switch {
		case !ok:
			d.fail(key, child, "%s", unknownFieldMsg(key.Value, fields))
		case !set[key.Value]:
			set[key.Value] = true
			d.value(val, v.Field(i), child)
		}
	})
	for _, m := range merges {
		if m = d.deref(m); m == nil {
			return
		}
		sources := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			sources = m.Content
		}
		for _, src := range sources {
			if src = d.deref(src); src == nil {
				return
			}
			if src.Kind != yaml.MappingNode {
				d.fail(src, path, "a merge (<<) needs a mapping or a list of mappings")
				continue
			}
			d.fields(src, v, path, fields, set)
		}
	}
}

// stringMap decodes a mapping into a map with string keys, one value per
// key path ("http.headers.X-Token").
func (d *decoder) stringMap(n *yaml.Node, v reflect.Value, path string) {
	m := reflect.MakeMap(v.Type())
	merges := d.keys(n, path, func(key, val *yaml.Node) {
		e := reflect.New(v.Type().Elem()).Elem()
		d.value(val, e, joinPath(path, key.Value))
		m.SetMapIndex(reflect.ValueOf(key.Value).Convert(v.Type().Key()), e)
	})
	if len(merges) > 0 {
		d.fail(merges[0], path, "merge keys (<<) are not supported here")
	}
	v.Set(m)
}
