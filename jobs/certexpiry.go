package jobs

import (
	"crypto/x509"
	"encoding/pem"
	"time"
)

// certificateExpiry is the earliest NotAfter of the PEM CERTIFICATE blocks
// in a rendered file (the zero time when it holds none), and how many such
// blocks did not parse. Those are skipped: the file is the application's,
// and a bad block there is for the application to find, not for the sync
// to fail on. Nothing of the content leaves this function.
func certificateExpiry(content []byte) (earliest time.Time, malformed int) {
	for rest := content; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return earliest, malformed
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			malformed++
			continue
		}
		if earliest.IsZero() || c.NotAfter.Before(earliest) {
			earliest = c.NotAfter
		}
	}
}
