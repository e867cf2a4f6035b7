package render

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// jwkPublicKeyPem returns a public JWK as a PEM "PUBLIC KEY" (PKIX). Like
// ESO, a private JWK is refused by x509 ("unsupported public key type").
func jwkPublicKeyPem(jwkJSON string) (string, error) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON([]byte(jwkJSON)); err != nil {
		return "", jwkError("jwkPublicKeyPem", err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Key)
	if err != nil {
		return "", err
	}
	return pemString("PUBLIC KEY", der), nil
}

// jwkPrivateKeyPem returns a private JWK as a PEM "PRIVATE KEY" (PKCS#8).
func jwkPrivateKeyPem(jwkJSON string) (string, error) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON([]byte(jwkJSON)); err != nil {
		return "", jwkError("jwkPrivateKeyPem", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Key)
	if err != nil {
		return "", err
	}
	return pemString(pemTypeKey, der), nil
}

// jwkError is fn's error for a key go-jose could not read. go-jose's errors
// quote parts of the key, so only a fixed category is kept.
func jwkError(fn string, err error) error {
	var syn *json.SyntaxError
	category := "missing, unsupported or inconsistent key parameters"
	if errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "unexpected end of JSON input") {
		category = "not JSON"
	}
	return fmt.Errorf("%s: input is not a valid JSON Web Key (%s)", fn, category)
}
