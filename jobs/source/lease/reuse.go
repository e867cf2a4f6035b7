package lease

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/source"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
)

// Reuse at start. A certificate written before a restart (or by `once` in
// an init container before the daemon) is kept instead of issued again
// when the files still hold what the request asks for: a certificate
// whose subject and SANs match the request's parameters, with the private
// key on disk that matches it, that chains to the mount's issuer as Vault
// itself reports it (read once per issuer, never taken from the disk) and
// that has life left before the point where it would be issued again
// anyway. The caller (the sync) rebuilds the response's fields from the
// files and confirms that rendering them gives exactly those files, so a
// reused set is byte for byte what is there: no write, no change action.

// maxNotBeforeSkew is how much longer than the requested ttl a kept
// certificate may have lived since its NotBefore: PKI backdates NotBefore
// by 30 s by default (the role's not_before_duration).
const maxNotBeforeSkew = 90 * time.Second

// Reuse offers sec's files as read back from disk (read, called only
// when a reuse is possible) as the current response of sec's request, in
// place of its first issuance: the response's fields are rebuilt from
// them (rebuild), and accept gets the
// data the source would serve and reports whether rendering it gives
// exactly those files. It returns that data when the certificate is
// kept, else nil (the reason is logged); with source.Peek (a dry run)
// nothing is kept and Vault is only asked for the issuer's certificate.
// A request that already has a response, or whose reuse was decided,
// gets nil; one whose issuer could not be read is tried again at the
// next sync (Vault may be down: the files are still good).
func (s *Source) Reuse(ctx context.Context, sec *config.Secret, mode source.Mode, read func() ([]source.File, bool), accept func(*source.Data) bool) *source.Data {
	l := s.lease(sec)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur != nil || l.reuse || l.req.Method == http.MethodGet {
		return nil
	}
	now := s.clock.Now()
	if mode == source.Live {
		l.reuse = true
		if s.state != nil && !l.adopt {
			// A recorded lease comes first: it is what was last issued.
			if adopted, err := s.adoptOnce(ctx, l, now); err != nil || adopted {
				return nil //nolint:nilerr // the fetch after this reports it
			}
		}
	}
	onDisk, ok := read()
	if !ok {
		return nil
	}
	values := rebuild(onDisk, l.genKey)
	if values == nil {
		return nil // no certificate and key: nothing to keep
	}
	log := s.log.With(zap.String("lease_path", l.req.Path), zap.Strings("secrets", l.names()))
	leaf, why, retry := s.checkOnDisk(ctx, l, values, now)
	if why != "" {
		if retry && mode == source.Live {
			l.reuse = false
			warn := log.Debug // said once: Vault down at start fails every sync
			if !l.reuseWarned {
				l.reuseWarned, warn = true, log.Warn
			}
			warn("certificate on disk not checked: trying again at the next sync", zap.String("why", why))
			return nil
		}
		log.Info("certificate on disk not reused: issuing a new one", zap.String("why", why))
		return nil
	}
	saved := l.snapshot()
	l.cur = &vault.Leased{Data: values, Received: leaf.NotBefore, Token: vault.TokenLife{Gen: s.c.TokenLife().Gen, Final: true}}
	l.end, l.ttl, l.granted, l.final = time.Time{}, 0, now, true
	l.certClock(leaf.NotBefore)
	d := l.data()
	keep := l.cert && accept(d)
	if !keep || mode == source.Peek {
		if !keep {
			log.Info("certificate on disk not reused: the files are not what this configuration renders from it; issuing a new one")
		}
		l.restore(saved)
		if keep {
			return d
		}
		return nil
	}
	s.exportExpiry(l)
	s.record(l)
	s.plan(l, now)
	log.Info("certificate on disk reused: no new issuance", zap.String("serial", source.CertSerial(leaf)), zap.Time("not_after", leaf.NotAfter))
	return l.data()
}

// rebuild makes a PKI response's fields from a secret's files: a file
// that holds one field whole (key:) gives it exactly; the rest come from
// the PEM blocks of all the files: the private key, the certificate that
// matches it, its issuing CA and the chain above that (as text to render
// again; trust comes from Vault's issuer, never from these), its serial
// and its expiration. nil when the files hold no key and matching
// certificate. A key made here (generate_key) is PEM with its final
// newline, as the source adds it; Vault's fields have none.
func rebuild(onDisk []source.File, genKey bool) map[string]any {
	values := map[string]any{}
	var certs []*x509.Certificate
	var keyBlock *pem.Block
	for _, f := range onDisk {
		switch f.Key {
		case "certificate", "private_key", "issuing_ca", "serial_number", "private_key_type":
			values[f.Key] = string(f.Content)
		}
		for rest := f.Content; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			switch {
			case b.Type == "CERTIFICATE":
				if c, err := x509.ParseCertificate(b.Bytes); err == nil && !slices.ContainsFunc(certs, c.Equal) {
					certs = append(certs, c)
				}
			case keyBlock == nil && strings.HasSuffix(b.Type, "PRIVATE KEY"):
				keyBlock = b
			}
		}
	}
	if _, ok := values["private_key"]; !ok && keyBlock != nil {
		text := string(pem.EncodeToMemory(keyBlock))
		if !genKey {
			text = strings.TrimSuffix(text, "\n")
		}
		values["private_key"] = text
	}
	key, err := parseKey(values["private_key"])
	if err != nil {
		return nil
	}
	if _, ok := values["private_key_type"]; !ok {
		values["private_key_type"] = keyTypeOf(key)
	}
	text := func(c *x509.Certificate) string {
		return strings.TrimSuffix(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})), "\n")
	}
	leaf, err := firstCertificate(values["certificate"])
	if err != nil {
		i := slices.IndexFunc(certs, func(c *x509.Certificate) bool {
			pub, ok := c.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
			return ok && pub.Equal(key.Public())
		})
		if i < 0 {
			return nil
		}
		leaf = certs[i]
		values["certificate"] = text(leaf)
	}
	parent := func(c *x509.Certificate) *x509.Certificate {
		for _, p := range certs {
			if !p.Equal(c) && !p.Equal(leaf) && bytes.Equal(p.RawSubject, c.RawIssuer) {
				return p
			}
		}
		return nil
	}
	var chain []any
	for c := parent(leaf); c != nil && len(chain) < 10; c = parent(c) {
		chain = append(chain, text(c))
		if bytes.Equal(c.RawSubject, c.RawIssuer) {
			break // self-signed: the root
		}
	}
	if _, ok := values["issuing_ca"]; !ok && len(chain) > 0 {
		values["issuing_ca"] = chain[0]
	}
	if len(chain) > 0 {
		values["ca_chain"] = chain
	}
	if _, ok := values["serial_number"]; !ok {
		values["serial_number"] = source.CertSerial(leaf)
	}
	values["expiration"] = json.Number(strconv.FormatInt(leaf.NotAfter.Unix(), 10))
	return values
}

// keyTypeOf is a key's private_key_type as PKI names it.
func keyTypeOf(k crypto.Signer) string {
	switch k.(type) {
	case *rsa.PrivateKey:
		return "rsa"
	case ed25519.PrivateKey:
		return "ed25519"
	}
	return "ec"
}

// leaseFields are what Reuse sets on a lease before it knows the files
// are kept.
type leaseFields struct {
	cur                  *vault.Leased
	issued, granted, end time.Time
	ttl                  time.Duration
	final, cert          bool
}

func (l *lease) snapshot() leaseFields {
	return leaseFields{cur: l.cur, issued: l.issued, granted: l.granted, end: l.end, ttl: l.ttl, final: l.final, cert: l.cert}
}

func (l *lease) restore(f leaseFields) {
	l.cur, l.issued, l.granted, l.end, l.ttl, l.final, l.cert = f.cur, f.issued, f.granted, f.end, f.ttl, f.final, f.cert
}

// checkOnDisk returns the leaf of values when it may be kept for l's
// request, else why not, and whether that may change by itself (the
// issuer could not be read). The caller holds l.mu.
func (s *Source) checkOnDisk(ctx context.Context, l *lease, values map[string]any, now time.Time) (_ *x509.Certificate, why string, retry bool) {
	issuer, ok := issuerPath(l.req.Path)
	if !ok {
		return nil, "not a PKI issue or sign request", false
	}
	leaf, err := firstCertificate(values["certificate"])
	if err != nil {
		return nil, "certificate: " + err.Error(), false
	}
	key, err := parseKey(values["private_key"])
	if err != nil {
		return nil, "private key: " + err.Error(), false
	}
	if pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Public()) {
		return nil, "the private key does not match the certificate", false
	}
	if why := matchRequest(leaf, key, l.req.Parameters, l.genKey); why != "" {
		return nil, why, false
	}
	roots, err := s.issuerPool(ctx, issuer)
	if err != nil {
		return nil, fmt.Sprintf("issuer from %s: %v", issuer, err), true
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Sprintf("does not chain to the issuer at %s: %v", issuer, err), false
	}
	handover := s.s.Handover + handoverMargin
	if at := certRenewAt(now, leaf.NotBefore, leaf.NotAfter, l.renewFrac, l.renewBefore, handover); !at.After(now) {
		return nil, fmt.Sprintf("too little life left (not after %s)", leaf.NotAfter.UTC().Format(time.RFC3339)), false
	}
	return leaf, "", false
}

// issuerPath is where Vault reports the issuer of a PKI issue or sign
// request at path: MOUNT/issuer/REF/json, REF "default" unless the path
// names one (MOUNT/issuer/REF/issue/ROLE).
func issuerPath(path string) (string, bool) {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	for i := len(seg) - 1; i >= 1; i-- {
		switch seg[i] {
		case "issue", "sign", "sign-verbatim":
		default:
			continue
		}
		mount, ref := seg[:i], "default"
		if n := len(mount); n >= 3 && mount[n-2] == "issuer" {
			mount, ref = mount[:n-2], mount[n-1]
		}
		return strings.Join(mount, "/") + "/issuer/" + ref + "/json", true
	}
	return "", false
}

// issuerPool is the issuer at path and its chain as Vault reports them,
// asked once per path.
func (s *Source) issuerPool(ctx context.Context, path string) (*x509.CertPool, error) {
	s.issuersMu.Lock()
	defer s.issuersMu.Unlock()
	if p, ok := s.issuers[path]; ok {
		return p, nil
	}
	resp, err := s.c.Request(ctx, vault.LeaseRequest{Method: http.MethodGet, Path: path})
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pems := []any{resp.Data["certificate"]}
	if chain, ok := resp.Data["ca_chain"].([]any); ok {
		pems = append(pems, chain...)
	}
	n := 0
	for _, p := range pems {
		if s, ok := p.(string); ok && pool.AppendCertsFromPEM([]byte(s)) {
			n++
		}
	}
	if n == 0 {
		return nil, errors.New("no certificate in the answer")
	}
	if s.issuers == nil {
		s.issuers = map[string]*x509.CertPool{}
	}
	s.issuers[path] = pool
	return pool, nil
}

// checkedParams are the issue and sign parameters a certificate on disk
// is checked against, or that do not change what it is; with any other
// (other_sans, not_after, ...) it is issued anew.
var checkedParams = map[string]bool{
	"common_name": true, "alt_names": true, "ip_sans": true, "uri_sans": true, "ttl": true,
	"exclude_cn_from_sans": true, "format": true, "private_key_format": true, "remove_roots_from_chain": true,
	"key_type": true, "key_bits": true,
}

// matchRequest says why leaf, with key, is not what params ask for ("" if
// it is): its common name, its DNS, email, IP and URI SANs, a lifetime no
// longer than the ttl asked for, and for a key made here (generate_key)
// the key's type and size.
func matchRequest(leaf *x509.Certificate, key crypto.Signer, params map[string]any, genKey bool) string {
	for _, k := range slices.Sorted(maps.Keys(params)) {
		if !checkedParams[k] {
			return fmt.Sprintf("parameter %s is not one a kept certificate is checked against", k)
		}
	}
	cn := ""
	if v, ok := params["common_name"]; ok {
		cn = fmt.Sprint(v)
	}
	if leaf.Subject.CommonName != cn {
		return "its common name is not the one requested"
	}
	var names, ips []string
	for _, n := range list(params["alt_names"]) {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip.String())
		} else {
			names = append(names, strings.ToLower(n))
		}
	}
	for _, n := range list(params["ip_sans"]) {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip.String())
		}
	}
	have := make([]string, 0, len(leaf.DNSNames)+len(leaf.EmailAddresses))
	for _, n := range append(slices.Clone(leaf.DNSNames), leaf.EmailAddresses...) {
		have = append(have, strings.ToLower(n))
	}
	// PKI adds the common name to the SANs unless exclude_cn_from_sans
	// (or it is neither a host name nor an email address): either is fine.
	if !sameSet(have, names) && !sameSet(have, append(names, strings.ToLower(cn))) {
		return "its DNS and email SANs are not the ones requested"
	}
	haveIPs := make([]string, len(leaf.IPAddresses))
	for i, ip := range leaf.IPAddresses {
		haveIPs[i] = ip.String()
	}
	if !sameSet(haveIPs, ips) {
		return "its IP SANs are not the ones requested"
	}
	haveURIs := make([]string, len(leaf.URIs))
	for i, u := range leaf.URIs {
		haveURIs[i] = u.String()
	}
	if !sameSet(haveURIs, list(params["uri_sans"])) {
		return "its URI SANs are not the ones requested"
	}
	if v, ok := params["ttl"]; ok {
		if ttl, err := vaultDuration(v); err == nil && leaf.NotAfter.Sub(leaf.NotBefore) > ttl+maxNotBeforeSkew {
			return "it lives longer than the ttl requested"
		}
	}
	if genKey {
		if why := matchKeySpec(key, params); why != "" {
			return why
		}
	}
	return ""
}

// matchKeySpec says why key is not of the type and size params ask for.
func matchKeySpec(key crypto.Signer, params map[string]any) string {
	typ, bits, err := config.KeySpec(params)
	if err != nil {
		return err.Error()
	}
	ok := false
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		ok = typ == "ec" && k.Curve.Params().BitSize == bits
	case *rsa.PrivateKey:
		ok = typ == "rsa" && k.N.BitLen() == bits
	case ed25519.PrivateKey:
		ok = typ == "ed25519"
	}
	if !ok {
		return "its key is not of the key_type and key_bits requested"
	}
	return ""
}

// vaultDuration reads a ttl as Vault does: a Go duration ("90s", "1h")
// or whole seconds.
func vaultDuration(v any) (time.Duration, error) {
	s := strings.TrimSpace(fmt.Sprint(v))
	var n int64
	if _, err := fmt.Sscan(s, &n); err == nil && fmt.Sprint(n) == s {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(s)
}

func sameSet(a, b []string) bool {
	a, b = slices.Compact(slices.Sorted(slices.Values(a))), slices.Compact(slices.Sorted(slices.Values(b)))
	return slices.Equal(a, b)
}

func firstCertificate(v any) (*x509.Certificate, error) {
	s, _ := v.(string)
	for rest := []byte(s); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, errors.New("no PEM certificate")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// parseKey reads the first PEM private key of v (PKCS #8, PKCS #1 or
// SEC 1). Its errors never hold key material.
func parseKey(v any) (crypto.Signer, error) {
	s, _ := v.(string)
	for rest := []byte(s); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, errors.New("no PEM private key")
		}
		var k any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s block does not parse", b.Type)
		}
		signer, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s block: unsupported key", b.Type)
		}
		return signer, nil
	}
}
