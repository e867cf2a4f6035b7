package render

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"text/template"
	"text/template/parse"
)

// Limits of one render (see "Bounded execution" in the package doc).
const (
	workBudget = 1 << 20  // work units per render
	maxValue   = 8 << 20  // bytes in a string or []byte a function returns
	maxItems   = 100_000  // elements in a list or map a function returns
	maxDepth   = 1000     // nested template invocations
	maxNesting = 1000     // levels of lists and maps in a value
	maxOutput  = 16 << 20 // bytes of output
)

// Cost, in work units, of functions much slower than their arguments' size
// suggests. Everything else costs 1 plus its arguments' and result's size.
var slowFuncs = map[string]int64{
	"genPrivateKey":             workBudget / 2, // RSA-4096 or DSA parameters: seconds
	"genCA":                     workBudget / 16,
	"genSelfSignedCert":         workBudget / 16,
	"genSignedCert":             workBudget / 16,
	"bcrypt":                    workBudget / 16,
	"htpasswd":                  workBudget / 16,
	"derivePassword":            workBudget / 4, // scrypt: 32 MiB, a quarter second
	"genCAWithKey":              workBudget / 256,
	"genSelfSignedCertWithKey":  workBudget / 256,
	"genSignedCertWithKey":      workBudget / 256,
	"pemToPkcs12":               workBudget / 256,
	"pemToPkcs12Pass":           workBudget / 256,
	"fullPemToPkcs12":           workBudget / 256,
	"fullPemToPkcs12Pass":       workBudget / 256,
	"pemTruststoreToPKCS12":     workBudget / 256,
	"pemTruststoreToPKCS12Pass": workBudget / 256,
	"pkcs12key":                 workBudget / 256,
	"pkcs12keyPass":             workBudget / 256,
	"pkcs12cert":                workBudget / 256,
	"pkcs12certPass":            workBudget / 256,
	"rsaDecrypt":                workBudget / 1024,
	"jwkPrivateKeyPem":          workBudget / 1024,
}

// errLimit marks an error raised because a render exceeded a limit.
var errLimit = errors.New("render limit exceeded")

func limitf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errLimit, fmt.Sprintf(format, args...))
}

// meter counts one render's work. It belongs to one instance and so to one
// render at a time.
type meter struct {
	used  int64
	depth int
}

func (m *meter) reset() { *m = meter{} }

func (m *meter) charge(units int64) error {
	m.used += units
	if m.used > workBudget {
		return limitf("the template used its work budget of %d units (range iterations, template calls, function calls and the bytes they handle)", workBudget)
	}
	return nil
}

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
	return template.FuncMap{
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

// precheck looks at a size-taking function's arguments before it runs, so
// that a huge count fails instead of allocating.
type precheck func(args []reflect.Value) error

var prechecks = map[string]precheck{
	"until": func(a []reflect.Value) error {
		return checkCount(math.Abs(float64(a[0].Int())))
	},
	"untilStep": func(a []reflect.Value) error {
		return checkCount(steps(a[0].Int(), a[1].Int(), a[2].Int()))
	},
	"seq": func(a []reflect.Value) error {
		// The arguments as sprig's seq reads them, then untilStep's count.
		ps := a[0]                        // variadic ...int
		start, step := int64(1), int64(1) // seq N counts 1..N
		var end int64
		switch ps.Len() {
		case 1:
			end = ps.Index(0).Int()
		case 2:
			start, end = ps.Index(0).Int(), ps.Index(1).Int()
		case 3:
			start, step, end = ps.Index(0).Int(), ps.Index(1).Int(), ps.Index(2).Int()
		default:
			return nil
		}
		inc := int64(1)
		if end < start {
			inc = -1
		}
		if ps.Len() < 3 {
			step = inc
		}
		return checkCount(steps(start, end+inc, step))
	},
	"repeat": func(a []reflect.Value) error {
		return checkBytes(float64(a[0].Int()) * float64(a[1].Len()))
	},
	"indent":       indentCheck,
	"nindent":      indentCheck,
	"randAlphaNum": countArg,
	"randAlpha":    countArg,
	"randNumeric":  countArg,
	"randAscii":    countArg,
	"randBytes":    countArg,
	"set": func(a []reflect.Value) error {
		return noCycle(a[0], a[2])
	},
	"merge":              mergeCheck,
	"mergeOverwrite":     mergeCheck,
	"mustMerge":          mergeCheck,
	"mustMergeOverwrite": mergeCheck,
}

// steps is how many values sprig's untilStep(start, stop, step) returns.
func steps(start, stop, step int64) float64 {
	if step == 0 || (stop < start) != (step < 0) {
		return 0
	}
	return math.Ceil((float64(stop) - float64(start)) / float64(step))
}

func checkCount(n float64) error {
	if n > maxItems {
		return limitf("a list of %.0f elements is more than %d", n, maxItems)
	}
	return nil
}

func checkBytes(n float64) error {
	if n > maxValue {
		return limitf("a string of %.0f bytes is more than %d", n, maxValue)
	}
	return nil
}

func countArg(a []reflect.Value) error { return checkBytes(float64(a[0].Int())) }

func indentCheck(a []reflect.Value) error {
	s := a[1].String()
	lines := 1
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			lines++
		}
	}
	return checkBytes(float64(a[0].Int())*float64(lines) + float64(len(s)))
}

func mergeCheck(a []reflect.Value) error {
	// merge(dst, srcs...): no source may hold dst inside it.
	srcs := a[1]
	for i := 0; i < srcs.Len(); i++ {
		if err := noCycleInside(a[0], srcs.Index(i)); err != nil {
			return err
		}
	}
	return nil
}

// noCycle refuses to store v in map m when v is m or holds m.
func noCycle(m, v reflect.Value) error {
	if refersTo(v, m, map[uintptr]bool{}) {
		return errors.New("a map cannot contain itself")
	}
	return nil
}

// noCycleInside refuses a merge source that holds dst below its top level.
func noCycleInside(dst, src reflect.Value) error {
	src = elem(src)
	if src.Kind() != reflect.Map {
		return nil
	}
	seen := map[uintptr]bool{}
	iter := src.MapRange()
	for iter.Next() {
		if refersTo(iter.Value(), dst, seen) {
			return errors.New("a map cannot contain itself")
		}
	}
	return nil
}

func elem(v reflect.Value) reflect.Value {
	for v.IsValid() && (v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer) {
		if v.IsNil() {
			return reflect.Value{}
		}
		v = v.Elem()
	}
	return v
}

// refersTo reports whether v is, or holds, the map target.
func refersTo(v, target reflect.Value, seen map[uintptr]bool) bool {
	v, target = elem(v), elem(target)
	if !v.IsValid() || !target.IsValid() || target.Kind() != reflect.Map {
		return false
	}
	switch v.Kind() {
	case reflect.Map:
		if v.UnsafePointer() == target.UnsafePointer() {
			return true
		}
		p := uintptr(v.UnsafePointer())
		if seen[p] {
			return false
		}
		seen[p] = true
		iter := v.MapRange()
		for iter.Next() {
			if refersTo(iter.Value(), target, seen) {
				return true
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Len() > 0 {
			p := uintptr(v.UnsafePointer())
			if seen[p] {
				return false
			}
			seen[p] = true
		}
		for i := 0; i < v.Len(); i++ {
			if refersTo(v.Index(i), target, seen) {
				return true
			}
		}
	}
	return false
}

// inspect weighs a value a function receives or an action prints: string
// bytes and list/map elements, with shared parts counted each time they are
// reached (as fmt or JSON would print them), and its nesting depth. It fails
// when the value is deeper than maxNesting, holds more than maxValue bytes or
// maxItems elements, or contains itself. The walk visits each distinct list
// or map once and is charged to the budget.
func (m *meter) inspect(v reflect.Value) (bytes, items int64, err error) {
	v = elem(v)
	if !v.IsValid() {
		return 0, 0, nil
	}
	switch v.Kind() {
	case reflect.String:
		return int64(v.Len()), 0, nil
	case reflect.Map, reflect.Slice, reflect.Array:
	default:
		return 0, 0, nil
	}
	w := walker{}
	st, err := w.walk(v, 1)
	if cerr := m.charge(w.visited / 16); err == nil {
		err = cerr
	}
	return st.bytes, st.items, err
}

type nodeKey struct {
	p uintptr
	n int
}

type nodeStat struct {
	height       int
	bytes, items int64
}

type walker struct {
	memo    map[nodeKey]nodeStat
	active  map[nodeKey]bool
	visited int64
}

func (w *walker) walk(v reflect.Value, depth int) (nodeStat, error) {
	v = elem(v)
	if !v.IsValid() {
		return nodeStat{}, nil
	}
	switch v.Kind() {
	case reflect.String:
		return nodeStat{bytes: int64(v.Len())}, nil
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return nodeStat{bytes: int64(v.Len())}, nil
		}
	case reflect.Map, reflect.Array:
	default:
		return nodeStat{}, nil
	}
	if depth > maxNesting {
		return nodeStat{}, limitf("a value nests more than %d lists or maps deep", maxNesting)
	}
	// The top value needs no memo: only a child can meet a value twice.
	var key nodeKey
	shared := depth > 1 && v.Kind() != reflect.Array && v.Len() > 0
	if shared {
		key = nodeKey{uintptr(v.UnsafePointer()), v.Len()}
		if st, ok := w.memo[key]; ok {
			if depth-1+st.height > maxNesting {
				return nodeStat{}, limitf("a value nests more than %d lists or maps deep", maxNesting)
			}
			return st, nil
		}
		if w.active[key] {
			return nodeStat{}, errors.New("a value contains itself")
		}
		if w.memo == nil {
			w.memo, w.active = map[nodeKey]nodeStat{}, map[nodeKey]bool{}
		}
		w.active[key] = true
		defer delete(w.active, key)
	}
	w.visited++
	st := nodeStat{height: 1, items: int64(v.Len())}
	add := func(c reflect.Value) error {
		cs, err := w.walk(c, depth+1)
		if err != nil {
			return err
		}
		st.height = max(st.height, 1+cs.height)
		st.bytes += cs.bytes
		st.items += cs.items
		switch {
		case st.bytes > maxValue:
			return limitf("a value holds more than %d bytes", maxValue)
		case st.items > maxItems:
			return limitf("a value holds more than %d list or map elements", maxItems)
		}
		return nil
	}
	if v.Kind() == reflect.Map {
		iter := v.MapRange()
		for iter.Next() {
			if err := add(iter.Key()); err != nil {
				return nodeStat{}, err
			}
			if err := add(iter.Value()); err != nil {
				return nodeStat{}, err
			}
		}
	} else {
		for i := 0; i < v.Len(); i++ {
			if err := add(v.Index(i)); err != nil {
				return nodeStat{}, err
			}
		}
	}
	if st.items > maxItems {
		return nodeStat{}, limitf("a value holds more than %d list or map elements", maxItems)
	}
	if shared {
		w.memo[key] = st
	}
	return st, nil
}

// resultSize is what a function just allocated: its result's own bytes or
// elements (nested values were weighed when they were made).
func resultSize(v reflect.Value) (bytes, items int64) {
	v = elem(v)
	if !v.IsValid() {
		return 0, 0
	}
	switch v.Kind() {
	case reflect.String:
		return int64(v.Len()), 0
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return int64(v.Len()), 0
		}
		return 0, int64(v.Len())
	case reflect.Map, reflect.Array:
		return 0, int64(v.Len())
	}
	return 0, 0
}

// guard wraps fn so that every call is charged to m, checked before it runs
// (prechecks) and checked after (result sizes). A limit aborts the call with
// a panic carrying the error; text/template turns it into the call's error.
func guard(name string, fn any, m *meter) any {
	v := reflect.ValueOf(fn)
	t := v.Type()
	pre := prechecks[name]
	slow := slowFuncs[name]
	quadratic := name == "uniq" || name == "mustUniq" || name == "without" || name == "mustWithout"
	return reflect.MakeFunc(t, func(args []reflect.Value) []reflect.Value {
		var b, n int64
		for _, a := range args {
			ab, an, err := m.inspect(a)
			if err != nil {
				panic(err)
			}
			b, n = b+ab, n+an
		}
		units := 1 + slow + b/64 + n/16
		if quadratic {
			units += n * n / 1024
		}
		if err := m.charge(units); err != nil {
			panic(err)
		}
		if pre != nil {
			if err := pre(args); err != nil {
				panic(err)
			}
		}
		var out []reflect.Value
		if t.IsVariadic() {
			out = v.CallSlice(args)
		} else {
			out = v.Call(args)
		}
		if len(out) > 0 {
			b, n := resultSize(out[0])
			if b > maxValue {
				panic(limitf("%s returned %d bytes, more than %d", name, b, maxValue))
			}
			if n > maxItems {
				panic(limitf("%s returned %d elements, more than %d", name, n, maxItems))
			}
			if err := m.charge(b/64 + n/16); err != nil {
				panic(err)
			}
		}
		return out
	}).Interface()
}

// limitedBuffer is the output: it refuses to grow past maxOutput.
type limitedBuffer struct{ b []byte }

func (w *limitedBuffer) Write(p []byte) (int, error) {
	if len(w.b)+len(p) > maxOutput {
		return 0, limitf("the output is larger than %d bytes", maxOutput)
	}
	w.b = append(w.b, p...)
	return len(p), nil
}

// WriteString lets fmt and text/template write strings without a copy.
func (w *limitedBuffer) WriteString(s string) (int, error) {
	if len(w.b)+len(s) > maxOutput {
		return 0, limitf("the output is larger than %d bytes", maxOutput)
	}
	w.b = append(w.b, s...)
	return len(s), nil
}
