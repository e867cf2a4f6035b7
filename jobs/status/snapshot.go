package status

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/files"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

// DefaultFile is the status file when SIDECAR_STATUS_FILE is not set.
const DefaultFile = "/tmp/secrets-sidecar/status.json"

// FallbackMaxAge is Check's max age when neither the caller nor the file
// gives one (a file with no secrets): twice the default refresh interval.
const FallbackMaxAge = 10 * time.Minute

// Snapshot is the readiness state at one moment: the body of /ready and the
// content of the status file. It holds names, paths, times and error texts,
// never a secret value or anything derived from one.
//
// JSON (durations are Go duration text such as "5m0s"; times are RFC 3339
// with nanoseconds; zero times, empty errors and zero versions are left out):
//
//	{
//	  "ready": false,
//	  "stopped": true,            // only once the daemon has shut down
//	  "updated_at": "2025-01-02T03:04:05.123456789Z",
//	  "max_refresh_interval": "5m0s",
//	  "secrets": [
//	    {"name": "db", "vault_path": "secret/myapp/db", "refresh_interval": "1m0s", "ready": true,
//	     "last_success": "...", "last_error": "...", "last_error_at": "...", "version": 3}
//	  ]
//	}
type Snapshot struct {
	// Ready: every configured secret has been written at least once since
	// start (or since a reload added it), and the daemon is running.
	Ready bool
	// Stopped: the daemon has shut down; Ready is then false.
	Stopped bool
	// UpdatedAt is when the snapshot was taken (for the file: written).
	UpdatedAt time.Time
	// MaxRefreshInterval is the longest refresh interval of the configured
	// secrets; isready's default max age is twice this.
	MaxRefreshInterval time.Duration
	// Secrets are in config order.
	Secrets []SecretState
}

// SecretState is one secret's readiness.
type SecretState struct {
	Name            string
	VaultPath       string
	RefreshInterval time.Duration
	// Ready: written (or found up to date) at least once since configured.
	Ready       bool
	LastSuccess time.Time
	// LastError is the latest attempt's error when that attempt failed;
	// a success clears it. LastSuccess survives failures.
	LastError   string
	LastErrorAt time.Time
	// Version is the KV v2 version last written; 0 when unknown (KV v1).
	Version int
	// LastAction is the latest change action run this secret asked for
	// (nil: none yet). A failed action never makes a secret not ready.
	LastAction *ActionState
	// Source is where the secret comes from: "kv" or "lease".
	Source string
	// LeaseExpiry is when a leased secret's lease expires, as last granted.
	LeaseExpiry time.Time
	// Expiring: less than leases.min_remaining is left of the lease; the
	// sidecar is then not ready.
	Expiring bool
	// LastChange is when the secret's file last got new content (zero:
	// not since start).
	LastChange time.Time
	// NextAction is what the secret's source does next on its own (a
	// lease's "renew" or "replace", a static role's "read") and NextAt
	// when; empty: the next refresh.
	NextAction string
	NextAt     time.Time
	// CertSerial and CertNotAfter are the file's first certificate's
	// (a serial is public; "" when the file holds no certificate).
	CertSerial   string
	CertNotAfter time.Time

	minRemaining time.Duration
}

// ActionState is one change action run as the status file shows it:
// what ran, against what, and how it ended. Never a secret value.
type ActionState struct {
	Kind     string    `json:"kind"`
	Target   string    `json:"target,omitempty"`
	Result   string    `json:"result"`
	Error    string    `json:"error,omitempty"`
	At       time.Time `json:"at"`
	Attempts int       `json:"attempts"`
}

type snapshotJSON struct {
	Ready              bool          `json:"ready"`
	Stopped            bool          `json:"stopped,omitempty"`
	UpdatedAt          time.Time     `json:"updated_at"`
	MaxRefreshInterval duration      `json:"max_refresh_interval"`
	Secrets            []SecretState `json:"secrets"`
}

type secretJSON struct {
	Name            string       `json:"name"`
	VaultPath       string       `json:"vault_path"`
	RefreshInterval duration     `json:"refresh_interval"`
	Ready           bool         `json:"ready"`
	LastSuccess     time.Time    `json:"last_success,omitzero"`
	LastError       string       `json:"last_error,omitempty"`
	LastErrorAt     time.Time    `json:"last_error_at,omitzero"`
	Version         int          `json:"version,omitzero"`
	LastAction      *ActionState `json:"last_action,omitempty"`
	Source          string       `json:"source,omitempty"`
	LeaseExpiry     time.Time    `json:"lease_expiry,omitzero"`
	Expiring        bool         `json:"expiring,omitempty"`
	LastChange      time.Time    `json:"last_change,omitzero"`
	NextAction      string       `json:"next_action,omitempty"`
	NextAt          time.Time    `json:"next_at,omitzero"`
	CertSerial      string       `json:"certificate_serial,omitempty"`
	CertNotAfter    time.Time    `json:"certificate_not_after,omitzero"`
}

// duration is a time.Duration as Go duration text in JSON.
type duration time.Duration

func (d duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration", b)
	}
	*d = duration(v)
	return nil
}

// MarshalJSON implements json.Marshaler.
func (s Snapshot) MarshalJSON() ([]byte, error) {
	secrets := s.Secrets
	if secrets == nil {
		secrets = []SecretState{}
	}
	return json.Marshal(snapshotJSON{
		Ready: s.Ready, Stopped: s.Stopped, UpdatedAt: s.UpdatedAt,
		MaxRefreshInterval: duration(s.MaxRefreshInterval), Secrets: secrets,
	})
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *Snapshot) UnmarshalJSON(b []byte) error {
	var j snapshotJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Snapshot{
		Ready: j.Ready, Stopped: j.Stopped, UpdatedAt: j.UpdatedAt,
		MaxRefreshInterval: time.Duration(j.MaxRefreshInterval), Secrets: j.Secrets,
	}
	return nil
}

// MarshalJSON implements json.Marshaler.
func (s SecretState) MarshalJSON() ([]byte, error) {
	return json.Marshal(secretJSON{
		Name: s.Name, VaultPath: s.VaultPath, RefreshInterval: duration(s.RefreshInterval), Ready: s.Ready,
		LastSuccess: s.LastSuccess, LastError: s.LastError, LastErrorAt: s.LastErrorAt, Version: s.Version,
		LastAction: s.LastAction, Source: s.Source, LeaseExpiry: s.LeaseExpiry, Expiring: s.Expiring,
		LastChange: s.LastChange, NextAction: s.NextAction, NextAt: s.NextAt,
		CertSerial: s.CertSerial, CertNotAfter: s.CertNotAfter,
	})
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *SecretState) UnmarshalJSON(b []byte) error {
	var j secretJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = SecretState{
		Name: j.Name, VaultPath: j.VaultPath, RefreshInterval: time.Duration(j.RefreshInterval), Ready: j.Ready,
		LastSuccess: j.LastSuccess, LastError: j.LastError, LastErrorAt: j.LastErrorAt, Version: j.Version,
		LastAction: j.LastAction, Source: j.Source, LeaseExpiry: j.LeaseExpiry, Expiring: j.Expiring,
		LastChange: j.LastChange, NextAction: j.NextAction, NextAt: j.NextAt,
		CertSerial: j.CertSerial, CertNotAfter: j.CertNotAfter,
	}
	return nil
}

// MaxFileSize bounds what ReadFile reads. A status file is about 150
// bytes per ready secret and at most a few KiB per secret with an error
// (errors are capped at 1 KiB each), so 10,000 secrets fit even when all
// of them fail.
const MaxFileSize = 64 << 20

// MaxFutureSkew is how far in the future Check accepts updated_at (clock
// steps); more is not fresh.
const MaxFutureSkew = 5 * time.Second

// ReadFile reads a status file the way isready must trust it: it refuses
// a symbolic link (never followed), anything but a regular file (a FIFO or
// device is neither blocked on nor read), a file not owned by this
// process's effective uid or writable by group or others (someone else
// could forge it), and more than MaxFileSize bytes. A missing file's error
// satisfies errors.Is(err, fs.ErrNotExist). Errors are one line naming the
// path.
func ReadFile(path string) (Snapshot, error) {
	data, fi, err := files.ReadNoFollow(path, MaxFileSize)
	var pathErr *fs.PathError
	switch {
	case errors.As(err, &pathErr):
		return Snapshot{}, fmt.Errorf("status file %s: %w", path, pathErr.Err)
	case err != nil:
		return Snapshot{}, fmt.Errorf("status file %w", err) // ReadNoFollow's own errors start with the path
	}
	if owner, euid := ownerOf(fi), os.Geteuid(); owner != euid {
		return Snapshot{}, fmt.Errorf("status file %s is owned by uid %d, not by this process (uid %d); refusing to trust it", path, owner, euid)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return Snapshot{}, fmt.Errorf("status file %s is writable by group or others (mode %04o); refusing to trust it", path, perm)
	}
	var s Snapshot
	if len(strings.TrimSpace(string(data))) == 0 {
		return Snapshot{}, fmt.Errorf("status file %s is empty", path)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return Snapshot{}, fmt.Errorf("status file %s is not valid: %w", path, err)
	}
	if s.UpdatedAt.IsZero() {
		return Snapshot{}, fmt.Errorf("status file %s has no updated_at", path)
	}
	return s, nil
}

// DefaultMaxAge is the max age Check uses when given 0: twice the longest
// refresh interval, or FallbackMaxAge when the snapshot has none.
func (s Snapshot) DefaultMaxAge() time.Duration {
	if s.MaxRefreshInterval <= 0 {
		return FallbackMaxAge
	}
	return 2 * s.MaxRefreshInterval
}

// Check returns nil when the snapshot says ready and was taken within
// maxAge of now (maxAge <= 0: DefaultMaxAge()) and not more than
// MaxFutureSkew after now. Otherwise the error says why in one line: the
// daemon stopped, the state is from the future or stale (and how old), or
// which secrets are not written yet.
func (s Snapshot) Check(now time.Time, maxAge time.Duration) error {
	if maxAge <= 0 {
		maxAge = s.DefaultMaxAge()
	}
	if s.Stopped {
		return fmt.Errorf("not ready: the daemon stopped at %s", s.UpdatedAt.Format(time.RFC3339))
	}
	if ahead := s.UpdatedAt.Sub(now); ahead > MaxFutureSkew {
		return fmt.Errorf("not fresh: updated_at %s is %s in the future, more than %s (a clock step or a forged file)",
			s.UpdatedAt.Format(time.RFC3339), ahead.Round(time.Second), MaxFutureSkew)
	}
	if age := now.Sub(s.UpdatedAt); age > maxAge {
		return fmt.Errorf("stale: last updated %s ago at %s, more than the max age of %s",
			age.Round(time.Second), s.UpdatedAt.Format(time.RFC3339), maxAge)
	}
	var expiring []string
	for _, st := range s.Secrets {
		if st.Expiring {
			expiring = append(expiring, fmt.Sprintf("%s (lease expires %s)", st.Name, st.LeaseExpiry.Format(time.RFC3339)))
		}
	}
	if len(expiring) > 0 {
		return fmt.Errorf("not ready: leases expiring within leases.min_remaining: %s", strings.Join(expiring, ", "))
	}
	if s.Ready {
		return nil
	}
	var waiting []string
	for _, st := range s.Secrets {
		if st.Ready {
			continue
		}
		w := st.Name
		if st.LastError != "" {
			w += " (last error: " + logging.OneLine(st.LastError, 200) + ")"
		}
		waiting = append(waiting, w)
	}
	if len(waiting) == 0 {
		return errors.New("not ready: no secrets configured yet")
	}
	return fmt.Errorf("not ready: %d of %d secrets not written yet: %s", len(waiting), len(s.Secrets), strings.Join(waiting, ", "))
}
