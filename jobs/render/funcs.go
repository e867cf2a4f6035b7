package render

import (
	"fmt"
	"sync"
	"text/template"

	"github.com/Masterminds/sprig/v3"
)

// funcs is the template function map: sprig v3 without environment and
// network access, ESO's own functions, and text/template's printing builtins
// re-declared (same behaviour) so that their results are size-checked too.
// It is built once and shared: never modify it.
var funcs = sync.OnceValue(func() template.FuncMap {
	fm := sprig.TxtFuncMap()
	for _, name := range []string{"env", "expandenv", "getHostByName"} {
		delete(fm, name)
	}
	for name, fn := range esoFuncs() {
		fm[name] = fn
	}
	fm["print"] = fmt.Sprint
	fm["printf"] = fmt.Sprintf
	fm["println"] = fmt.Sprintln
	fm["html"] = template.HTMLEscaper
	fm["js"] = template.JSEscaper
	fm["urlquery"] = template.URLQueryEscaper
	return fm
})

// funcNames is every function a template may call, for the parser (which
// only checks that a name exists): ours and text/template's builtins.
var funcNames = sync.OnceValue(func() map[string]any {
	names := map[string]any{}
	for name := range funcs() {
		names[name] = true // the parser wants a non-nil value
	}
	for _, name := range []string{"and", "call", "eq", "ge", "gt", "index", "le", "len", "lt", "ne", "not", "or", "slice"} {
		names[name] = true // the parser wants a non-nil value
	}
	for name := range leaseFuncs(&meter{}) {
		names[name] = true
	}
	return names
})

// esoFuncs are external-secrets-operator's engine v2 additions to sprig.
func esoFuncs() template.FuncMap {
	return template.FuncMap{
		"pkcs12key":      pkcs12key,
		"pkcs12keyPass":  pkcs12keyPass,
		"pkcs12cert":     pkcs12cert,
		"pkcs12certPass": pkcs12certPass,

		"pemToPkcs12":               pemToPkcs12,
		"pemToPkcs12Pass":           pemToPkcs12Pass,
		"fullPemToPkcs12":           fullPemToPkcs12,
		"fullPemToPkcs12Pass":       fullPemToPkcs12Pass,
		"pemTruststoreToPKCS12":     pemTruststoreToPKCS12,
		"pemTruststoreToPKCS12Pass": pemTruststoreToPKCS12Pass,

		"filterPEM":       filterPEM,
		"filterCertChain": filterCertChain,
		"certSANs":        certSANs,

		"jwkPublicKeyPem":  jwkPublicKeyPem,
		"jwkPrivateKeyPem": jwkPrivateKeyPem,

		"toYaml":   toYAML,
		"fromYaml": fromYAML,

		"rsaDecrypt": rsaDecrypt,

		"hexdec":       hexdec,
		"htpasswd":     htpasswd,
		"mustFromJson": mustFromJSON,
	}
}

// guarded is funcs with every function bound to m (see guard).
//
// Only the functions a template uses are bound: wrapping all ~200 of them
// for every instance cost most of a render's CPU and memory.
func guarded(m *meter, used map[string]bool) template.FuncMap {
	all := funcs()
	fm := template.FuncMap{}
	for name := range used {
		if fn, ok := all[name]; ok {
			fm[name] = guard(name, fn, m)
		}
	}
	for name, fn := range guardFuncs(m) {
		fm[name] = fn
	}
	return fm
}
