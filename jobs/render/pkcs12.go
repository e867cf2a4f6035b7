package render

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"

	gopkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Error texts and PEM types as ESO's engine v2 has them.
const (
	errParsePrivKey         = "unable to parse private key type"
	errDecodePEM            = "failed to decode PEM block"
	errDecodePKCS12WithPass = "unable to decode pkcs12 with password"
	errDecodeCertWithPass   = "unable to decode pkcs12 certificate with password"

	pemTypeCertificate = "CERTIFICATE"
	pemTypeKey         = "PRIVATE KEY"
)

// pkcs12keyPass returns the private key of a PKCS#12 archive as PKCS#8 PEM.
func pkcs12keyPass(pass, input string) (string, error) {
	key, _, _, err := gopkcs12.DecodeChain([]byte(input), pass)
	if err != nil {
		return "", pkcs12Error(errDecodePKCS12WithPass, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	return pemString(pemTypeKey, der), nil
}

func pkcs12key(input string) (string, error) { return pkcs12keyPass("", input) }

// pkcs12certPass returns the certificates of a PKCS#12 archive as PEM,
// ordered leaf -> intermediates -> root when they form one chain, else in
// archive order (leaf first).
func pkcs12certPass(pass, input string) (string, error) {
	_, cert, cas, err := gopkcs12.DecodeChain([]byte(input), pass)
	if err != nil {
		return "", pkcs12Error(errDecodeCertWithPass, err)
	}
	certs := append([]*x509.Certificate{cert}, cas...)
	if ordered, err := orderChain(certs); err == nil {
		certs = ordered
	}
	var out []byte
	for _, c := range certs {
		out = append(out, pemString(pemTypeCertificate, c.Raw)...)
	}
	return string(out), nil
}

func pkcs12cert(input string) (string, error) { return pkcs12certPass("", input) }

func pemToPkcs12(cert, key string) (string, error) { return pemToPkcs12Pass(cert, key, "") }

// pemToPkcs12Pass builds a base64 PKCS#12 archive from the first
// certificate of cert and the first key of key.
func pemToPkcs12Pass(cert, key, pass string) (string, error) {
	leaf, _, err := firstCert([]byte(cert))
	if err != nil {
		return "", err
	}
	return encodePkcs12(leaf, key, nil, pass)
}

func fullPemToPkcs12(cert, key string) (string, error) { return fullPemToPkcs12Pass(cert, key, "") }

// fullPemToPkcs12Pass is pemToPkcs12Pass with every further certificate of
// cert added as a CA certificate.
func fullPemToPkcs12Pass(cert, key, pass string) (string, error) {
	leaf, rest, err := firstCert([]byte(cert))
	if err != nil {
		return "", err
	}
	cas, err := parseCerts(rest)
	if err != nil {
		return "", err
	}
	return encodePkcs12(leaf, key, cas, pass)
}

func pemTruststoreToPKCS12(cert string) (string, error) { return pemTruststoreToPKCS12Pass(cert, "") }

// pemTruststoreToPKCS12Pass builds a base64 PKCS#12 trust store of every
// certificate in cert.
func pemTruststoreToPKCS12Pass(cert, pass string) (string, error) {
	cas, err := parseCerts([]byte(cert))
	if err != nil {
		return "", err
	}
	pfx, err := gopkcs12.Modern.EncodeTrustStore(cas, pass)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(pfx), nil
}

func encodePkcs12(leaf *x509.Certificate, key string, cas []*x509.Certificate, pass string) (string, error) {
	block, _ := pem.Decode([]byte(key))
	if block == nil {
		return "", errors.New(errDecodePEM)
	}
	priv, err := parsePrivateKey(block.Bytes)
	if err != nil {
		return "", err
	}
	pfx, err := gopkcs12.Modern.Encode(priv, leaf, cas, pass)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(pfx), nil
}

// parsePrivateKey reads a DER private key as PKCS#1, PKCS#8 or SEC 1.
func parsePrivateKey(der []byte) (any, error) {
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New(errParsePrivKey)
}

// firstCert parses the first PEM block of data as a certificate.
func firstCert(data []byte) (*x509.Certificate, []byte, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, nil, errors.New(errDecodePEM)
	}
	c, err := parseCert(block.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return c, rest, nil
}

// parseCerts parses every PEM block of data as a certificate. Trailing
// whitespace is fine; anything else that is not PEM is an error.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	certs := []*x509.Certificate{}
	for len(bytes.TrimSpace(data)) > 0 {
		block, rest := pem.Decode(data)
		if block == nil {
			return nil, errors.New(errDecodePEM)
		}
		c, err := parseCert(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
		data = rest
	}
	return certs, nil
}

func pemString(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}
