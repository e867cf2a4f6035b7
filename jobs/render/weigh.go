package render

// This file weighs the values functions receive, return and print.

import (
	"errors"
	"reflect"
)

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
