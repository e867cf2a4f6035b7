package status

import "time"

// Discard keeps no state. It is the status sink of a graph that writes no
// status file (`once`, which reports by its exit code).
type Discard struct{}

// Configure keeps nothing.
func (Discard) Configure([]SecretInfo) {}

// Succeeded keeps nothing.
func (Discard) Succeeded(string, time.Time, int) {}

// Failed keeps nothing.
func (Discard) Failed(string, time.Time, string) {}

// LeaseExpiry records nothing.
func (Discard) LeaseExpiry(string, time.Time) {}

// Next records nothing.
func (Discard) Next(string, string, time.Time) {}

// Certificate records nothing.
func (Discard) Certificate(string, string, time.Time) {}

// Changed records nothing.
func (Discard) Changed(string, time.Time) {}
