package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/slipway-ml/slipway/internal/api/apitest"
	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/database"
)

func TestStrictJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleViewer)
	tests := []struct {
		name        string
		body        string
		contentType string
		wantStatus  int
		wantCode    string
		wantField   string
	}{
		{"unknown field", `{"name":"ci","colour":"blue"}`, "application/json", 400, "invalid_argument", "colour"},
		{"text/plain", `{"name":"ci"}`, "text/plain", 415, "unsupported_media_type", ""},
		{"no content type", `{"name":"ci"}`, "application/octet-stream", 415, "unsupported_media_type", ""},
		{"not JSON", `{"name":`, "application/json", 400, "invalid_argument", "body"},
		{"empty", ``, "application/json", 400, "invalid_argument", "body"},
		{"two values", `{"name":"a"}{"name":"b"}`, "application/json", 400, "invalid_argument", "body"},
		{"wrong type", `{"name":42}`, "application/json", 400, "invalid_argument", "name"},
		{"charset is fine", `{"name":"charset-ok"}`, "application/json; charset=utf-8", 201, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := c.Do(apitest.Request{Method: "POST", Path: "/api/v1/tokens", Body: tc.body, ContentType: tc.contentType})
			if res.Status != tc.wantStatus || res.ErrorCode() != tc.wantCode {
				t.Fatalf("got %d %s, want %d %s", res.Status, res.Body, tc.wantStatus, tc.wantCode)
			}
			if tc.wantField != "" {
				var body struct {
					Error struct {
						Details []struct{ Field string } `json:"details"`
					} `json:"error"`
				}
				res.Decode(t, &body)
				if len(body.Error.Details) != 1 || body.Error.Details[0].Field != tc.wantField {
					t.Errorf("details = %+v, want field %q", body.Error.Details, tc.wantField)
				}
			}
		})
	}
	// Nothing but the one valid request created a token.
	tokens, _, err := e.auth.ListTokens(context.Background(), userOf(auth.RoleViewer), pageOf(50))
	if err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 2 {
		t.Errorf("viewer has %d tokens, want 2 (the test's and charset-ok)", len(tokens))
	}
}

// TestLargeBodyRefusedUnread declares a 10 MB body and sends none of it: the
// 413 must come back at once, proving Slipway did not wait to read it.
func TestLargeBodyRefusedUnread(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u, _ := url.Parse(e.url)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/tokens HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"name\":\"", u.Host, e.tokens[auth.RoleViewer], 10<<20)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response while the body was still unsent: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), `"too_large"`) {
		t.Fatalf("got %d %s, want 413 too_large", res.StatusCode, body)
	}
}

// endless is a JSON body of unknown length (sent chunked) that never ends.
// The transport reads it on its own goroutine, hence the atomic count.
type endless struct{ n atomic.Int64 }

func (r *endless) Read(p []byte) (int, error) {
	if r.n.Load() == 0 {
		n := copy(p, `{"name":"`)
		r.n.Add(int64(n))
		return n, nil
	}
	for i := range p {
		p[i] = 'a'
	}
	if r.n.Add(int64(len(p))) > 64<<20 {
		return 0, io.EOF // a safety net: the test fails below if it gets here
	}
	return len(p), nil
}

func TestChunkedLargeBodyRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := &endless{}
	res := e.as(auth.RoleViewer).Do(apitest.Request{Method: "POST", Path: "/api/v1/tokens", Body: io.Reader(body)})
	if res.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("got %d %s, want 413", res.Status, res.Body)
	}
	if n := body.n.Load(); n > 16<<20 {
		t.Errorf("the client sent %d bytes before the refusal; Slipway read far past its 1 MiB limit", n)
	}
}

func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.as(auth.RoleAdmin)
	if res := admin.Get("/api/v1/users"); res.Status != 200 {
		t.Fatalf("bootstrap token on an admin API: %d %s", res.Status, res.Body)
	}
	// An admin creates a reviewer and the reviewer a token of their own.
	res := admin.Send("POST", "/api/v1/users", map[string]any{"name": "rita", "role": "reviewer", "password": testPassword})
	if res.Status != http.StatusCreated {
		t.Fatalf("create user: %d %s", res.Status, res.Body)
	}
	b := e.browser()
	if r := b.login("rita", testPassword); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("rita cannot sign in: %d", r.StatusCode)
	}
	var created struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
		Hint  string `json:"hint"`
	}
	res = admin.Send("POST", "/api/v1/tokens", map[string]any{"name": "laptop", "expires_at": time.Now().Add(24 * time.Hour)})
	if res.Status != http.StatusCreated {
		t.Fatalf("create token: %d %s", res.Status, res.Body)
	}
	res.Decode(t, &created)
	if !strings.HasPrefix(created.Token, "slw_") || !strings.HasPrefix(created.Token, created.Hint) {
		t.Fatalf("token %q / hint %q", created.Token, created.Hint)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store for a secret", cc)
	}
	fresh := e.api.WithToken(created.Token)
	var me auth.User
	res = fresh.Get("/api/v1/me")
	res.Decode(t, &me)
	if res.Status != 200 || me.Name != "admin" || me.Role != auth.RoleAdmin {
		t.Fatalf("me: %d %s", res.Status, res.Body)
	}
	// The listing never shows a secret.
	if res := admin.Get("/api/v1/tokens"); strings.Contains(string(res.Body), created.Token) {
		t.Fatal("the token list shows a secret")
	}
	// Revoked: 401 at once.
	if res := admin.Do(apitest.Request{Method: "DELETE", Path: fmt.Sprintf("/api/v1/tokens/%d", created.ID)}); res.Status != 200 {
		t.Fatalf("revoke: %d %s", res.Status, res.Body)
	}
	if res := fresh.Get("/api/v1/me"); res.Status != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d, want 401", res.Status)
	}
	// Someone else's token is not found to a non-admin.
	if res := e.as(auth.RoleReviewer).Do(apitest.Request{Method: "DELETE", Path: fmt.Sprintf("/api/v1/tokens/%d", created.ID)}); res.Status != http.StatusNotFound {
		t.Fatalf("reviewer revoking the admin's token: %d, want 404", res.Status)
	}
	if res := e.as(auth.RoleViewer).Get("/api/v1/audit"); res.Status != http.StatusForbidden || res.ErrorCode() != "forbidden" {
		t.Fatalf("viewer on an admin route: %d %s, want 403", res.Status, res.Body)
	}
	if res := e.api.Get("/api/v1/me"); res.Status != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d, want 401", res.Status)
	}
	if res := e.api.Do(apitest.Request{Method: "GET", Path: "/api/v1/me", Header: http.Header{"Authorization": {"Basic YWRtaW46eA=="}}}); res.Status != http.StatusUnauthorized {
		t.Fatalf("basic auth: %d, want 401", res.Status)
	}
}

func TestDisabledUserLosesAccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.login(userOf(auth.RoleViewer), testPassword)
	res := e.as(auth.RoleAdmin).Send("PATCH", "/api/v1/users/viewer-user", map[string]any{"disabled": true})
	if res.Status != 200 {
		t.Fatalf("disable: %d %s", res.Status, res.Body)
	}
	if res := e.as(auth.RoleViewer).Get("/api/v1/me"); res.Status != http.StatusUnauthorized {
		t.Errorf("token of a disabled user: %d, want 401", res.Status)
	}
	if res := b.do("GET", "/", nil, nil); res.StatusCode != http.StatusSeeOther {
		t.Errorf("session of a disabled user: %d, want 303 to login", res.StatusCode)
	}
	// The last admin stays.
	res = e.as(auth.RoleAdmin).Send("PATCH", "/api/v1/users/admin", map[string]any{"role": "viewer"})
	if res.Status != http.StatusConflict {
		t.Errorf("demoting the last admin: %d %s, want 409", res.Status, res.Body)
	}
	res = e.as(auth.RoleAdmin).Send("PATCH", "/api/v1/users/admin", map[string]any{})
	if res.Status != http.StatusBadRequest {
		t.Errorf("empty patch: %d %s, want 400", res.Status, res.Body)
	}
}

func TestUsersAPIValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.as(auth.RoleAdmin)
	for _, body := range []map[string]any{
		{"name": "Bad Name", "role": "viewer"},
		{"name": "ok", "role": "superuser"},
		{"name": "ok", "role": "viewer", "password": "short"},
	} {
		if res := admin.Send("POST", "/api/v1/users", body); res.Status != http.StatusBadRequest {
			t.Errorf("%v: %d %s, want 400", body, res.Status, res.Body)
		}
	}
	if res := admin.Send("POST", "/api/v1/users", map[string]any{"name": "viewer-user", "role": "viewer"}); res.Status != http.StatusConflict {
		t.Errorf("duplicate: %d, want 409", res.Status)
	}
	if res := admin.Get("/api/v1/users/nobody"); res.Status != http.StatusNotFound {
		t.Errorf("unknown user: %d, want 404", res.Status)
	}
	var page struct {
		Items      []auth.User `json:"items"`
		NextCursor string      `json:"next_cursor"`
	}
	var names []string
	cursor := ""
	for i := 0; i < 10; i++ {
		res := admin.Get("/api/v1/users?limit=1&cursor=" + url.QueryEscape(cursor))
		res.Decode(t, &page)
		for _, u := range page.Items {
			names = append(names, u.Name)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if got := strings.Join(names, ","); got != "admin,contributor-user,reviewer-user,viewer-user" {
		t.Errorf("paged users = %s", got)
	}
	if res := admin.Get("/api/v1/users?limit=0"); res.Status != http.StatusBadRequest {
		t.Errorf("limit=0: %d, want 400", res.Status)
	}
	if res := admin.Get("/api/v1/users?cursor=garbage!"); res.Status != http.StatusBadRequest {
		t.Errorf("bad cursor: %d, want 400", res.Status)
	}
}

func TestAuditAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.as(auth.RoleAdmin)
	res := admin.Do(apitest.Request{Method: "POST", Path: "/api/v1/users", Body: map[string]any{"name": "audited", "role": "viewer"},
		Header: http.Header{"X-Request-Id": {"req-audit-0001"}}})
	if res.Status != http.StatusCreated {
		t.Fatalf("create user: %d %s", res.Status, res.Body)
	}
	var page struct {
		Items []struct {
			Actor, Action, TargetType, TargetID, RequestID string
			After                                          map[string]any
		} `json:"items"`
	}
	res = admin.Get("/api/v1/audit?action=user.create&target_id=audited")
	res.Decode(t, &page)
	if len(page.Items) != 1 {
		t.Fatalf("audit events: %s", res.Body)
	}
	got := page.Items[0]
	if got.Actor != "admin" || got.After["role"] != "viewer" {
		t.Errorf("event = %+v", got)
	}
	var raw []map[string]any
	var wrap struct{ Items []map[string]any }
	res.Decode(t, &wrap)
	raw = wrap.Items
	if raw[0]["request_id"] != "req-audit-0001" {
		t.Errorf("request_id = %v, want the client's", raw[0]["request_id"])
	}
	for _, bad := range []string{"?since=yesterday", "?colour=red", "?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "?limit=500"} {
		if res := admin.Get("/api/v1/audit" + bad); res.Status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, res.Status)
		}
	}
	if res := admin.Get("/api/v1/audit?until=2000-01-01T00:00:00Z"); !strings.Contains(string(res.Body), `"items":[]`) {
		t.Errorf("until 2000: %s, want no items", res.Body)
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	if r := b.login(userOf(auth.RoleViewer), testPassword); r.StatusCode != http.StatusSeeOther {
		t.Fatal("login failed")
	}
	form := url.Values{"name": {"x"}, "expires_in_days": {"30"}}
	tests := []struct {
		name   string
		header http.Header
		noCSRF bool
		want   int
	}{
		{"cross-site fetch", http.Header{"Sec-Fetch-Site": {"cross-site"}}, false, 403},
		{"same-site fetch", http.Header{"Sec-Fetch-Site": {"same-site"}}, false, 403},
		{"foreign origin", http.Header{"Sec-Fetch-Site": nil, "Origin": {"https://evil.example"}}, false, 403},
		{"cross-site form without token", http.Header{"Sec-Fetch-Site": {"cross-site"}}, true, 403},
		{"same origin without token", nil, true, 403},
		{"same origin, wrong token", http.Header{"X-Csrf-Token": {"wrong"}}, false, 403},
	}
	for _, tc := range tests {
		bb := *b
		if tc.noCSRF {
			bb.csrf = ""
		}
		res := bb.do("POST", "/settings/tokens", form, tc.header)
		if res.StatusCode != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, res.StatusCode, tc.want)
		}
	}
	tokens, _, _ := e.auth.ListTokens(context.Background(), userOf(auth.RoleViewer), pageOf(50))
	if len(tokens) != 1 {
		t.Fatalf("refused requests created tokens: %d tokens, want 1", len(tokens))
	}
	// The token in a form field (no JavaScript) works too.
	bb := *b
	bb.csrf = ""
	form.Set("csrf_token", b.csrf)
	if res := bb.do("POST", "/settings/tokens", form, nil); res.StatusCode != http.StatusCreated {
		t.Fatalf("same-origin form with token: %d", res.StatusCode)
	}
	// A cross-site login attempt (login CSRF) is refused as well.
	anon := e.browser()
	res := anon.do("POST", "/login", url.Values{"name": {"admin"}, "password": {testPassword}}, http.Header{"Sec-Fetch-Site": {"cross-site"}})
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site login: %d, want 403", res.StatusCode)
	}
}

func TestLoginAndSessionCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	if res := b.login("admin", "wrong password!"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d, want 401", res.StatusCode)
	}
	if res := b.login("nobody", testPassword); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown user: %d, want 401", res.StatusCode)
	}
	res := b.login("admin", testPassword)
	first := sessionCookie(t, res, "slipway_session")
	if !first.HttpOnly || first.SameSite != http.SameSiteLaxMode || first.Secure || first.Path != "/" {
		t.Errorf("cookie flags: %+v", first)
	}
	// Signing in again makes a new session and ends the old one.
	second := sessionCookie(t, b.login("admin", testPassword), "slipway_session")
	if second.Value == first.Value {
		t.Error("the session id did not change at sign-in")
	}
	if _, err := e.auth.LookupSession(context.Background(), first.Value); err == nil {
		t.Error("the old session still works after a new sign-in")
	}
	if res := b.do("GET", "/", nil, nil); res.StatusCode != 200 {
		t.Fatalf("dashboard: %d", res.StatusCode)
	}
	if res := b.do("POST", "/logout", url.Values{}, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	if _, err := e.auth.LookupSession(context.Background(), second.Value); err == nil {
		t.Error("the session still works after sign-out")
	}
	if res := b.do("GET", "/", nil, nil); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login?next=%2F" {
		t.Errorf("after sign-out: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	// next= cannot send the browser elsewhere.
	for _, next := range []string{"//evil.example/x", "https://evil.example", "/\\evil.example"} {
		bb := e.browser()
		res := bb.do("POST", "/login", url.Values{"name": {"admin"}, "password": {testPassword}, "next": {next}}, nil)
		if loc := res.Header.Get("Location"); loc != "/" {
			t.Errorf("next=%q redirected to %q, want /", next, loc)
		}
	}
}

func TestSecureCookieOverTLS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(t *testing.T, s *envSetup) {
		s.cfg.PublicURL, _ = url.Parse("https://slipway.example")
	})
	res := e.browser().login("admin", testPassword)
	c := sessionCookie(t, res, "__Host-slipway_session")
	if !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" {
		t.Errorf("cookie over TLS: %+v", c)
	}
	if res.Header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS over TLS")
	}
}

func sessionCookie(t *testing.T, res *http.Response, name string) *http.Cookie {
	t.Helper()
	for _, c := range res.Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", name, res.Header["Set-Cookie"])
	return nil
}

func TestSecurityHeadersAndNoInlineScript(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.login("admin", testPassword)
	for _, path := range []string{"/login", "/", "/settings/tokens", "/admin/users", "/audit", "/no-such-page"} {
		res := b.do("GET", path, nil, nil)
		h := res.Header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-eval") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		for k, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"} {
			if h.Get(k) != want {
				t.Errorf("%s: %s = %q, want %q", path, k, h.Get(k), want)
			}
		}
		if h.Get("X-Request-Id") == "" {
			t.Errorf("%s: no X-Request-Id", path)
		}
		doc, err := goquery.NewDocumentFromReader(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		doc.Find("script").Each(func(_ int, s *goquery.Selection) {
			if _, ok := s.Attr("src"); !ok || strings.TrimSpace(s.Text()) != "" {
				t.Errorf("%s: inline script %q", path, s.Text())
			}
		})
		doc.Find("[style]").Each(func(_ int, s *goquery.Selection) {
			t.Errorf("%s: inline style attribute on <%s>", path, goquery.NodeName(s))
		})
	}
}

func TestStaticAssetsHashedAndCached(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.browser().do("GET", "/login", nil, nil)
	doc, err := goquery.NewDocumentFromReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	doc.Find(`link[rel=stylesheet], link[rel=icon], script[src]`).Each(func(_ int, s *goquery.Selection) {
		if v, ok := s.Attr("href"); ok {
			urls = append(urls, v)
		}
		if v, ok := s.Attr("src"); ok {
			urls = append(urls, v)
		}
	})
	if len(urls) != 4 {
		t.Fatalf("assets on the login page: %v, want icon, css, htmx and slipway.js", urls)
	}
	for _, u := range urls {
		res := e.browser().do("GET", u, nil, nil)
		if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Cache-Control"), "immutable") {
			t.Errorf("%s: %d, Cache-Control %q", u, res.StatusCode, res.Header.Get("Cache-Control"))
		}
	}
	if res := e.browser().do("GET", "/static/css/slipway.css", nil, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("unhashed asset path: %d, want 404", res.StatusCode)
	}
}

func TestErrorResponses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if res := e.as(auth.RoleViewer).Get("/api/v1/no-such-thing"); res.Status != 404 || res.ErrorCode() != "not_found" {
		t.Errorf("unknown API path: %d %s", res.Status, res.Body)
	}
	b := e.browser()
	b.login("admin", testPassword)
	res := b.do("GET", "/no-such-page", nil, nil)
	body := readBody(t, res)
	if res.StatusCode != 404 || !strings.Contains(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, `data-testid="error"`) {
		t.Errorf("unknown page: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	// An htmx request gets a fragment aimed at the flash area.
	res = b.do("POST", "/settings/tokens/999999/revoke", url.Values{}, http.Header{"Hx-Request": {"true"}})
	body = readBody(t, res)
	if res.StatusCode != 404 || res.Header.Get("HX-Retarget") != "#flash" || strings.Contains(body, "<html") || !strings.Contains(body, `data-testid="flash"`) {
		t.Errorf("htmx error: %d retarget %q body %s", res.StatusCode, res.Header.Get("HX-Retarget"), body)
	}
	// htmx without a session is sent to the login page by HX-Redirect.
	res = e.browser().do("GET", "/audit", nil, http.Header{"Hx-Request": {"true"}})
	if res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("HX-Redirect"), "/login") {
		t.Errorf("htmx without session: %d %q", res.StatusCode, res.Header.Get("HX-Redirect"))
	}
}

func TestOpenAPIDocumentCoversTheAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.api.Get("/api/v1/openapi.json")
	if res.Status != 200 || !strings.Contains(string(res.Body), `"openapi":"3.0.3"`) {
		t.Fatalf("openapi.json: %d", res.Status)
	}
	registered := map[string]bool{}
	for _, r := range e.server.Echo().Routes() {
		if !strings.HasPrefix(r.Path, "/api/") && r.Path != "/healthz" && r.Path != "/readyz" {
			continue
		}
		p := strings.Replace(r.Path, "/*", "/{path}", 1) // the artifact path
		for _, seg := range strings.Split(p, "/") {
			if strings.HasPrefix(seg, ":") {
				p = strings.Replace(p, seg, "{"+seg[1:]+"}", 1)
			}
		}
		key := r.Method + " " + p
		registered[key] = true
		item := e.doc.Spec.Paths.Find(p)
		if item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("%s is served but not in the OpenAPI document", key)
		}
	}
	for path, item := range e.doc.Spec.Paths.Map() {
		for method := range item.Operations() {
			if !registered[method+" "+path] {
				t.Errorf("%s %s is in the OpenAPI document but not served", method, path)
			}
		}
	}
}

// proxy is a TCP proxy in front of PostgreSQL that a test can cut, as if
// the database went away, and restore.
type proxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target}
	p.start("127.0.0.1:0")
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) start(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	var px *proxy
	e := newEnv(t, func(t *testing.T, s *envSetup) {
		u, _ := url.Parse(s.pool.Config().ConnString())
		px = newProxy(t, u.Host)
		u.Host = px.addr
		pool, err := database.Open(context.Background(), database.Config{URL: u.String(), ConnectTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		s.pool = pool
		s.cfg.RequestTimeout = 3 * time.Second
	})
	admin := e.as(auth.RoleAdmin)
	if res := e.api.Get("/readyz"); res.Status != 200 {
		t.Fatalf("readyz before: %d %s", res.Status, res.Body)
	}
	if res := admin.Get("/api/v1/users"); res.Status != 200 {
		t.Fatalf("users before: %d", res.Status)
	}

	px.stop()
	if res := e.api.Get("/readyz"); res.Status != http.StatusServiceUnavailable || !strings.Contains(string(res.Body), `"database":"unreachable"`) {
		t.Errorf("readyz during the outage: %d %s", res.Status, res.Body)
	}
	start := time.Now()
	res := admin.Get("/api/v1/users")
	if res.Status != http.StatusServiceUnavailable || res.ErrorCode() != "unavailable" {
		t.Errorf("API during the outage: %d %s, want 503 unavailable", res.Status, res.Body)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the 503 took %v, longer than the request deadline", d)
	}
	res2 := e.browser().do("POST", "/login", url.Values{"name": {"admin"}, "password": {testPassword}}, nil)
	if res2.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("login during the outage: %d, want 503", res2.StatusCode)
	}

	px.start(px.addr)
	deadline := time.Now().Add(15 * time.Second)
	for {
		res := admin.Get("/api/v1/users")
		if res.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after the database came back: %d %s", res.Status, res.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if res := e.api.Get("/readyz"); res.Status != 200 {
		t.Errorf("readyz after: %d", res.Status)
	}
}

func TestClientAddressFromTrustedProxiesOnly(t *testing.T) {
	t.Parallel()
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	for _, tc := range []struct {
		name    string
		trusted []*net.IPNet
		want    string
	}{
		{"direct peer by default", nil, "127.0.0.1"},
		{"forwarded address behind a trusted proxy", []*net.IPNet{loopback}, "203.0.113.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(t *testing.T, s *envSetup) { s.cfg.TrustedProxies = tc.trusted })
			admin := e.as(auth.RoleAdmin)
			res := admin.Do(apitest.Request{Method: "POST", Path: "/api/v1/users", Body: map[string]any{"name": "proxied", "role": "viewer"},
				Header: http.Header{"X-Forwarded-For": {"203.0.113.9"}}})
			if res.Status != http.StatusCreated {
				t.Fatalf("create: %d %s", res.Status, res.Body)
			}
			var page struct {
				Items []struct {
					RemoteAddr string `json:"remote_addr"`
				}
			}
			admin.Get("/api/v1/audit?action=user.create&target_id=proxied").Decode(t, &page)
			if len(page.Items) != 1 || page.Items[0].RemoteAddr != tc.want {
				t.Errorf("remote_addr = %+v, want %s", page.Items, tc.want)
			}
		})
	}
}
