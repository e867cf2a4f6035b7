package config

import (
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// TemplateChecker compiles a secret's output (its template, TemplateText
// with its delimiters; its key; or its format) so that a template that
// cannot be parsed or an unknown format is a config error. The renderer
// implements it: it owns the template functions and the set of formats,
// which config does not know; it may keep what it compiled for later.
type TemplateChecker interface {
	Check(s *Secret) error
}

// Loader loads config files. The zero value checks everything but
// templates and formats.
type Loader struct {
	// Templates, when set, compiles every secret's output at load time.
	Templates TemplateChecker
	// LookupEnv reads process environment (config.LookupEnv when nil): for
	// ${NAME} in config values, and credentials that may come from the
	// environment instead of a file.
	LookupEnv func(string) (string, bool)
}

// Load reads, decodes, defaults and validates one config file.
func Load(path string) (*Config, error) { return Loader{}.Load(path) }

// Load reads, decodes, defaults and validates one config file. The file
// is read with ReadFile: a regular file of at most MaxConfigFile (16 MiB).
// The error is Problems, naming the file, whether it cannot be read or is
// not a valid config.
func (l Loader) Load(path string) (*Config, error) {
	cfg, _, err := l.LoadInputs(path)
	return cfg, err
}

// Inputs are what one load read: the config text, and the template files
// it names, resolved against the config's directory. They are known as far
// as the text could be decoded, also when it is not a valid config: the
// reloader watches them and tells an invalid config from the last one it
// reported.
type Inputs struct {
	Text          []byte
	TemplateFiles []string
}

// LoadInputs is Load that also returns what it read.
func (l Loader) LoadInputs(path string) (*Config, Inputs, error) {
	data, err := ReadFile(path, MaxConfigFile)
	if err != nil {
		return nil, Inputs{}, Problems{{File: path, Msg: "cannot read config: " + readError(path, err)}}
	}
	cfg, files, err := l.parse(path, data)
	return cfg, Inputs{Text: data, TemplateFiles: files}, err
}

// Stdin is the name a config read from standard input goes by in problems
// (validate -); its relative template_file paths resolve against the
// working directory.
const Stdin = "<stdin>"

// LoadReader is Load for a config read from r (standard input), capped at
// MaxConfigFile like a file.
func (l Loader) LoadReader(name string, r io.Reader) (*Config, error) {
	data, err := ReadCapped(r, name, MaxConfigFile)
	if err != nil {
		return nil, Problems{{File: name, Msg: "cannot read config: " + readError(name, err)}}
	}
	return l.Parse(name, data)
}

// readError is a ReadFile error without the path the problem already
// names: "no such file or directory", "not a regular file (a named pipe)".
func readError(path string, err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path {
		return pe.Err.Error()
	}
	return strings.TrimPrefix(err.Error(), path+": ")
}

// Parse decodes, defaults and validates config text; file names it in
// problems and anchors relative template_file paths.
func (l Loader) Parse(file string, data []byte) (*Config, error) {
	cfg, _, err := l.parse(file, data)
	return cfg, err
}

// parse is Parse that also returns the template files the text names.
func (l Loader) parse(file string, data []byte) (_ *Config, templateFiles []string, _ error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, Problems{syntaxProblem(file, err)}
	}
	if root.Kind == 0 || len(root.Content) == 0 || isNull(root.Content[0]) {
		return nil, nil, Problems{{File: file, Msg: "config is empty: at least one secret is required"}}
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, nil, Problems{{File: file, Line: doc.Line, Msg: "config must be a YAML mapping with vault, defaults and secrets"}}
	}

	idx := newIndex(file)
	var probs Problems
	cfg := &Config{}
	lookup := l.LookupEnv
	if lookup == nil {
		lookup = LookupEnv
	}
	decoded := decodeConfig(doc, cfg, idx, &probs, lookup)
	cfg.File = file
	templateFiles = cfg.TemplateFiles()
	if !decoded {
		return nil, templateFiles, idx.redact(probs).sorted()
	}

	// Validate even after decode problems, so one run of `validate` lists
	// everything; a field that failed to decode keeps its zero value, which
	// the validator does not report again (index.broken).
	v := validator{idx: idx, loader: l, probs: probs}
	v.pathChars(cfg) // as written: before defaults are merged in
	v.applyDefaults(cfg)
	v.validate(cfg)
	if len(v.probs) > 0 {
		return nil, templateFiles, idx.redact(dedupe(v.probs)).sorted()
	}
	cfg.Digest = sha256.Sum256(data)
	return cfg, templateFiles, nil
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

// ResolvePath makes a path from the config absolute against the config
// file's directory.
func ResolvePath(configFile, p string) string { return resolve(configFile, p) }

// resolve makes a template_file path absolute against the config's directory.
func resolve(configFile, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(configFile), p)
}
