package render

// This file wraps every template function so that its calls are metered.

import "reflect"

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
