package render

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// ErrMissingField is matched (errors.Is) by a Render error caused by a field
// the template or key: asks for and the secret does not have.
var ErrMissingField = errors.New("missing field")

// ErrLimit is matched (errors.Is) by a Render error caused by a template
// exceeding a limit (see "Bounded execution" in the package doc).
var ErrLimit = errLimit

// Error is the error Render returns. Its text names the secret and carries
// no secret value; it wraps nothing that could.
type Error struct {
	// Secret is the secret's name.
	Secret string
	// Field is the missing field, when that is the cause.
	Field string

	msg   string
	limit bool
}

func (e *Error) Error() string { return e.msg }

// Is matches ErrMissingField and ErrLimit.
func (e *Error) Is(target error) bool {
	return (target == ErrMissingField && e.Field != "") || (target == ErrLimit && e.limit)
}

// Output formats, the values of a secret's format: field. This package owns
// the set: the config loader checks format: by compiling (Checker).
const (
	FormatJSON       = "json"
	FormatYAML       = "yaml"
	FormatEnv        = "env"
	FormatProperties = "properties"
)

// Formats lists the output formats, in the order the docs give them.
func Formats() []string {
	return []string{FormatJSON, FormatYAML, FormatEnv, FormatProperties}
}

// checkFormat is the one rule for format:.
func checkFormat(f string) error {
	if !slices.Contains(Formats(), f) {
		return fmt.Errorf("%q is not a format (%s)", f, strings.Join(Formats(), ", "))
	}
	return nil
}

type kind int

const (
	kindTemplate kind = iota + 1
	kindKey
	kindFormat
	kindPKCS12 // a files: entry's content: pkcs12 (archive.go)
)

// Renderer renders one secret's output. It is safe for concurrent use.
// Secrets whose outputs are the same text (a Set finds them) share one
// compiled output: its parse trees and its pool of instances.
type Renderer struct {
	secret string
	*compiled
}

// compiled is an output as compiled for the secret named name (the
// template's name), shareable by any secret with the same source.
type compiled struct {
	name   string
	source outputSource
	kind   kind
	key    string
	format string
	// passwordFile is a kindPKCS12 archive's password file.
	passwordFile string

	tmpl *template.Template // parsed and instrumented; cloned per instance
	used map[string]bool    // the functions the template calls

	mu   sync.Mutex
	free []*instance
}

// instance is a clone of the template whose functions are bound to its own
// meter; one render uses it at a time.
type instance struct {
	t   *template.Template
	m   *meter
	out limitedBuffer
}

// Compile prepares a validated secret's output: its template (template or
// template_file, already in s.TemplateText), key, format, or the PKCS#12
// archive of a files: entry's content: pkcs12 (config.Secret.PKCS12Output).
// A Set keeps what the config loader compiled, so that each template is
// parsed once.
func Compile(s *config.Secret) (*Renderer, error) {
	r, err := compile(s)
	if err != nil {
		return nil, fmt.Errorf("secret %q: %w", s.Name, err)
	}
	return r, nil
}

// outputSource is what a Renderer was compiled from. Two outputs with the
// same source render alike, so a Set may hand one's Renderer to the other.
type outputSource struct {
	name, text, left, right, key, format string
	// pkcs12 and passwordFile: a content: pkcs12 archive and the file its
	// password is read from.
	pkcs12       bool
	passwordFile string
}

func sourceOf(s *config.Secret) outputSource {
	src := outputSource{name: s.Name, text: templateText(s), left: s.LeftDelimiter, right: s.RightDelimiter, key: s.Key, format: s.Format}
	src.passwordFile, src.pkcs12 = s.PKCS12Output()
	return src
}

func compile(s *config.Secret) (*Renderer, error) {
	r := &Renderer{secret: s.Name, compiled: &compiled{name: s.Name, source: sourceOf(s)}}
	switch {
	case r.source.pkcs12:
		if r.source.passwordFile == "" {
			return nil, errors.New("content: pkcs12 needs a password_file")
		}
		r.kind, r.passwordFile = kindPKCS12, r.source.passwordFile
	case s.UsesTemplate():
		t, err := parseTemplate(s)
		if err != nil {
			return nil, err
		}
		instrument(t)
		r.kind, r.tmpl, r.used = kindTemplate, t, usedFuncs(t)
	case s.Key != "":
		r.kind, r.key = kindKey, s.Key
	case s.Format != "":
		if err := checkFormat(s.Format); err != nil {
			return nil, err
		}
		r.kind, r.format = kindFormat, s.Format
	default:
		return nil, errors.New("nothing to render: set template, template_file, key or format")
	}
	return r, nil
}

// parseTemplate parses s's template, named after the secret, and checks that
// every {{template "name"}} it calls is defined.
func parseTemplate(s *config.Secret) (*template.Template, error) {
	// The parser only needs the function names: parsing through
	// template.Funcs would reflect over all ~200 functions per template.
	trees, err := parse.Parse(s.Name, templateText(s), s.LeftDelimiter, s.RightDelimiter, funcNames())
	if err != nil {
		return nil, err
	}
	t := template.New(s.Name).Option("missingkey=error")
	names := make([]string, 0, len(trees))
	for name := range trees {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic association order
	for _, name := range names {
		if _, err := t.AddParseTree(name, trees[name]); err != nil {
			return nil, err
		}
	}
	for _, tt := range t.Templates() {
		if tt.Tree == nil || tt.Root == nil {
			continue
		}
		if err := checkCalls(t, tt.Tree, tt.Root); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// templateText is the template the loader read (TemplateText), or the
// inline template of a secret that did not come through the loader.
func templateText(s *config.Secret) string {
	if s.TemplateText == "" {
		return s.Template
	}
	return s.TemplateText
}

// usedFuncs lists every function identifier in t's trees (instrumentation
// and builtins included; guarded binds only those it knows).
func usedFuncs(t *template.Template) map[string]bool {
	used := map[string]bool{}
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		switch x := n.(type) {
		case *parse.ListNode:
			if x == nil {
				return
			}
			for _, c := range x.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walk(x.Pipe)
		case *parse.PipeNode:
			if x == nil {
				return
			}
			for _, c := range x.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			for _, a := range x.Args {
				walk(a)
			}
		case *parse.ChainNode:
			walk(x.Node)
		case *parse.IdentifierNode:
			used[x.Ident] = true
		case *parse.IfNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		case *parse.WithNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		case *parse.RangeNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		case *parse.TemplateNode:
			walk(x.Pipe)
		}
	}
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			walk(tt.Root)
		}
	}
	return used
}

func checkCalls(t *template.Template, tr *parse.Tree, n parse.Node) error {
	switch x := n.(type) {
	case *parse.ListNode:
		if x == nil {
			return nil
		}
		for _, c := range x.Nodes {
			if err := checkCalls(t, tr, c); err != nil {
				return err
			}
		}
	case *parse.IfNode:
		return checkBranch(t, tr, &x.BranchNode)
	case *parse.WithNode:
		return checkBranch(t, tr, &x.BranchNode)
	case *parse.RangeNode:
		return checkBranch(t, tr, &x.BranchNode)
	case *parse.TemplateNode:
		if d := t.Lookup(x.Name); d == nil || d.Tree == nil {
			loc, _ := tr.ErrorContext(x)
			return fmt.Errorf("template: %s: no such template %q", loc, x.Name)
		}
	}
	return nil
}

func checkBranch(t *template.Template, tr *parse.Tree, b *parse.BranchNode) error {
	if err := checkCalls(t, tr, b.List); err != nil {
		return err
	}
	return checkCalls(t, tr, b.ElseList)
}

// Render produces the file content from the secret's data, as Vault returned
// it (JSON-decoded: string, json.Number or float64, bool, nil, map[string]any,
// []any). The error, if any, is an *Error.
func (r *Renderer) Render(data map[string]any) ([]byte, error) { return r.RenderLease(data, nil) }

// RenderLease is Render for a leased secret: a template's lease functions
// answer from lease (nil: they fail, as for a KV secret). key, format and
// pkcs12 outputs hold the data only.
func (r *Renderer) RenderLease(data map[string]any, lease *Lease) ([]byte, error) {
	switch r.kind {
	case kindTemplate:
		return r.execute(data, lease)
	case kindKey:
		out, found, err := renderKey(data, r.key)
		switch {
		case err != nil:
			return nil, r.fail(err.Error(), data, "", false)
		case !found:
			return nil, r.fail(fmt.Sprintf("key %q not found in the secret%s", r.key, fieldList(data)), data, r.key, false)
		}
		return out, nil
	case kindFormat:
		out, err := r.renderFormat(data)
		if err != nil {
			return nil, r.fail(err.Error(), data, "", false)
		}
		return out, nil
	case kindPKCS12:
		return r.renderPKCS12(data)
	}
	return nil, &Error{Secret: r.secret, msg: fmt.Sprintf("secret %q: renderer not compiled", r.secret)}
}

func (r *Renderer) renderFormat(data map[string]any) ([]byte, error) {
	switch r.format {
	case FormatJSON:
		return renderJSON(data)
	case FormatYAML:
		return renderYAML(data)
	case FormatEnv:
		return renderEnv(data)
	default:
		return renderProperties(data), nil
	}
}

func (r *Renderer) execute(data map[string]any, lease *Lease) (out []byte, err error) {
	in, err := r.get()
	if err != nil {
		return nil, r.fail(err.Error(), data, "", false)
	}
	defer func() {
		if p := recover(); p != nil {
			// text/template re-panics runtime errors that do not come from a
			// function call; the sidecar must survive them.
			out, err = nil, r.fail(fmt.Sprintf("template panicked: %v", p), data, "", false)
			return // the instance may be inconsistent: do not reuse it
		}
		r.put(in)
	}()
	in.m.reset()
	in.m.lease = lease
	in.out.b = in.out.b[:0]
	if e := in.t.Execute(&in.out, dot(data)); e != nil {
		return nil, r.execError(e, data)
	}
	return append([]byte(nil), in.out.b...), nil
}

var (
	missingKeyRe = regexp.MustCompile(`map has no entry for key ("(?:[^"\\]|\\.)*")`)
	topFieldRe   = regexp.MustCompile(`at <\$?\.[^<>.\s]+>: map has no entry for key`)
)

func (r *Renderer) execError(err error, data map[string]any) error {
	msg := err.Error()
	field := ""
	if m := missingKeyRe.FindStringSubmatch(msg); m != nil {
		field, _ = strconv.Unquote(m[1])
		if topFieldRe.MatchString(msg) {
			// A top-level field ({{ .name }} or {{ $.name }}): list the
			// secret's fields, to make a typo obvious.
			msg += fieldList(data)
		}
	}
	msg = internalNames.Replace(msg)
	if r.name != r.secret {
		// A shared template carries the name of the secret it was compiled for.
		msg = strings.NewReplacer("template: "+r.name+":", "template: "+r.secret+":",
			`executing "`+r.name+`"`, `executing "`+r.secret+`"`).Replace(msg)
	}
	return r.fail(msg, data, field, errors.Is(err, errLimit))
}

// internalNames rewords errors raised by the instrumentation functions.
var internalNames = strings.NewReplacer(
	"at <"+fnIter+">: error calling "+fnIter+": ", "in a range loop: ",
	"at <"+fnEnter+">: error calling "+fnEnter+": ", "in a template call: ",
	"at <"+fnOut+">: error calling "+fnOut+": ", "printing a value: ",
)

// fieldList is " (the secret's fields: a, b, c)", at most 20 names.
func fieldList(data map[string]any) string {
	if len(data) == 0 {
		return " (the secret has no fields)"
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	more := ""
	if len(keys) > 20 {
		more = fmt.Sprintf(" and %d more", len(keys)-20)
		keys = keys[:20]
	}
	return " (the secret's fields: " + strings.Join(keys, ", ") + more + ")"
}

// fail builds the returned error: prefixed with the secret's name, every
// data value scrubbed from it.
func (r *Renderer) fail(msg string, data map[string]any, field string, limit bool) error {
	msg = redact(fmt.Sprintf("secret %q: %s", r.secret, msg), data)
	return &Error{Secret: r.secret, Field: field, msg: msg, limit: limit}
}

func (r *Renderer) get() (*instance, error) {
	r.mu.Lock()
	if n := len(r.free); n > 0 {
		in := r.free[n-1]
		r.free = r.free[:n-1]
		r.mu.Unlock()
		return in, nil
	}
	r.mu.Unlock()
	// Clone shares the (instrumented, read-only) parse trees; Funcs rebinds
	// every function to this instance's meter.
	t, err := r.tmpl.Clone()
	if err != nil {
		return nil, fmt.Errorf("cannot prepare the template: %w", err)
	}
	m := &meter{}
	t.Funcs(guarded(m, r.used))
	return &instance{t: t, m: m}, nil
}

// put returns an instance for reuse, dropping a large output buffer.
func (r *Renderer) put(in *instance) {
	if cap(in.out.b) > 64<<10 {
		in.out.b = nil
	}
	r.mu.Lock()
	r.free = append(r.free, in)
	r.mu.Unlock()
}
