package vault

import (
	"errors"
	"net/url"

	"github.com/hashicorp/vault/api"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// Vault's address may carry userinfo (https://user:password@proxy/...):
// requests keep it (net/http sends it as basic auth, which a proxy in front
// of Vault may need), but nothing shown does. Go's url.Error hides only
// the password ("user:***@"), the library's ResponseError neither; both
// are rewritten in place before an error leaves the client.

// redactErr hides the userinfo of every URL the error chain carries and
// returns err.
func redactErr(err error) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = config.RedactURL(ue.URL)
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		re.URL = config.RedactURL(re.URL)
	}
	return err
}

// shownAddress is the client's address as logs show it.
func (a *apiClients) shownAddress() string { return config.RedactURL(a.data.Address()) }
