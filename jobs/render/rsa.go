package render

import (
	"crypto/rsa"
	"crypto/sha1" // RSA-OAEP with SHA-1 is what ESO's "SHA1" names.
	"crypto/sha256"
	"crypto/sha512"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
)

// Error texts as ESO's engine v2 has them.
var (
	errParsePK    = errors.New("could not parse private key")
	errRSADecrypt = errors.New("error decrypting data with RSA")
)

const (
	errSchemeNotSupported = "decryption scheme %v is not supported"
	errParseRSAPK         = "could not parse RSA private key"
)

// rsaDecrypt decrypts in with the PEM privateKey. scheme "None" returns in
// unchanged; "RSA-OAEP" uses hash SHA1, SHA256 or SHA512 (anything else,
// "None" included, means SHA256), without a label.
func rsaDecrypt(scheme, hashName, in, privateKey string) (string, error) {
	switch scheme {
	case "None":
		return in, nil
	case "RSA-OAEP":
	default:
		return "", fmt.Errorf(errSchemeNotSupported, scheme)
	}
	block, _ := pem.Decode([]byte(privateKey))
	if block == nil {
		return "", errors.New(errDecodePEM)
	}
	key, err := parsePrivateKey(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errParsePK, err) // a fixed text
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return "", errors.New(errParseRSAPK)
	}
	out, err := rsa.DecryptOAEP(oaepHash(hashName), nil, rk, []byte(in), nil)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errRSADecrypt, err)
	}
	return string(out), nil
}

func oaepHash(name string) hash.Hash {
	switch name {
	case "SHA1":
		return sha1.New()
	case "SHA512":
		return sha512.New()
	default:
		return sha256.New()
	}
}
