package source

import (
	"crypto/x509"
	"strings"
)

// File is one file a secret wrote, as read back from disk: its content,
// and the response field it holds whole (its key:), "" for a template, a
// format or a named content.
type File struct {
	Key     string
	Content []byte
}

// CertSerial is a certificate's serial as Vault prints it (pki/cert/SERIAL):
// two lower-case hex digits per byte, joined by ':'.
func CertSerial(c *x509.Certificate) string {
	b := c.SerialNumber.Bytes()
	if len(b) == 0 {
		return "00"
	}
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = string("0123456789abcdef"[x>>4]) + string("0123456789abcdef"[x&15])
	}
	return strings.Join(parts, ":")
}
