// Package render turns a secret's data, as Vault returned it, into the bytes
// of its destination file: through a Go text/template compatible with
// external-secrets-operator's (ESO) template engine v2, as one raw field
// (key:), or as a whole-secret format (json, yaml, env, properties).
//
// The package is pure: no Vault, no environment, no network, and no file
// I/O but one: a files: entry's content: pkcs12 reads its password file at
// each render (see "PKCS#12 archives").
// (Templates may still call sprig's clock and random functions, such as now,
// randAlphaNum and uuidv4; their output then changes on every render.)
// Compile prepares a config.Secret once; Renderer.Render runs for every
// refresh and is safe for concurrent use.
//
// # The dot
//
// As in ESO, a template's dot is a map[string]string of the secret's fields:
//
//   - strings as they are;
//   - nested objects and arrays JSON-encoded, exactly as ESO's Vault provider
//     encodes them (encoding/json: compact, keys sorted, <, > and & escaped
//     as \u003c, \u003e, \u0026), so `{{ .nested | fromJson }}` works;
//   - numbers as their JSON text. The Vault client decodes JSON numbers as
//     json.Number, whose text is kept verbatim: 3.0 stays "3.0", 1e21 stays
//     "1e21" and 12345678901234567890 keeps every digit. A float64 (from a
//     caller that decoded without UseNumber) is written as encoding/json
//     writes it ("3", "1e+21"). ESO's dataFrom extract instead round-trips
//     numbers through float64 and prints 1e21 as 1000000000000000000000; we
//     keep what is stored in Vault;
//   - booleans as "true" / "false";
//   - null as "null" (ESO writes an empty string; the issue asks for the JSON
//     text, which also keeps a null distinguishable from an empty string).
//
// A {{template "name"}} call to a template that is not defined is a parse
// error, reported when the config loads rather than when the call runs.
//
// A missing field is an error that names the secret and the field
// (text/template's missingkey=error), never "<no value>". The `index`
// builtin keeps text/template's own behaviour and yields "" for a missing
// key, as it does in ESO.
//
// # Functions
//
// Sprig v3 (TxtFuncMap) without env, expandenv and getHostByName (a template
// must not read the sidecar's environment or the network), plus ESO's:
// pkcs12key, pkcs12keyPass, pkcs12cert, pkcs12certPass, pemToPkcs12,
// pemToPkcs12Pass, fullPemToPkcs12, fullPemToPkcs12Pass,
// pemTruststoreToPKCS12, pemTruststoreToPKCS12Pass, filterPEM,
// filterCertChain, certSANs, jwkPublicKeyPem, jwkPrivateKeyPem, toYaml,
// fromYaml, rsaDecrypt, hexdec and htpasswd (USER PASS, or USER PASS HASH
// with "sha" for {SHA}, anything else bcrypt), with ESO's names, argument
// order and outputs. Known differences, all on error paths:
//
//   - a function that decodes its input (PKCS#12, X.509 in PEM, JWK, hexdec,
//     mustFromJson) fails with a fixed text and a category ("unable to
//     decode pkcs12 with password: input is not a valid PKCS#12 archive
//     (malformed)"), never the decoder's own error, which can quote the
//     input (a wrong PKCS#12 password reads exactly as in ESO: "unable to
//     decode pkcs12 with password: pkcs12: decryption password incorrect"); hexdec fails where ESO
//     prints the error, htpasswd where it prints an invalid user name;
//   - where ESO dereferences a nil PEM block (pemToPkcs12*, fullPemToPkcs12*,
//     pemTruststoreToPKCS12* given input that is not PEM) and so reports a
//     recovered nil-pointer panic, these report "failed to decode PEM block";
//     trailing whitespace after the last certificate is accepted;
//   - JWKs are parsed with go-jose instead of lestrrat-go/jwx, so the text of
//     a JWK parse error differs and kty OKP supports Ed25519 only (not
//     X25519). Outputs for valid RSA, EC and Ed25519 keys are the same PKIX
//     and PKCS#8 encodings.
//
// # Bounded execution
//
// Templates come from the operator, but a slip (a range over a huge number,
// runaway recursion, a string doubled in a loop) must not hang or exhaust the
// sidecar, so every render runs under deterministic limits. A render that
// exceeds one fails with an error that names the limit; the output is not
// written:
//
//   - a work budget of [workBudget] units: each range iteration and each
//     template invocation costs 1; each function call costs 1 plus one per
//     64 bytes of string in its arguments and result plus one per 16 list
//     or map elements; a few slow functions cost more (key generation,
//     bcrypt, scrypt, PKCS#12 encoding). Typical templates use well under 1%
//     of it;
//   - no string a function returns may exceed [maxValue] bytes and no list
//     or map [maxItems] elements; size arguments are checked before the call
//     (until, untilStep, seq, repeat, indent, nindent, randAlpha*,
//     randNumeric, randAscii, randBytes) so nothing huge is allocated;
//   - every value a function receives, and every list or map an action
//     prints, is weighed with shared parts counted each time they are
//     reached (as fmt and JSON would print them): it may not nest deeper than
//     [maxNesting] lists or maps, nor hold more than [maxValue] bytes or
//     [maxItems] elements. Printing or copying a structure built in a loop
//     could otherwise recurse past the Go stack limit (a fatal error no
//     recover catches) or expand shared parts exponentially;
//   - template recursion is limited to [maxDepth] nested calls;
//   - the output is limited to [maxOutput] bytes;
//   - set and merge refuse to make a map contain itself.
//
// The limits are counted, not timed, so a render gives the same result on a
// loaded machine as on an idle one.
//
// # Errors carry no secret values
//
// Template execution errors can quote data ({{ fail .password }}, a wrong
// PKCS#12 password, sprig's required). Every error returned by Render has
// each data value of 4 bytes or more replaced by [REDACTED], including its
// JSON-escaped, Go-quoted and base64 forms, its base64-decoded form and each
// of its lines of 8 bytes or more; it names the secret and, for a missing
// field, the field. Values are scrubbed by content, so a value transformed by
// a function (upper, trunc...) before it reaches an error is not recognised:
// this is best effort for template authors' own error paths, and exact for
// every error this package and text/template produce.
//
// # PKCS#12 archives
//
// A files: entry's content: pkcs12 (config.Secret.PKCS12Output) is a
// binary PKCS#12 archive of a PKI response: private_key, certificate and
// the CA chain (ca_chain, else issuing_ca), encrypted with gopkcs12's
// Modern2023 parameters (AES-256-CBC, PBKDF2-HMAC-SHA-256, an
// HMAC-SHA-256 MAC) and the password read from the entry's password_file.
// The same inputs give the same bytes, so an unchanged certificate is not
// rewritten; why that is safe is in archive.go.
//
// # Formats
//
// key: the field's bytes, no newline added. An exact top-level field name
// wins; otherwise the key is a gjson path over the secret's JSON (ESO's
// remoteRef.property semantics, `a\.b` for a dot in a name). A nested result
// is its JSON; scalars are written as in the dot.
//
// json: the whole secret, keys sorted at every level, two-space indent, HTML
// characters not escaped, numbers verbatim, trailing newline.
//
// yaml: the whole secret, keys sorted, two-space indent. Every string, keys
// included, is double-quoted with escapes ("yes", "0755", "1:20", "=", "<<",
// "", a newline...): YAML 1.1 and 1.2 readers then all read back the same
// string, which no plain-scalar rule can promise. Numbers keep their JSON
// text, except that an exponent gets a fraction and a sign (1e21 is written
// 1.0e+21, which YAML 1.1 reads as a number too).
//
// env: KEY=value lines sorted by key. A value is written bare when it is not
// empty and every byte is in [A-Za-z0-9_@%+=:,./-]; otherwise it is
// single-quoted, and an embedded single quote becomes the four bytes quote,
// backslash, quote, quote (POSIX sh: nothing inside single quotes is special,
// newlines included):
//
//	PASSWORD='it'\''s $HOME'
//
// `. file` and `set -a; . file` read every value back exactly; simple values
// stay bare so docker's --env-file (which does not unquote) reads them too. A
// key that is not a valid environment name ([A-Za-z_][A-Za-z0-9_]*) or a
// value holding a NUL byte (which no shell variable can hold) is an error
// naming the key.
//
// properties: key=value lines sorted by key, escaped as Java's
// Properties.store does: \t \n \r \f, backslash, = : # ! escaped, spaces in
// keys and a leading space in values escaped, and every character outside
// printable ASCII as \uXXXX (UTF-16, so surrogate pairs above U+FFFF). The
// file is plain ASCII, read identically as ISO-8859-1
// (Properties.load(InputStream), Java 8) and as UTF-8 (Java 9+ resource
// bundles, Spring).
package render
