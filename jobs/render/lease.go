package render

import (
	"errors"
	"text/template"
	"time"
)

// Lease is what a template may know of a leased secret's lease, through
// leaseExpiry, leaseTTL and leaseRenewable (never its id). The data's own
// fields stay the dot: a field may have any name.
type Lease struct {
	Expires   time.Time     // when it expires as last granted; zero: unknown
	TTL       time.Duration // the TTL last granted
	Renewable bool
}

var errNoLease = errors.New("the secret has no lease (lease functions work for leased secrets only)")

// leaseFuncs are the lease functions, bound to m's lease for one render.
func leaseFuncs(m *meter) template.FuncMap {
	get := func() (*Lease, error) {
		if m.lease == nil {
			return nil, errNoLease
		}
		return m.lease, nil
	}
	return template.FuncMap{
		// leaseExpiry is a time.Time: {{ leaseExpiry | date "2006-01-02T15:04:05Z07:00" }}.
		"leaseExpiry": func() (time.Time, error) {
			l, err := get()
			if err != nil {
				return time.Time{}, err
			}
			return l.Expires, nil
		},
		// leaseTTL is the TTL last granted, in whole seconds.
		"leaseTTL": func() (int64, error) {
			l, err := get()
			if err != nil {
				return 0, err
			}
			return int64(l.TTL / time.Second), nil
		},
		"leaseRenewable": func() (bool, error) {
			l, err := get()
			if err != nil {
				return false, err
			}
			return l.Renewable, nil
		},
	}
}
