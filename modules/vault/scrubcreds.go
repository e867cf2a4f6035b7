package vault

import "github.com/secrets-sidecar/secrets-sidecar/modules/logging"

// Credentials are the client's credentials as they are now: the current
// token, the token method's token, AppRole's role_id and secret_id from
// the environment, and the login method's credential files (read as a
// login reads them; one that cannot be read is left out). They are for
// scrubbing text the sidecar logs (notify.CredentialSource), never for
// printing.
func (c *Client) Credentials() []logging.Redacted {
	cn := c.cur.Load()
	out := []logging.Redacted{cn.state().token}
	if cn.tokens != nil {
		if t, err := cn.tokens.read(); err == nil {
			out = append(out, t)
		}
	}
	if r, ok := cn.method.(*appRole); ok {
		out = append(out, r.roleIDEnv, r.secretIDEnv)
	}
	if cn.method != nil {
		for _, f := range cn.method.files() {
			if v, err := readCredential("credential file", f); err == nil {
				out = append(out, v)
			}
		}
	}
	return out
}
