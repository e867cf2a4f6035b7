package render

// This file makes a files: entry's content: pkcs12, a binary PKCS#12
// archive of a PKI response's private key, certificate and CA chain,
// encrypted with a password read from a file at each render.

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"unicode/utf8"

	gopkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/files"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

// maxPasswordFile is the most a pkcs12 password file may hold.
const maxPasswordFile = 4 << 10

// archiveEncoder encodes the archives: PBES2 with PBKDF2-HMAC-SHA-256 and
// AES-256-CBC for the key and the certificates, an HMAC-SHA-256 MAC. It is
// gopkcs12.Modern today, named so that a library upgrade cannot change
// unannounced what a reader needs: OpenSSL 1.1.1 and later and Java 12
// and later (8u301 and 11.0.12 too) read it; OpenSSL 1.0 and older Java
// cannot.
var archiveEncoder = gopkcs12.Modern2023

// The response fields an archive is made of (those of content: bundle).
const (
	fieldPrivateKey  = "private_key"
	fieldCertificate = "certificate"
	fieldCAChain     = "ca_chain"
	fieldIssuingCA   = "issuing_ca"
)

// archiveLabel separates this use of the key from any other in the seed
// of archiveRand; a new encoding would take a new label.
const archiveLabel = "secrets-sidecar pkcs12 archive v1"

// archiveInput is what one archive holds, parsed from a PKI response.
type archiveInput struct {
	key    any    // the private key
	keyDER []byte // the key as PKCS#8, for archiveRand
	leaf   *x509.Certificate
	cas    []*x509.Certificate
}

// renderPKCS12 makes the archive of data with the password in r's
// password file. Errors name the field or the file, never a value.
func (r *Renderer) renderPKCS12(data map[string]any) ([]byte, error) {
	in, field, err := archiveInputs(data)
	if err != nil {
		return nil, r.fail(err.Error(), data, field, false)
	}
	pass, err := readPassword(r.passwordFile)
	if err != nil {
		return nil, r.fail(err.Error(), data, "", false)
	}
	out, err := in.encode(pass)
	if err != nil {
		// gopkcs12's errors are fixed texts; scrub the password all the same.
		msg := logging.NewScrubber(pass.Reveal()).Replace("cannot make the PKCS#12 archive: " + err.Error())
		return nil, r.fail(msg, data, "", false)
	}
	return out, nil
}

// archiveInputs parses the private key, the certificate and the CA chain
// of a PKI response. When a field is missing, its name is returned too.
func archiveInputs(data map[string]any) (in archiveInput, missing string, err error) {
	for _, name := range []string{fieldPrivateKey, fieldCertificate} {
		if data[name] == nil {
			return in, name, fmt.Errorf("content: pkcs12: field %q not found in the secret%s", name, fieldList(data))
		}
	}
	keyPEM, err := pemField(data, fieldPrivateKey)
	if err != nil {
		return in, "", err
	}
	certPEM, err := pemField(data, fieldCertificate)
	if err != nil {
		return in, "", err
	}
	block, _ := pem.Decode([]byte(keyPEM))
	if block == nil {
		return in, "", fmt.Errorf("%s: %s", fieldPrivateKey, errDecodePEM)
	}
	if in.key, err = parsePrivateKey(block.Bytes); err != nil {
		return in, "", fmt.Errorf("%s: %w", fieldPrivateKey, err)
	}
	if in.keyDER, err = x509.MarshalPKCS8PrivateKey(in.key); err != nil {
		return in, "", fmt.Errorf("%s: %w", fieldPrivateKey, err)
	}
	leaf, rest, err := firstCert([]byte(certPEM))
	if err != nil {
		return in, "", fmt.Errorf("%s: %w", fieldCertificate, err)
	}
	if !keyMatches(in.key, leaf) {
		return in, "", fmt.Errorf("%s does not match the public key of %s", fieldPrivateKey, fieldCertificate)
	}
	more, err := parseCerts(rest) // a certificate field holding its chain too
	if err != nil {
		return in, "", fmt.Errorf("%s: %w", fieldCertificate, err)
	}
	chain, err := caChain(data)
	if err != nil {
		return in, "", err
	}
	in.leaf = leaf
	in.cas = appendNew(nil, leaf, append(more, chain...)...)
	return in, "", nil
}

// pemField is data's field name as PEM text; a field that is not a
// string is an error.
func pemField(data map[string]any, name string) (string, error) {
	switch v := data[name].(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	}
	return "", fmt.Errorf("field %q is not PEM text", name)
}

// keyMatches reports whether key is the private half of leaf's public key.
func keyMatches(key any, leaf *x509.Certificate) bool {
	k, ok := key.(interface{ Public() crypto.PublicKey })
	if !ok {
		return false
	}
	pub, ok := k.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(leaf.PublicKey)
}

// caChain is a PKI response's CA chain, from the fields content: bundle
// takes it from: ca_chain (a list of PEM strings, as Vault's PKI returns
// it, or its JSON text), else issuing_ca. Unlike bundle, an empty ca_chain
// list falls back to issuing_ca too.
func caChain(data map[string]any) ([]*x509.Certificate, error) {
	field := fieldCAChain
	pems, err := pemList(data[field])
	if err == nil && len(pems) == 0 {
		field = fieldIssuingCA
		pems, err = pemList(data[field])
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	var out []*x509.Certificate
	for i, p := range pems {
		certs, err := parseCerts([]byte(p))
		if err != nil {
			return nil, fmt.Errorf("%s item %d: %w", field, i, err)
		}
		out = append(out, certs...)
	}
	return out, nil
}

// pemList is a chain field's PEM strings: a list of strings, the JSON text
// of one, or one string of PEM text; none for a missing or empty field.
func pemList(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []string:
		return x, nil
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("item %d is not PEM text", i)
			}
			out[i] = s
		}
		return out, nil
	case string:
		t := strings.TrimSpace(x)
		switch {
		case t == "":
			return nil, nil
		case strings.HasPrefix(t, "["):
			var out []string
			if err := json.Unmarshal([]byte(t), &out); err != nil {
				return nil, errors.New("not a JSON list of PEM strings")
			}
			return out, nil
		}
		return []string{x}, nil
	}
	return nil, errors.New("not PEM text or a list of PEM strings")
}

// appendNew appends each of certs to list that is neither leaf nor in list
// already.
func appendNew(list []*x509.Certificate, leaf *x509.Certificate, certs ...*x509.Certificate) []*x509.Certificate {
	for _, c := range certs {
		if c.Equal(leaf) || slices.ContainsFunc(list, c.Equal) {
			continue
		}
		list = append(list, c)
	}
	return list
}

// encode makes the archive with pass.
//
// The encoding is deterministic: the same key, certificates and password
// give the same bytes. gopkcs12 draws the PBKDF2 salts of the key and
// certificate bags, the MAC's salt and the AES-CBC IVs from crypto/rand,
// so every render would differ, every refresh would rewrite the file and
// run its change actions. archiveRand gives the encoder a stream instead
// that is a function of every input. That is safe: a salt only has to
// differ between archives of different inputs (so that one password does
// not give the same keys for two archives), and an IV only has to be
// unpredictable and never reused under one key for another plaintext.
// Any change of the key, a certificate or the password gives a new seed,
// so new salts and IVs; only an identical archive repeats, which tells a
// reader nothing the unchanged file does not. The seed is keyed with the
// private key, so nobody without it can predict a salt or an IV, and the
// stream reveals neither the seed nor what it was made from.
func (in *archiveInput) encode(pass logging.Redacted) ([]byte, error) {
	return archiveEncoder.WithRand(archiveRand(in, pass)).Encode(in.key, in.leaf, in.cas, pass.Reveal())
}

// archiveRand is the encoder's randomness for in and pass: ChaCha8 (a
// cryptographically strong generator) seeded with HMAC-SHA-256, keyed with
// the private key, over archiveLabel, the password, the certificate and
// each CA certificate, each prefixed with its length.
func archiveRand(in *archiveInput, pass logging.Redacted) io.Reader {
	mac := hmac.New(sha256.New, in.keyDER)
	write := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		_, _ = mac.Write(n[:])
		_, _ = mac.Write(b)
	}
	write([]byte(archiveLabel))
	write([]byte(pass.Reveal()))
	write(in.leaf.Raw)
	for _, c := range in.cas {
		write(c.Raw)
	}
	var seed [32]byte
	copy(seed[:], mac.Sum(nil))
	return rand.NewChaCha8(seed)
}

// readPassword reads an archive's password from path. It runs at every
// render, so a rotated password is taken at the next sync. As for other
// files a neighbour may control, a symbolic link as the file itself is
// refused (O_NOFOLLOW; a directory link on the way, such as a Kubernetes
// volume's ..data, is followed), only a regular file is read, and never
// more than maxPasswordFile bytes. One trailing "\n" or "\r\n" is not
// part of the password. An empty password is an error: an archive nobody
// needs a password for is not what was asked for. Errors name the path,
// never the content.
func readPassword(path string) (logging.Redacted, error) {
	raw, _, err := files.ReadNoFollow(path, maxPasswordFile)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	pass, ok := strings.CutSuffix(string(raw), "\n")
	if ok {
		pass = strings.TrimSuffix(pass, "\r")
	}
	switch {
	case pass == "":
		return "", fmt.Errorf("password file %s is empty", path)
	case !utf8.ValidString(pass):
		return "", fmt.Errorf("password file %s is not UTF-8 text", path)
	case strings.ContainsRune(pass, 0):
		return "", fmt.Errorf("password file %s holds a NUL byte, which would end a PKCS#12 password", path)
	case strings.IndexFunc(pass, func(r rune) bool { return r > 0xFFFF }) >= 0:
		return "", fmt.Errorf("password file %s holds a character above U+FFFF, which a PKCS#12 password cannot hold", path)
	}
	return logging.Redacted(pass), nil
}
