package lease

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"time"
)

// A certificate is its own clock. PKI issues a lease only when the role
// sets generate_lease, and that lease is never renewable; without one the
// response carries the certificate and its expiration and nothing else
// would ever issue it again. So a response whose data holds a certificate
// (and no renewable lease) is issued again at renew_fraction of the
// certificate's usable life, counted from the later of its NotBefore and
// the response's arrival (PKI backdates NotBefore), or renew_before its
// NotAfter; never in the first third of that life, always with jitter.

// certLife is the first PEM certificate's validity in data["certificate"],
// else data["expiration"] (Unix seconds) as the end with no start.
func certLife(data map[string]any) (notBefore, notAfter time.Time, ok bool) {
	if s, _ := data["certificate"].(string); s != "" {
		for rest := []byte(s); ; {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				continue
			}
			if c, err := x509.ParseCertificate(b.Bytes); err == nil {
				return c.NotBefore, c.NotAfter, true
			}
			break
		}
	}
	switch v := data["expiration"].(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil && n > 0 {
			return time.Time{}, time.Unix(n, 0), true
		}
	case float64:
		if v > 0 {
			return time.Time{}, time.Unix(int64(v), 0), true
		}
	}
	return time.Time{}, time.Time{}, false
}

// certClock makes the current response's certificate the lease's clock
// when it has one and no renewable lease: issued becomes the start of its
// usable life and end its NotAfter (or the lease's end, if sooner). A GET
// without a lease stays a static read. The caller holds l.mu.
func (l *lease) certClock(received time.Time) {
	l.cert = false
	if l.cur == nil || (l.cur.ID != "" && l.cur.Renewable) || (l.cur.ID == "" && l.req.Method == http.MethodGet) {
		return
	}
	nb, na, ok := certLife(l.cur.Data)
	if !ok || !na.After(received) {
		return
	}
	l.cert = true
	l.issued = received
	if nb.After(received) {
		l.issued = nb
	}
	if l.end.IsZero() || na.Before(l.end) {
		l.end = na
	}
	if l.ttl <= 0 {
		l.ttl = na.Sub(received)
	}
}

// certRenewAt is when a certificate whose usable life runs from issued to
// end is issued again: at fraction of that life, or renewBefore its end
// when set, jittered; never in the first third of its life nor later
// than handover before its end, nor before now.
func certRenewAt(now, issued, end time.Time, fraction float64, renewBefore, handover time.Duration) time.Time {
	life := end.Sub(issued)
	at := issued.Add(spread(time.Duration(float64(life) * fraction)))
	if renewBefore > 0 {
		at = end.Add(-spread(renewBefore))
	}
	if earliest := issued.Add(life / 3); at.Before(earliest) {
		at = earliest
	}
	if latest := end.Add(-handover); at.After(latest) {
		at = latest
	}
	if at.Before(now) {
		at = now
	}
	return at
}
