package jobs

import (
	"crypto/x509"
	"encoding/pem"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/source"
)

// certs is what a rendered file's PEM CERTIFICATE blocks say: the
// earliest NotAfter (the zero time when there is none), the first
// certificate's (the leaf's) serial and NotAfter, and how many blocks did
// not parse. Those are skipped: the file is the application's, and a bad
// block there is for the application to find, not for the sync to fail
// on. Nothing else of the content leaves this function; a serial is
// public (it is in every handshake and on the CRL).
type certs struct {
	earliest     time.Time
	leafSerial   string // hex pairs joined by ':', as Vault writes it
	leafNotAfter time.Time
	malformed    int
}

func certificates(content []byte) certs {
	var out certs
	for rest := content; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return out
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			out.malformed++
			continue
		}
		if out.leafSerial == "" {
			out.leafSerial, out.leafNotAfter = source.CertSerial(c), c.NotAfter
		}
		if out.earliest.IsZero() || c.NotAfter.Before(out.earliest) {
			out.earliest = c.NotAfter
		}
	}
}
