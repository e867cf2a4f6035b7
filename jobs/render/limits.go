package render

// This file holds the limits of one render and the meter that counts a
// render's work against them.

import (
	"errors"
	"fmt"
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
	lease *Lease // this render's lease (leaseFuncs); nil for a KV secret
}

func (m *meter) reset() { *m = meter{} }

func (m *meter) charge(units int64) error {
	m.used += units
	if m.used > workBudget {
		return limitf("the template used its work budget of %d units (range iterations, template calls, function calls and the bytes they handle)", workBudget)
	}
	return nil
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
