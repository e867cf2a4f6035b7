package vaulttest

import (
	"testing"
)

// Policy writes an ACL policy (HCL) named name.
func (s *Server) Policy(tb testing.TB, name, hcl string) {
	tb.Helper()
	s.Write(tb, "sys/policies/acl/"+name, map[string]any{"policy": hcl})
}

// CreateToken creates a token with the root token (auth/token/create
// parameters: policies, ttl, renewable, explicit_max_ttl, ...) and
// returns it.
func (s *Server) CreateToken(tb testing.TB, params map[string]any) string {
	tb.Helper()
	sec := s.Write(tb, "auth/token/create", params)
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		tb.Fatal("vaulttest: token create returned no token")
	}
	return sec.Auth.ClientToken
}

// AppRole enables the approle method at mount (unless it is already
// enabled), creates role with params (token_policies, token_ttl,
// bind_secret_id, ...) and returns its role_id and, when the role binds
// one, a new secret_id ("" otherwise).
func (s *Server) AppRole(tb testing.TB, mount, role string, params map[string]any) (roleID, secretID string) {
	tb.Helper()
	auths, err := s.Client(tb).Sys().ListAuthWithContext(tb.Context())
	if err != nil {
		tb.Fatalf("vaulttest: list auth: %v", err)
	}
	if _, ok := auths[mount+"/"]; !ok {
		s.EnableAuth(tb, mount, "approle")
	}
	s.Write(tb, "auth/"+mount+"/role/"+role, params)
	sec, err := s.Client(tb).Logical().ReadWithContext(tb.Context(), "auth/"+mount+"/role/"+role+"/role-id")
	if err != nil || sec == nil {
		tb.Fatalf("vaulttest: read role_id of %s: %v", role, err)
	}
	roleID, _ = sec.Data["role_id"].(string)
	if bind, ok := params["bind_secret_id"].(bool); ok && !bind {
		return roleID, ""
	}
	sec = s.Write(tb, "auth/"+mount+"/role/"+role+"/secret-id", nil)
	secretID, _ = sec.Data["secret_id"].(string)
	return roleID, secretID
}
