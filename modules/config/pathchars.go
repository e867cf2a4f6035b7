package config

import (
	"fmt"
	"reflect"
	"strings"
	"unicode"
)

// isPathField says whether a config field (by its YAML name) names a file,
// a directory or a Vault path.
func isPathField(name string) bool {
	switch name {
	case "path", "destination", "ca_cert", "ca_path":
		return true
	}
	return strings.HasSuffix(name, "_file") || strings.HasSuffix(name, "_path") || strings.HasSuffix(name, "_dir")
}

// badPathRune is the first character of s that no path may hold: a control
// character (C0 with NUL, DEL, C1) or a bidirectional-text control, which
// shows a path as something it is not. ok is false when there is none.
func badPathRune(s string) (r rune, at int, ok bool) {
	for i, c := range s {
		switch {
		case unicode.IsControl(c),
			c >= 0x202A && c <= 0x202E,            // embeddings and overrides
			c >= 0x2066 && c <= 0x2069,            // isolates
			c == 0x200E, c == 0x200F, c == 0x061C: // direction marks
			return c, i, true
		}
	}
	return 0, 0, false
}

// pathChars reports every path field of cfg, as written (before defaults
// are merged in), that holds a character badPathRune refuses.
func (v *validator) pathChars(cfg *Config) {
	v.walkPaths(reflect.ValueOf(cfg).Elem(), "")
}

func (v *validator) walkPaths(rv reflect.Value, prefix string) {
	switch rv.Kind() {
	case reflect.Pointer:
		if !rv.IsNil() {
			v.walkPaths(rv.Elem(), prefix)
		}
	case reflect.Slice:
		for i := range rv.Len() {
			v.walkPaths(rv.Index(i), fmt.Sprintf("%s[%d]", prefix, i))
		}
	case reflect.Struct:
		t := rv.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			field := name
			if prefix != "" {
				field = prefix + "." + name
			}
			fv := rv.Field(i)
			if fv.Kind() == reflect.String {
				if isPathField(name) {
					if r, at, bad := badPathRune(fv.String()); bad {
						v.add(field, "holds the character %U at byte %d: a path may not hold control or bidirectional-text characters", r, at)
					}
				}
				continue
			}
			v.walkPaths(fv, field)
		}
	}
}
