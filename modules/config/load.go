package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// TemplateChecker parses a secret's template (TemplateText, with its
// delimiters) so that a template that cannot be parsed is a config error.
// The renderer implements it; config does not know the template functions.
type TemplateChecker interface {
	CheckTemplate(s *Secret) error
}

// Loader loads config files. The zero value checks everything but
// templates.
type Loader struct {
	// Templates, when set, parses every template at load time.
	Templates TemplateChecker
	// LookupEnv reads process environment (os.LookupEnv when nil); used for
	// credentials that may come from the environment instead of a file.
	LookupEnv func(string) (string, bool)
}

// Load reads, decodes, defaults and validates one config file.
func Load(path string) (*Config, error) { return Loader{}.Load(path) }

// Load reads, decodes, defaults and validates one config file. The error is
// Problems when the file can be read but is not a valid config.
func (l Loader) Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, Problems{{File: path, Msg: "cannot read config: " + err.Error()}}
	}
	return l.Parse(path, data)
}

// Parse decodes, defaults and validates config text; file names it in
// problems and anchors relative template_file paths.
func (l Loader) Parse(file string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Problems{syntaxProblem(file, err)}
	}
	if root.Kind == 0 || len(root.Content) == 0 || isNull(root.Content[0]) {
		return nil, Problems{{File: file, Msg: "config is empty: at least one secret is required"}}
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, Problems{{File: file, Line: doc.Line, Msg: "config must be a YAML mapping with vault, defaults and secrets"}}
	}

	idx := &index{file: file, nodes: map[string]*yaml.Node{}, byLine: map[int]string{}}
	var probs Problems
	idx.walk(doc, reflect.TypeOf(Config{}), "", &probs)

	cfg := &Config{File: file}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, append(probs, syntaxProblem(file, err)).sorted()
		}
		for _, msg := range te.Errors {
			if p, ok := idx.typeProblem(msg); ok {
				probs = append(probs, p)
			}
		}
	}
	cfg.File = file

	// Validate even after decode problems, so one run of `validate` lists
	// everything; a field that failed to decode keeps its zero value, which
	// the validator either accepts or reports at the same line.
	v := validator{idx: idx, loader: l, probs: probs}
	v.applyDefaults(cfg)
	v.validate(cfg)
	if len(v.probs) > 0 {
		return nil, dedupe(v.probs).sorted()
	}
	return cfg, nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func syntaxProblem(file string, err error) Problem {
	msg := err.Error()
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		text := m[2]
		if strings.HasPrefix(text, "did not find expected") {
			// The YAML library points at the start of the enclosing block,
			// not at the offending line; say so.
			text += " (in the block that starts on this line; check the indentation below it)"
		}
		return Problem{File: file, Line: line, Msg: "YAML syntax: " + text}
	}
	return Problem{File: file, Msg: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
}

// index maps field paths ("secrets[2].mode") to the YAML nodes that set
// them, so validation can name the line of every problem.
type index struct {
	file   string
	nodes  map[string]*yaml.Node
	byLine map[int]string // deepest field path whose value starts on a line
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// walk records the position of every field and reports keys that the Go
// types do not know, with a suggestion when one is close.
func (x *index) walk(n *yaml.Node, t reflect.Type, path string, probs *Problems) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if path != "" {
		x.nodes[path] = n
		if _, ok := x.byLine[n.Line]; !ok || len(path) > len(x.byLine[n.Line]) {
			x.byLine[n.Line] = path
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the type mismatch
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			if key.Value == "<<" { // merge key: its fields land in this mapping
				x.walk(val, t, path, probs)
				continue
			}
			child := joinPath(path, key.Value)
			ft, ok := fields[key.Value]
			if !ok {
				*probs = append(*probs, Problem{
					File: x.file, Line: key.Line, Field: child, Msg: unknownFieldMsg(key.Value, fields),
				})
				continue
			}
			x.walk(val, ft, child, probs)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, item := range n.Content {
			x.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), probs)
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		out[name] = f.Type
	}
	return out
}

func unknownFieldMsg(key string, fields map[string]reflect.Type) string {
	best, bestDist := "", 3
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if d := editDistance(key, name); d < bestDist {
			best, bestDist = name, d
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown field %q (did you mean %q?)", key, best)
	}
	return fmt.Sprintf("unknown field %q (known: %s)", key, strings.Join(names, ", "))
}

// editDistance is the Levenshtein distance, for "did you mean" hints.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// node returns the node that set path, or the nearest enclosing one.
func (x *index) node(path string) *yaml.Node {
	for p := path; p != ""; p = parentPath(p) {
		if n, ok := x.nodes[p]; ok {
			return n
		}
	}
	return nil
}

func (x *index) line(path string) int {
	if n := x.node(path); n != nil {
		return n.Line
	}
	return 0
}

func (x *index) has(path string) bool {
	_, ok := x.nodes[path]
	return ok
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

var (
	typeErrRe      = regexp.MustCompile(`^line (\d+): (.*)$`)
	cannotDecodeRe = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")
	goTypeWords    = map[string]string{
		"int": "an integer", "bool": "true or false", "string": "a string",
	}
)

// typeProblem turns one of the decoder's "line N: cannot unmarshal ..."
// messages into a Problem naming the field on that line.
func (x *index) typeProblem(msg string) (Problem, bool) {
	m := typeErrRe.FindStringSubmatch(msg)
	if m == nil {
		return Problem{File: x.file, Msg: msg}, true
	}
	line, _ := strconv.Atoi(m[1])
	text := m[2]
	if strings.HasPrefix(text, "field ") && strings.Contains(text, "not found in type") {
		return Problem{}, false // walk already reported it with its path
	}
	if c := cannotDecodeRe.FindStringSubmatch(text); c != nil {
		want := goTypeWords[c[3]]
		switch {
		case want != "":
		case strings.HasPrefix(c[3], "[]"):
			want = "a list"
		case strings.HasPrefix(c[3], "*"):
			want = goTypeWords[strings.TrimPrefix(c[3], "*")]
		default:
			want = "a mapping"
		}
		if want == "" {
			want = "a " + c[3]
		}
		text = fmt.Sprintf("expected %s, got %s", want, yamlKind(c[1]))
		if c[2] != "" {
			text += fmt.Sprintf(" %q", c[2])
		}
	}
	return Problem{File: x.file, Line: line, Field: x.byLine[line], Msg: text}, true
}

func yamlKind(tag string) string {
	switch tag {
	case "str":
		return "string"
	case "seq":
		return "list"
	case "map":
		return "mapping"
	case "int", "float":
		return "number"
	}
	return tag
}

func dedupe(ps Problems) Problems {
	seen := map[string]bool{}
	out := ps[:0]
	for _, p := range ps {
		if k := p.String(); !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}

// resolve makes a template_file path absolute against the config's directory.
func resolve(configFile, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(configFile), p)
}
