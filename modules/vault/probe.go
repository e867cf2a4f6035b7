package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/hashicorp/vault/api"
)

// Probe asks Vault's sys/health, outside the breaker, whether Vault can
// serve again: true only for an initialised, unsealed server, active or a
// (performance) standby. It is the breaker's health probe; it sends no
// token, and its error is a short cause without secrets ("dial tcp
// 127.0.0.1:8200: connect: connection refused", "HTTP 503: Vault is
// sealed").
func (c *Client) Probe(ctx context.Context) error {
	apis := c.cur.Load().apis
	resp, err := apis.login.Logical().ReadRawWithDataWithContext(ctx, "sys/health",
		map[string][]string{"standbyok": {"true"}, "perfstandbyok": {"true"}})
	if resp != nil {
		defer resp.Body.Close()
	}
	var re *api.ResponseError
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("health check: HTTP %d: %s", re.StatusCode, healthText(re.StatusCode))
	case err != nil:
		return errors.New(failureCause(redactErr(err)))
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("health check: HTTP %d: %s", resp.StatusCode, healthText(resp.StatusCode))
	}
	return nil
}

// healthText names sys/health's status codes.
func healthText(code int) string {
	switch code {
	case 501:
		return "Vault is not initialised"
	case 503:
		return "Vault is sealed"
	case 472:
		return "Vault is a disaster recovery secondary"
	}
	return http.StatusText(code)
}

// failureCause is a failed call's cause as the breaker shows it: the
// transport error without the URL, or Vault's answer.
func failureCause(err error) string {
	var re *api.ResponseError
	if errors.As(err, &re) {
		msg := serverMessage(strings.Join(re.Errors, "; "))
		if re.RawError || msg == "" {
			msg = http.StatusText(re.StatusCode)
		}
		return fmt.Sprintf("HTTP %d: %s", re.StatusCode, msg)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}
