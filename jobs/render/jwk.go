package render

import (
	"crypto/x509"

	jose "github.com/go-jose/go-jose/v4"
)

// jwkPublicKeyPem returns a public JWK as a PEM "PUBLIC KEY" (PKIX). Like
// ESO, a private JWK is refused by x509 ("unsupported public key type").
func jwkPublicKeyPem(jwkJSON string) (string, error) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON([]byte(jwkJSON)); err != nil {
		return "", err
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
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Key)
	if err != nil {
		return "", err
	}
	return pemString(pemTypeKey, der), nil
}
