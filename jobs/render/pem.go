package render

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
)

// Error texts and certificate kinds as ESO's engine v2 has them.
const (
	errJunk              = "error filtering pem: found junk"
	errNilCert           = "certificate is nil"
	errFoundDisjunctCert = "found multiple leaf or disjunct certificates"
	errNoLeafFound       = "no leaf certificate found"
	errChainCycle        = "constructing chain resulted in cycle"

	certTypeLeaf         = "leaf"
	certTypeIntermediate = "intermediate"
	certTypeRoot         = "root"
)

// filterPEM returns the PEM blocks of input whose type is pemType (any case),
// re-encoded. Text before the first block is ignored; if no block matches
// and something that is not PEM remains, that is an error.
func filterPEM(pemType, input string) (string, error) {
	data := []byte(skipToPEM(input))
	var out []byte
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			if len(out) == 0 && len(rest) != 0 {
				return "", errors.New(errJunk)
			}
			return string(out), nil
		}
		data = rest
		if strings.EqualFold(block.Type, pemType) {
			out = append(out, pem.EncodeToMemory(block)...)
		}
	}
}

// skipToPEM drops whatever precedes the first "-----BEGIN" (older Go
// releases' pem.Decode did so, and ESO keeps that behaviour).
func skipToPEM(s string) string {
	if i := strings.Index(s, "-----BEGIN"); i >= 0 {
		return s[i:]
	}
	return s
}

// filterCertChain returns the leaf, the intermediates or the root of the
// certificate chain in input, as PEM, or "" when the chain has none.
func filterCertChain(certType, input string) (string, error) {
	certs, err := pemCerts([]byte(input))
	if err != nil {
		return "", err
	}
	chain, err := orderChain(certs)
	if err != nil {
		return "", err
	}
	switch certType {
	case certTypeLeaf:
		if c := chain[0]; c.AuthorityKeyId != nil && !bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId) {
			return pemString(pemTypeCertificate, c.Raw), nil
		}
	case certTypeIntermediate:
		var out []byte
		for _, c := range chain[1:] {
			if isRoot(c) {
				break
			}
			out = append(out, pemString(pemTypeCertificate, c.Raw)...)
		}
		return string(out), nil
	case certTypeRoot:
		if c := chain[len(chain)-1]; isRoot(c) {
			return pemString(pemTypeCertificate, c.Raw), nil
		}
	}
	return "", nil
}

func isRoot(c *x509.Certificate) bool {
	return c.AuthorityKeyId == nil || bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId)
}

// pemCerts parses every PEM block in data as a certificate.
func pemCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			return certs, nil
		}
		data = rest
		c, err := parseCert(block.Bytes)
		if err != nil {
			return nil, err
		}
		if c == nil {
			return nil, errors.New(errNilCert)
		}
		certs = append(certs, c)
	}
}

// orderChain orders certificates leaf -> intermediates -> root by linking
// each certificate to the first other one whose subject key ID is its
// authority key ID. It is a formatting helper, not a verification: no
// signature, validity period or constraint is checked. There must be exactly
// one certificate that is no other's issuer (the leaf).
func orderChain(certs []*x509.Certificate) ([]*x509.Certificate, error) {
	parent := make([]int, len(certs))
	isParent := make([]bool, len(certs))
	for i := range certs {
		parent[i] = -1
		for j := range certs {
			if i != j && bytes.Equal(certs[i].AuthorityKeyId, certs[j].SubjectKeyId) {
				parent[i] = j
				isParent[j] = true
				break
			}
		}
	}
	leaf := -1
	for i := range certs {
		if !isParent[i] {
			if leaf >= 0 {
				return nil, errors.New(errFoundDisjunctCert)
			}
			leaf = i
		}
	}
	if leaf < 0 {
		return nil, errors.New(errNoLeafFound)
	}
	var chain []*x509.Certificate
	for i := leaf; i >= 0; i = parent[i] {
		if len(chain) == len(certs) {
			return nil, errors.New(errChainCycle)
		}
		chain = append(chain, certs[i])
	}
	return chain, nil
}

// certSANs lists the subject alternative names of the first certificate in
// input: DNS names, IP addresses, e-mail addresses, then URIs.
func certSANs(input string) ([]string, error) {
	block, _ := pem.Decode([]byte(skipToPEM(input)))
	if block == nil {
		return nil, errors.New(errDecodePEM)
	}
	c, err := parseCert(block.Bytes)
	if err != nil {
		return nil, err
	}
	sans := make([]string, 0, len(c.DNSNames)+len(c.IPAddresses)+len(c.EmailAddresses)+len(c.URIs))
	sans = append(sans, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		sans = append(sans, ip.String())
	}
	sans = append(sans, c.EmailAddresses...)
	for _, u := range c.URIs {
		sans = append(sans, u.String())
	}
	return sans, nil
}
