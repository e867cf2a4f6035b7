package render

// This file checks size-taking functions' arguments before they run.

import (
	"errors"
	"math"
	"reflect"
)

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
