package render

// This file rewrites parsed templates so that loops, template calls and
// printed values are charged to the meter.

import (
	"reflect"
	"sync"
	"text/template"
	"text/template/parse"
)

// Names of the functions the instrumented tree calls. Users cannot define
// functions, and no library function starts with an underscore.
const (
	fnIter  = "_render_iteration"
	fnEnter = "_render_enter"
	fnLeave = "_render_leave"
	fnOut   = "_render_output"
)

// guardFuncs are the instrumentation functions bound to one meter.
func guardFuncs(m *meter) template.FuncMap {
	fm := template.FuncMap{
		fnIter: func() (string, error) { return "", m.charge(1) },
		fnEnter: func() (string, error) {
			m.depth++
			if m.depth > maxDepth {
				return "", limitf("templates nest deeper than %d calls", maxDepth)
			}
			return "", m.charge(1)
		},
		fnLeave: func() string {
			m.depth--
			return ""
		},
		// fnOut ends every printing pipeline that may yield a list or map:
		// it passes the value through unchanged once inspect accepts it, so
		// that fmt never prints something too deep or too large.
		fnOut: func(v any) (any, error) {
			if _, _, err := m.inspect(reflect.ValueOf(v)); err != nil {
				return nil, err
			}
			return v, nil
		},
	}
	for name, fn := range leaseFuncs(m) {
		fm[name] = fn
	}
	return fm
}

// instrument rewrites every template tree of t so that each range iteration
// calls fnIter, each template body is wrapped in fnEnter / fnLeave, and each
// printing action that may yield a list or map ends in fnOut. The trees are
// then shared, read-only, by every instance.
func instrument(t *template.Template) {
	in := instrumenter{scalar: scalarFuncs()}
	for _, tt := range t.Templates() {
		if tt.Tree == nil || tt.Root == nil {
			continue
		}
		tr := tt.Tree
		// In the main template the dot is the secret's map[string]string;
		// in a {{define}}d one it is whatever the caller passed.
		in.walk(tr, tr.Root, tt.Name() == t.Name())
		root := tr.Root
		nodes := make([]parse.Node, 0, len(root.Nodes)+2)
		nodes = append(nodes, call(tr, fnEnter, root.Pos))
		nodes = append(nodes, root.Nodes...)
		nodes = append(nodes, call(tr, fnLeave, root.Pos))
		root.Nodes = nodes
	}
}

type instrumenter struct {
	scalar map[string]bool // functions whose result is a string, number or bool
}

// scalarFuncs lists the functions, and the builtins, that return a string,
// number or bool: printing their result needs no inspection. Built once.
var scalarFuncs = sync.OnceValue(func() map[string]bool {
	out := map[string]bool{"len": true, "eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true, "not": true}
	for name, fn := range funcs() {
		t := reflect.TypeOf(fn)
		if t.Kind() != reflect.Func || t.NumOut() == 0 {
			continue
		}
		switch t.Out(0).Kind() {
		case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
			out[name] = true
		}
	}
	return out
})

// walk instruments n; rootDot says the dot is the secret's fields there.
func (in instrumenter) walk(tr *parse.Tree, n parse.Node, rootDot bool) {
	switch x := n.(type) {
	case *parse.ListNode:
		if x == nil {
			return
		}
		for _, c := range x.Nodes {
			in.walk(tr, c, rootDot)
		}
	case *parse.ActionNode:
		if len(x.Pipe.Decl) == 0 && !in.flat(x.Pipe, rootDot) {
			id := parse.NewIdentifier(fnOut).SetTree(tr).SetPos(x.Pos)
			x.Pipe.Cmds = append(x.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: x.Pos, Args: []parse.Node{id}})
		}
	case *parse.IfNode:
		in.walk(tr, x.List, rootDot)
		in.walk(tr, x.ElseList, rootDot)
	case *parse.WithNode:
		in.walk(tr, x.List, false)
		in.walk(tr, x.ElseList, rootDot)
	case *parse.RangeNode:
		in.walk(tr, x.List, false)
		in.walk(tr, x.ElseList, rootDot)
		if x.List != nil {
			x.List.Nodes = append([]parse.Node{call(tr, fnIter, x.Pos)}, x.List.Nodes...)
		}
	}
}

// flat reports whether a printing pipeline can only yield a string, number,
// bool or the secret's flat map: its last command calls a function with such
// a result, or it is a constant or a field of the secret ({{ .name }} where
// the dot is the secret, {{ $.name }}, {{ $ }}). Those need no fnOut, which
// keeps the common {{ .field }} as fast as text/template alone.
func (in instrumenter) flat(p *parse.PipeNode, rootDot bool) bool {
	if len(p.Cmds) == 0 || len(p.Cmds[len(p.Cmds)-1].Args) == 0 {
		return false
	}
	last := p.Cmds[len(p.Cmds)-1]
	if id, ok := last.Args[0].(*parse.IdentifierNode); ok {
		return in.scalar[id.Ident]
	}
	if len(p.Cmds) != 1 || len(last.Args) != 1 {
		return false
	}
	switch a := last.Args[0].(type) {
	case *parse.StringNode, *parse.NumberNode, *parse.BoolNode:
		return true
	case *parse.DotNode:
		return rootDot
	case *parse.FieldNode:
		return rootDot && len(a.Ident) == 1
	case *parse.VariableNode:
		return a.Ident[0] == "$" && len(a.Ident) <= 2
	}
	return false
}

// call is the node {{fn}} at pos: it prints the function's "" result.
func call(tr *parse.Tree, fn string, pos parse.Pos) parse.Node {
	id := parse.NewIdentifier(fn).SetTree(tr).SetPos(pos)
	cmd := &parse.CommandNode{NodeType: parse.NodeCommand, Pos: pos, Args: []parse.Node{id}}
	pipe := &parse.PipeNode{NodeType: parse.NodePipe, Pos: pos, Cmds: []*parse.CommandNode{cmd}}
	return &parse.ActionNode{NodeType: parse.NodeAction, Pos: pos, Pipe: pipe}
}
