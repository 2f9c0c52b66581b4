package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/slipway-ml/slipway/internal/auth"
)

// An admin gives a CI identity its token without the command line.
func TestAdminIssuesTokenToTokenOnlyUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.as(auth.RoleAdmin)
	if res := admin.Send("POST", "/api/v1/users", map[string]any{"name": "ci", "role": "contributor"}); res.Status != http.StatusCreated {
		t.Fatalf("create ci: %d %s", res.Status, res.Body)
	}
	res := admin.Send("POST", "/api/v1/users/ci/tokens", map[string]any{"name": "github-actions"})
	if res.Status != http.StatusCreated {
		t.Fatalf("token for ci: %d %s", res.Status, res.Body)
	}
	var created struct {
		ID    int64  `json:"id"`
		User  string `json:"user"`
		Token string `json:"token"`
	}
	res.Decode(t, &created)
	var me auth.User
	e.api.WithToken(created.Token).Get("/api/v1/me").Decode(t, &me)
	if created.User != "ci" || me.Name != "ci" || me.Role != auth.RoleContributor {
		t.Fatalf("the token acts as %+v (created for %q)", me, created.User)
	}
	var list struct {
		Items []auth.Token `json:"items"`
	}
	admin.Get("/api/v1/users/ci/tokens").Decode(t, &list)
	if len(list.Items) != 1 || list.Items[0].Name != "github-actions" {
		t.Errorf("ci's tokens: %+v", list.Items)
	}
	if res := admin.Get("/api/v1/users/nobody/tokens"); res.Status != http.StatusNotFound {
		t.Errorf("tokens of an unknown user: %d, want 404", res.Status)
	}
	if res := admin.Send("POST", "/api/v1/users/nobody/tokens", map[string]any{"name": "x"}); res.Status != http.StatusNotFound {
		t.Errorf("token for an unknown user: %d, want 404", res.Status)
	}
	// The audit log says who issued it to whom.
	var audit struct {
		Items []struct {
			Actor string         `json:"actor"`
			After map[string]any `json:"after"`
		} `json:"items"`
	}
	admin.Get(fmt.Sprintf("/api/v1/audit?action=token.create&target_id=%d", created.ID)).Decode(t, &audit)
	if len(audit.Items) != 1 || audit.Items[0].Actor != "admin" || audit.Items[0].After["user"] != "ci" {
		t.Errorf("audit of the issue: %+v", audit.Items)
	}
}

func TestChangeOwnPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	viewer := e.as(auth.RoleViewer)
	b := e.browser()
	b.login(userOf(auth.RoleViewer), testPassword)

	for _, tc := range []struct {
		name      string
		body      map[string]any
		wantField string
	}{
		{"wrong current", map[string]any{"current_password": "not it at all", "new_password": "a brand new password"}, "current_password"},
		{"too short", map[string]any{"current_password": testPassword, "new_password": "short"}, "new_password"},
		{"unchanged", map[string]any{"current_password": testPassword, "new_password": testPassword}, "new_password"},
	} {
		res := viewer.Send("PUT", "/api/v1/me/password", tc.body)
		if res.Status != http.StatusBadRequest || !strings.Contains(string(res.Body), `"field":"`+tc.wantField+`"`) {
			t.Errorf("%s: %d %s, want 400 on %s", tc.name, res.Status, res.Body, tc.wantField)
		}
	}
	if res := viewer.Send("PUT", "/api/v1/me/password", map[string]any{"current_password": testPassword, "new_password": "a brand new password"}); res.Status != http.StatusNoContent {
		t.Fatalf("change: %d %s", res.Status, res.Body)
	}
	ctx := context.Background()
	if _, err := e.auth.Authenticate(ctx, userOf(auth.RoleViewer), testPassword); err == nil {
		t.Error("the old password still works")
	}
	if _, err := e.auth.Authenticate(ctx, userOf(auth.RoleViewer), "a brand new password"); err != nil {
		t.Errorf("the new password does not work: %v", err)
	}
	if res := b.do("GET", "/", nil, nil); res.StatusCode != http.StatusSeeOther {
		t.Errorf("the session survived the password change: %d", res.StatusCode)
	}
	// A token-only user cannot give themselves a password.
	e.as(auth.RoleAdmin).Send("POST", "/api/v1/users", map[string]any{"name": "ci", "role": "contributor"})
	res := e.as(auth.RoleAdmin).Send("POST", "/api/v1/users/ci/tokens", map[string]any{"name": "t"})
	var created struct{ Token string }
	res.Decode(t, &created)
	res = e.api.WithToken(created.Token).Send("PUT", "/api/v1/me/password", map[string]any{"current_password": "", "new_password": "a brand new password"})
	if res.Status != http.StatusConflict {
		t.Errorf("token-only user setting a password: %d %s, want 409", res.Status, res.Body)
	}
}

func TestChangePasswordInTheUI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.login(userOf(auth.RoleReviewer), testPassword)
	res := b.do("POST", "/settings/password", url.Values{"current_password": {"wrong wrong wrong"}, "new_password": {"another long password"}}, nil)
	if body := readBody(t, res); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, `data-testid="password-error"`) {
		t.Fatalf("wrong current password: %d", res.StatusCode)
	}
	res = b.do("POST", "/settings/password", url.Values{"current_password": {testPassword}, "new_password": {"another long password"}}, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login?changed=1" {
		t.Fatalf("change: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res := e.browser().login(userOf(auth.RoleReviewer), "another long password"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("sign-in with the new password: %d", res.StatusCode)
	}
}

// The admin user page manages one user's tokens; an id that belongs to
// someone else is not on the page and is left alone.
func TestUserPageTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.login("admin", testPassword)
	res := b.do("POST", "/admin/users/viewer-user/tokens", url.Values{"name": {"made-by-admin"}, "expires_in_days": {"30"}}, http.Header{"Hx-Request": {"true"}})
	body := readBody(t, res)
	if res.StatusCode != http.StatusCreated || !strings.Contains(body, `data-testid="token-secret"`) || !strings.Contains(body, "Tokens of viewer-user") {
		t.Fatalf("create on the user page: %d\n%s", res.StatusCode, body)
	}
	secret := between(body, `data-testid="token-secret">`, "<")
	id, err := e.auth.LookupToken(context.Background(), secret)
	if err != nil || id.User.Name != "viewer-user" {
		t.Fatalf("the token acts as %+v, %v", id.User, err)
	}
	// The reviewer's token id on the viewer's page: 404, and not revoked.
	rid, err := e.auth.LookupToken(context.Background(), e.tokens[auth.RoleReviewer])
	if err != nil {
		t.Fatal(err)
	}
	res = b.do("POST", fmt.Sprintf("/admin/users/viewer-user/tokens/%d/revoke", rid.TokenID), url.Values{}, nil)
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("revoking another user's token on this page: %d, want 404", res.StatusCode)
	}
	// Same on the admin's own settings page.
	res = b.do("POST", fmt.Sprintf("/settings/tokens/%d/revoke", rid.TokenID), url.Values{}, nil)
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("revoking another user's token on one's own page: %d, want 404", res.StatusCode)
	}
	if _, err := e.auth.LookupToken(context.Background(), e.tokens[auth.RoleReviewer]); err != nil {
		t.Fatalf("a refused revocation revoked the token: %v", err)
	}
	res = b.do("POST", fmt.Sprintf("/admin/users/viewer-user/tokens/%d/revoke", id.TokenID), url.Values{}, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/users/viewer-user" {
		t.Errorf("revoke: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if _, err := e.auth.LookupToken(context.Background(), secret); err == nil {
		t.Error("the token still works after revocation")
	}
	// Role and password from the user page.
	res = b.do("POST", "/admin/users/viewer-user", url.Values{"role": {"reviewer"}}, http.Header{"Hx-Request": {"true"}, "Hx-Target": {"user-section"}})
	if body := readBody(t, res); res.StatusCode != 200 || !strings.Contains(body, `data-testid="user-notice"`) || strings.Contains(body, "users-table") {
		t.Errorf("role change on the user page: %d %s", res.StatusCode, body)
	}
	res = b.do("POST", "/admin/users/viewer-user/password", url.Values{"password": {"short"}}, nil)
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("short password: %d, want 400", res.StatusCode)
	}
	res = b.do("POST", "/admin/users/viewer-user/password", url.Values{"password": {"set by the admin!"}}, nil)
	if res.StatusCode != 200 {
		t.Errorf("set password: %d", res.StatusCode)
	}
	if _, err := e.auth.Authenticate(context.Background(), "viewer-user", "set by the admin!"); err != nil {
		t.Errorf("the password set by the admin does not work: %v", err)
	}
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	if j := strings.Index(s, end); j >= 0 {
		return s[:j]
	}
	return s
}

func TestSignInThrottleInTheUI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	for i := 0; i < auth.MaxLoginFailures; i++ {
		if res := b.login("reviewer-user", "not the password"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, res.StatusCode)
		}
	}
	res := b.login("reviewer-user", testPassword)
	if body := readBody(t, res); res.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed sign-ins") {
		t.Fatalf("after the failures: %d", res.StatusCode)
	}
	// The API's password change counts wrong current passwords the same way.
	res2 := e.as(auth.RoleReviewer).Send("PUT", "/api/v1/me/password", map[string]any{"current_password": testPassword, "new_password": "a brand new password"})
	if res2.Status != http.StatusTooManyRequests || res2.ErrorCode() != "too_many_requests" {
		t.Errorf("password change while throttled: %d %s", res2.Status, res2.Body)
	}
}
