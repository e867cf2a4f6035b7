package render

import (
	"fmt"
	"text/template"

	"github.com/Masterminds/sprig/v3"
)

// funcs is the template function map: sprig v3 without environment and
// network access, ESO's own functions, and text/template's printing builtins
// re-declared (same behaviour) so that their results are size-checked too.
func funcs() template.FuncMap {
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
}

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
	}
}

// guarded is funcs with every function bound to m (see guard).
func guarded(m *meter) template.FuncMap {
	fm := funcs()
	for name, fn := range fm {
		fm[name] = guard(name, fn, m)
	}
	for name, fn := range guardFuncs(m) {
		fm[name] = fn
	}
	return fm
}
