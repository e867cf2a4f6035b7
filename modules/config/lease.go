package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
)

// Lease settings' defaults.
const (
	// DefaultRenewFraction: a renewable lease is renewed when this much of
	// its TTL has passed (jittered).
	DefaultRenewFraction = 2.0 / 3.0
	// DefaultReplaceFraction: a lease that cannot be renewed further is
	// replaced when this much of its whole life has passed (jittered).
	DefaultReplaceFraction = 0.9
	// DefaultMaxNewLeases caps the new leases minted for one request
	// within one lease period (besides the first).
	DefaultMaxNewLeases = 3
)

// revoke_on_shutdown values.
const (
	RevokeNone  = "none"
	RevokeLease = "lease"
	RevokeToken = "token"
)

// Leases is the top-level leases: block, process-wide. A reload may not
// change it.
type Leases struct {
	// StateDir, when set, records every lease (owner-only, fsynced before
	// its files are written) so that a restart adopts still-valid leases
	// instead of minting new ones. It holds a second copy of the
	// credentials: a private tmpfs, never the application's volume.
	StateDir string `yaml:"state_dir"`
	// RevokeOnShutdown: none (default), lease (revoke each lease) or
	// token (revoke the sidecar's token, and with it every lease it made).
	RevokeOnShutdown string `yaml:"revoke_on_shutdown"`
	// MinRemaining, when set, makes a leased secret whose lease has less
	// left than this "expiring" in the status file, and the sidecar not
	// ready (/ready, isready). Off by default.
	MinRemaining Duration `yaml:"min_remaining"`
	// RenewFraction and ReplaceFraction are the defaults of every leased
	// secret's lease settings.
	RenewFraction   *float64 `yaml:"renew_fraction"`
	ReplaceFraction *float64 `yaml:"replace_fraction"`
	// MaxNewLeases caps the replacements minted for one request within one
	// lease period: a renew statement that keeps failing cannot turn into
	// a loop of new credentials. Default 3.
	MaxNewLeases *int `yaml:"max_new_leases"`
}

// Lease is a secret's lease: block: a request to a Vault API path whose
// response's data is the template's data, with a lease that is renewed
// and replaced (database/creds/ROLE, pki/issue/ROLE) or, without one, a
// ttl on which it is read again (database/static-creds/ROLE).
type Lease struct {
	// Path is the full API path, without /v1/ (database/creds/app).
	Path string `yaml:"path"`
	// Method is GET (read; the default), POST or PUT (write Parameters).
	Method     string         `yaml:"method"`
	Parameters map[string]any `yaml:"parameters"`
	// RenewFraction and ReplaceFraction override the leases: block's.
	RenewFraction   *float64 `yaml:"renew_fraction"`
	ReplaceFraction *float64 `yaml:"replace_fraction"`
	// RenewBefore, when set, issues a certificate again this long before
	// its NotAfter instead of at RenewFraction of its life.
	RenewBefore Duration `yaml:"renew_before"`
	// GenerateKey: the sidecar makes the private key (of Parameters'
	// key_type and key_bits) and sends a CSR instead (pki/sign/ROLE), so
	// the key never leaves the pod.
	GenerateKey bool `yaml:"generate_key"`
}

// Fingerprint identifies the request: secrets with the same path, method
// and parameters share one lease. It is a hash, safe to log and store.
func (l *Lease) Fingerprint() string {
	keys := make([]string, 0, len(l.Parameters))
	for k := range l.Parameters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", strings.ToUpper(l.Method), l.Path)
	for _, k := range keys {
		v, _ := json.Marshal(l.Parameters[k])
		fmt.Fprintf(h, "%s\x00%s\x00", k, v)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// IsLeased reports whether the secret comes from a lease: block.
func (s *Secret) IsLeased() bool { return s.Lease != nil }

func (v *validator) leaseDefaults(c *Config) {
	l := &c.Leases
	setDefault(&l.RevokeOnShutdown, RevokeNone)
	if l.RenewFraction == nil {
		l.RenewFraction = new(DefaultRenewFraction)
	}
	if l.ReplaceFraction == nil {
		l.ReplaceFraction = new(DefaultReplaceFraction)
	}
	if l.MaxNewLeases == nil {
		l.MaxNewLeases = new(DefaultMaxNewLeases)
	}
	for i := range c.Secrets {
		s := &c.Secrets[i]
		if s.Lease == nil {
			continue
		}
		s.Lease.Path = strings.Trim(s.Lease.Path, "/")
		s.Lease.Method = strings.ToUpper(strings.TrimSpace(s.Lease.Method))
		setDefault(&s.Lease.Method, http.MethodGet)
		if s.Lease.RenewFraction == nil {
			s.Lease.RenewFraction = l.RenewFraction
		}
		if s.Lease.ReplaceFraction == nil {
			s.Lease.ReplaceFraction = l.ReplaceFraction
		}
	}
}

func (v *validator) leases(c *Config) {
	l := &c.Leases
	switch l.RevokeOnShutdown {
	case RevokeNone, RevokeLease:
	case RevokeToken:
		if c.Vault.Auth.Method == AuthToken {
			v.add("leases.revoke_on_shutdown", "token is refused with vault.auth.method token (an operator's token may be shared); use lease")
		}
	default:
		v.add("leases.revoke_on_shutdown", "%q is not one of none, lease, token", l.RevokeOnShutdown)
	}
	if msg := l.MinRemaining.problem(); msg != "" {
		v.add("leases.min_remaining", "%s", msg)
	}
	v.fraction("leases.renew_fraction", l.RenewFraction)
	v.fraction("leases.replace_fraction", l.ReplaceFraction)
	if l.MaxNewLeases != nil && *l.MaxNewLeases < 1 {
		v.add("leases.max_new_leases", "%d must be at least 1", *l.MaxNewLeases)
	}
	if l.StateDir != "" {
		switch {
		case !filepath.IsAbs(l.StateDir):
			v.add("leases.state_dir", "%q must be an absolute path", l.StateDir)
		case filepath.Clean(l.StateDir) != l.StateDir:
			v.add("leases.state_dir", "%q is not a clean path; did you mean %q?", l.StateDir, filepath.Clean(l.StateDir))
		default:
			v.stateDirApart(c)
		}
	}
	owners := map[string]int{}
	for i := range c.Secrets {
		s := &c.Secrets[i]
		if s.Lease == nil {
			continue
		}
		p := fmt.Sprintf("secrets[%d].lease", i)
		fp := s.Lease.Fingerprint()
		j, shared := owners[fp]
		if !shared {
			owners[fp] = i
			continue
		}
		o := c.Secrets[j].Lease
		if *o.RenewFraction != *s.Lease.RenewFraction || *o.ReplaceFraction != *s.Lease.ReplaceFraction || o.RenewBefore.Duration != s.Lease.RenewBefore.Duration {
			v.add(p, "the same request as secrets[%d] %q (line %d), which shares its lease, with other lease settings: renew_fraction, replace_fraction and renew_before must agree",
				j, c.Secrets[j].Name, v.idx.line(fmt.Sprintf("secrets[%d].lease", j)))
		}
	}
}

// stateDirApart refuses a state_dir that is, contains or lies inside a
// destination's directory: it holds credentials the application must not
// read, and the application's volume is where it would read them.
func (v *validator) stateDirApart(c *Config) {
	dir := c.Leases.StateDir
	for i := range c.Secrets {
		for _, d := range c.Secrets[i].Destinations() {
			if !filepath.IsAbs(d) {
				continue
			}
			dest := filepath.Dir(filepath.Clean(d))
			if within(dir, dest) || within(dest, dir) {
				v.add("leases.state_dir", "%q overlaps secrets[%d] %q's directory %q: keep the lease state off the application's volume",
					dir, i, c.Secrets[i].Name, dest)
				return
			}
		}
	}
}

// within reports whether p is dir or lies inside it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// leaseSecret checks a leased secret's own fields.
func (v *validator) leaseSecret(s *Secret, p string) {
	own := func(field string) bool { return v.idx.has(p + "." + field) }
	for _, f := range []string{"path", "mount", "kv_version", "version"} {
		if own(f) {
			v.add(p+"."+f, "does not apply to a leased secret (lease: names the full API path)")
		}
	}
	l := s.Lease
	lp := p + ".lease"
	switch {
	case l.Path == "":
		v.add(lp+".path", "required (the full API path, e.g. database/creds/app)")
	case strings.HasPrefix(l.Path, "v1/"):
		v.add(lp+".path", "%q: leave out v1/ (write database/creds/app)", l.Path)
	case strings.ContainsAny(l.Path, "?#") || strings.Contains(l.Path, "//"):
		v.add(lp+".path", "%q is not a plain API path", l.Path)
	default:
		for _, seg := range strings.Split(l.Path, "/") {
			if seg == "." || seg == ".." {
				v.add(lp+".path", "%q must not have . or .. segments", l.Path)
				break
			}
		}
	}
	switch l.Method {
	case http.MethodGet:
		if len(l.Parameters) > 0 {
			v.add(lp+".parameters", "a GET sends no parameters: use method POST or PUT to write them")
		}
	case http.MethodPost, http.MethodPut:
	default:
		v.add(lp+".method", "%q is not one of GET, POST, PUT", l.Method)
	}
	if own("lease.renew_fraction") {
		v.fraction(lp+".renew_fraction", l.RenewFraction)
	}
	if own("lease.replace_fraction") {
		v.fraction(lp+".replace_fraction", l.ReplaceFraction)
	}
	if l.RenewBefore.Duration < 0 {
		v.add(lp+".renew_before", "%s must not be negative", l.RenewBefore.Duration)
	}
	if l.GenerateKey {
		switch {
		case l.Method == http.MethodGet:
			v.add(lp+".generate_key", "needs method POST or PUT (it sends a CSR, e.g. to pki/sign/ROLE)")
		case l.Parameters["common_name"] == nil:
			v.add(lp+".parameters", "generate_key needs common_name (the CSR's subject)")
		default:
			if _, _, err := KeySpec(l.Parameters); err != nil {
				v.add(lp+".parameters", "%v", err)
			}
			if _, given := l.Parameters["csr"]; given {
				v.add(lp+".parameters.csr", "generate_key makes the CSR; leave csr out")
			}
		}
	}
}

// KeySpec checks a generate_key request's key_type and key_bits and
// returns them with their defaults (ec 256, rsa 2048).
func KeySpec(params map[string]any) (keyType string, bits int, err error) {
	keyType = "ec"
	if v, ok := params["key_type"]; ok {
		keyType = strings.ToLower(fmt.Sprint(v))
	}
	if v, ok := params["key_bits"]; ok {
		if _, err := fmt.Sscan(fmt.Sprint(v), &bits); err != nil {
			return "", 0, fmt.Errorf("key_bits %v is not a number", v)
		}
	}
	switch keyType {
	case "ec":
		if bits == 0 {
			bits = 256
		}
		if bits != 224 && bits != 256 && bits != 384 && bits != 521 {
			return "", 0, fmt.Errorf("key_bits %d: an ec key has 224, 256, 384 or 521 bits", bits)
		}
	case "rsa":
		if bits == 0 {
			bits = 2048
		}
		if bits != 2048 && bits != 3072 && bits != 4096 {
			return "", 0, fmt.Errorf("key_bits %d: an rsa key has 2048, 3072 or 4096 bits", bits)
		}
	case "ed25519":
		bits = 0
	default:
		return "", 0, fmt.Errorf("key_type %q: ec, rsa or ed25519", keyType)
	}
	return keyType, bits, nil
}

func (v *validator) fraction(field string, f *float64) {
	if f != nil && (*f <= 0 || *f >= 1) {
		v.add(field, "%v must be between 0 and 1 (exclusive)", *f)
	}
}
