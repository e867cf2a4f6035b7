package notify

import (
	"slices"

	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

// CredentialSource gives the sidecar's own credentials as they are now
// (*vault.Client: its token and the credentials it logs in with), so that
// an exec action's logged output is scrubbed of them too.
type CredentialSource interface {
	Credentials() []logging.Redacted
}

// Hold records a secret's current values (Values of its latest read),
// replacing what was held for it. An exec action with log_output is
// scrubbed of every value held, whichever secrets triggered it: a command
// may print any file it can read.
func (n *Notifier) Hold(secret string, values []logging.Redacted) {
	n.heldMu.Lock()
	defer n.heldMu.Unlock()
	if n.held == nil {
		n.held = map[string][]logging.Redacted{}
	}
	n.held[secret] = slices.Clone(values)
}

// Forget drops what Hold recorded for a secret (it left the config).
func (n *Notifier) Forget(secret string) {
	n.heldMu.Lock()
	defer n.heldMu.Unlock()
	delete(n.held, secret)
}

// heldScrubber is batch's scrubber widened to every value the sidecar
// holds: every secret's held values, the credentials dropped from the
// child's environment and the sidecar's own credentials.
func (n *Notifier) heldScrubber(batch *scrubber, dropped []string) *scrubber {
	extra := slices.Clone(dropped)
	n.heldMu.Lock()
	for _, vs := range n.held {
		for _, v := range vs {
			extra = append(extra, v.Reveal())
		}
	}
	n.heldMu.Unlock()
	if n.creds != nil {
		for _, v := range n.creds.Credentials() {
			extra = append(extra, v.Reveal())
		}
	}
	return batch.with(extra)
}
