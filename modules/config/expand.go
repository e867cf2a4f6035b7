package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Environment variables in config values (README: "Config file").
//
// ${NAME} and ${NAME:-default} are expanded in each scalar value after the
// YAML is parsed, so a variable's value is always one value and can never
// add keys or structure. Mapping keys, a secret's template and its
// delimiters and an exec action's command are never expanded (template_file
// names a file whose content is not expanded either; a command's shell
// expands its own ${...} when it runs, with the action's environment). $${
// is a literal ${; $NAME without braces and a $ not followed by { are
// literal. A default cannot hold another ${...}. The sidecar's own
// credentials (CredentialVariable) are expanded only under vault:, so no
// value from them reaches a file, an action or a webhook.

var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// refError is a problem with one ${...} reference, at byte offset off of
// the scalar's value.
type refError struct {
	off int
	msg string
}

// expandEnv expands the references in s. changed is false when s holds no
// reference and no $${ escape.
func expandEnv(s string, lookup func(string) (string, bool), credentials bool) (out string, changed bool, err *refError) {
	if !strings.Contains(s, "${") {
		return s, false, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", false, &refError{i, "${ without a closing } (write $${ for a literal ${)"}
			}
			ref := s[i+2 : i+end]
			name, def, hasDef := strings.Cut(ref, ":-")
			switch {
			case strings.Contains(ref, "${"):
				return "", false, &refError{i, "nested ${...} is not supported (a default is plain text)"}
			case !envNameRe.MatchString(name):
				return "", false, &refError{i, fmt.Sprintf("%q is not an environment variable reference: use ${NAME} or ${NAME:-default} (write $${ for a literal ${)", "${"+ref+"}")}
			}
			if !credentials && CredentialVariable(name) {
				return "", false, &refError{i, fmt.Sprintf("%s holds one of the sidecar's credentials: it can be used only under vault:", name)}
			}
			val, ok := lookup(name)
			switch {
			case hasDef && val == "":
				val = def
			case !ok:
				return "", false, &refError{i, fmt.Sprintf("environment variable %s is not set (use ${%s:-default} for a default)", name, name)}
			}
			b.WriteString(val)
			i += end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), true, nil
}

// noExpand reports whether the value at path is kept as written: a
// secret's template and delimiters are template text, and an exec action's
// command runs as written; both often hold a shell's ${...}.
func noExpand(path string) bool {
	if i := strings.LastIndex(path, ".exec.command"); i >= 0 {
		if rest := path[i+len(".exec.command"):]; rest == "" || strings.HasPrefix(rest, "[") {
			return true
		}
	}
	if !strings.HasPrefix(path, "secrets[") {
		return false
	}
	_, field, _ := strings.Cut(path, "].")
	return field == "template" || field == "left_delimiter" || field == "right_delimiter"
}

const quotedStyles = yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle | yaml.TaggedStyle

// expand returns n with its value expanded: a copy, so a node shared by an
// alias is expanded once per use and never twice. A plain scalar's type is
// resolved again from the expanded text (${KV} set to 2 is the integer 2),
// as if it had been written there; a quoted or tagged one keeps its tag.
// It returns nil after reporting a bad reference.
func (d *decoder) expand(n *yaml.Node, path string) *yaml.Node {
	if n.Kind != yaml.ScalarNode || noExpand(path) {
		return n
	}
	out, changed, err := expandEnv(n.Value, d.lookup, strings.HasPrefix(path, "vault."))
	if err != nil {
		col := n.Column
		if !strings.Contains(n.Value, "\n") {
			col += err.off
			if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
				col++
			}
		}
		d.idx.broken[path] = true
		*d.probs = append(*d.probs, Problem{File: d.idx.file, Line: n.Line, Column: col, Field: path, Msg: err.msg})
		return nil
	}
	if !changed {
		return n
	}
	c := *n
	c.Value = out
	if n.Style&quotedStyles == 0 {
		c.Tag = (&yaml.Node{Kind: yaml.ScalarNode, Value: out}).ShortTag()
	}
	d.idx.expanded[&c] = n.Value
	return &c
}

// valueFrom names an expanded value by the text it was written as, so a
// message never shows a variable's value: "value from ${KV}".
func valueFrom(written string) string {
	if strings.HasPrefix(written, "${") && strings.IndexByte(written, '}') == len(written)-1 {
		return "value from " + written
	}
	return "value from " + strconv.Quote(written)
}

// didYouMean is a hint that quotes a corrected spelling of a value.
var didYouMean = regexp.MustCompile(`did you mean "(?:[^"\\]|\\.)*"\?`)

// redact replaces expanded values in problem messages by where they came
// from: quoted anywhere ("%q is not ..."), and unquoted at the start of a
// message about that very field ("%d must be ..."). A hint about that
// field that spells the value corrected ("did you mean %q?": upper-cased,
// a cleaned path) would show the variable's value in another form, so it
// is dropped.
func (x *index) redact(ps Problems) Problems {
	if len(x.expanded) == 0 {
		return ps
	}
	for i := range ps {
		p := &ps[i]
		for n, written := range x.expanded {
			if n.Value == "" {
				continue
			}
			from := valueFrom(written)
			for _, q := range []string{strconv.Quote(n.Value), strconv.Quote(RedactURL(n.Value))} {
				p.Msg = strings.ReplaceAll(p.Msg, q, from)
			}
			if x.nodes[p.Field] == n {
				if rest, ok := strings.CutPrefix(p.Msg, n.Value+" "); ok {
					p.Msg = from + " " + rest
				}
				p.Msg = didYouMean.ReplaceAllLiteralString(p.Msg, "the corrected value is not shown: it comes from a variable")
			}
		}
	}
	return ps
}
