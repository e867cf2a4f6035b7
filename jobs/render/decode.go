package render

import (
	"crypto/sha1" // htpasswd's {SHA} scheme is SHA-1 by definition.
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
	gopkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Errors of the functions that decode their input carry a fixed text and a
// fixed category, never the decoder's own error: Go's asn1, x509, pkcs12,
// hex and JSON errors quote tags, lengths, bytes or characters of the input,
// which is a secret.

// errBadCert is the error for a PEM block that does not hold a certificate.
const errBadCert = "input holds a PEM block that is not a valid X.509 certificate"

// parseCert is x509.ParseCertificate with a fixed error.
func parseCert(der []byte) (*x509.Certificate, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, errors.New(errBadCert)
	}
	return c, nil
}

// pkcs12Error is the error for an archive gopkcs12 could not open, worded
// as ESO's engine v2 words it (prefix: errDecodePKCS12WithPass for the key,
// errDecodeCertWithPass for the certificates), so alerts written for ESO
// match. A wrong password (or none) gives gopkcs12's own fixed text, as ESO
// prints it; any other failure a fixed category instead of the decoder's
// error, which can quote the input.
func pkcs12Error(prefix string, err error) error {
	var ni gopkcs12.NotImplementedError
	var cause string
	switch {
	case errors.Is(err, gopkcs12.ErrIncorrectPassword):
		cause = gopkcs12.ErrIncorrectPassword.Error()
	case errors.Is(err, gopkcs12.ErrDecryption):
		cause = gopkcs12.ErrDecryption.Error()
	case errors.As(err, &ni):
		cause = "input is not a valid PKCS#12 archive (unsupported algorithm or structure)"
	default:
		cause = "input is not a valid PKCS#12 archive (malformed)"
	}
	return fmt.Errorf("%s: %s", prefix, cause)
}

// hexdec is ESO's hexdec: the bytes a hex string spells, as a string.
func hexdec(s string) (string, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		category := "invalid character"
		if errors.Is(err, hex.ErrLength) {
			category = "odd length"
		}
		return "", fmt.Errorf("hexdec: input is not valid hex (%s)", category)
	}
	return string(b), nil
}

// htpasswd is ESO's htpasswd: "user:hash", the hash bcrypt unless the
// optional algorithm is "sha" ("{SHA}" and base64 of the password's SHA-1).
// A user name with a colon is an error (sprig and ESO print it instead).
func htpasswd(user, password string, algorithm ...string) (string, error) {
	if len(algorithm) > 1 {
		return "", fmt.Errorf("htpasswd: takes a user, a password and at most one hash algorithm, got %d algorithms", len(algorithm))
	}
	if strings.Contains(user, ":") {
		return "", errors.New("htpasswd: the user name must not contain ':'")
	}
	if len(algorithm) == 1 && algorithm[0] == "sha" {
		sum := sha1.Sum([]byte(password))
		return user + ":{SHA}" + base64.StdEncoding.EncodeToString(sum[:]), nil
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		// Only a password over 72 bytes fails; the error names no byte.
		return "", fmt.Errorf("htpasswd: %w", err)
	}
	return user + ":" + string(hash), nil
}

// mustFromJSON is sprig's mustFromJson with a fixed error.
func mustFromJSON(s string) (any, error) {
	var out any
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, fmt.Errorf("mustFromJson: input is not valid JSON (syntax error at byte %d)", syn.Offset)
		}
		return nil, errors.New("mustFromJson: input is not valid JSON")
	}
	return out, nil
}
