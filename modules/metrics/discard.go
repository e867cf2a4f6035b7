package metrics

import "time"

// Discard records nothing. It is the recorder of a graph that serves no
// metrics (`once`): every component still gets one, so none of them has an
// optional dependency.
type Discard struct{}

// Init records nothing.
func (Discard) Init(string, string) {}

// FetchDone records nothing.
func (Discard) FetchDone(string, string, Result, time.Duration) {}

// Error records nothing.
func (Discard) Error(string, string, Stage) {}

// FileWritten records nothing.
func (Discard) FileWritten(string) {}

// LastSuccess records nothing.
func (Discard) LastSuccess(string, time.Time) {}

// Forget records nothing.
func (Discard) Forget(string, string) {}

// RefreshInterval records nothing.
func (Discard) RefreshInterval(string, time.Duration) {}

// VersionCreated records nothing.
func (Discard) VersionCreated(string, time.Time) {}

// CertificateExpiry records nothing.
func (Discard) CertificateExpiry(string, time.Time) {}

// BreakerState records nothing.
func (Discard) BreakerState(BreakerState) {}

// TokenExpiry records nothing.
func (Discard) TokenExpiry(time.Time) {}

// LoginDone records nothing.
func (Discard) LoginDone(string, LoginResult) {}

// ActionDone records nothing.
func (Discard) ActionDone(string, Result, time.Duration) {}

// ConfigReload records nothing.
func (Discard) ConfigReload(Result) {}

// Ready records nothing.
func (Discard) Ready(bool) {}

// LeaseIssued records nothing.
func (Discard) LeaseIssued(string) {}

// LeaseRenewed records nothing.
func (Discard) LeaseRenewed(Result) {}

// LeaseRevoked records nothing.
func (Discard) LeaseRevoked(Result) {}

// LeaseCapReached records nothing.
func (Discard) LeaseCapReached(string) {}

// LeaseExpiry records nothing.
func (Discard) LeaseExpiry(string, time.Time) {}
