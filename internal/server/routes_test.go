package server_test

import (
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipway-ml/slipway/internal/api/apitest"
	"github.com/slipway-ml/slipway/internal/auth"
)

const public auth.Role = ""

// routeRoles is the expected access rule of every route. It is written
// here, apart from the route table, so that a route added without thought
// about its access fails this test. Only the explicit allowlist is public.
var routeRoles = map[string]auth.Role{
	// the public allowlist
	"GET /healthz":             public,
	"GET /readyz":              public,
	"GET /static/*":            public,
	"GET /api/v1/openapi.json": public,
	"GET /login":               public,
	"POST /login":              public,

	"GET /api/v1/me":                                                  auth.RoleViewer,
	"GET /api/v1/tokens":                                              auth.RoleViewer,
	"POST /api/v1/tokens":                                             auth.RoleViewer,
	"DELETE /api/v1/tokens/:id":                                       auth.RoleViewer,
	"GET /api/v1/users":                                               auth.RoleAdmin,
	"POST /api/v1/users":                                              auth.RoleAdmin,
	"GET /api/v1/users/:name":                                         auth.RoleAdmin,
	"PATCH /api/v1/users/:name":                                       auth.RoleAdmin,
	"GET /api/v1/audit":                                               auth.RoleAdmin,
	"GET /api/v1/models":                                              auth.RoleViewer,
	"POST /api/v1/models":                                             auth.RoleContributor,
	"GET /api/v1/models/:model":                                       auth.RoleViewer,
	"PATCH /api/v1/models/:model":                                     auth.RoleContributor,
	"GET /api/v1/models/:model/versions":                              auth.RoleViewer,
	"POST /api/v1/models/:model/versions":                             auth.RoleContributor,
	"GET /api/v1/models/:model/versions/:version":                     auth.RoleViewer,
	"GET /api/v1/models/:model/versions/:version/artifacts/*":         auth.RoleViewer,
	"PUT /api/v1/models/:model/versions/:version/artifacts/*":         auth.RoleContributor,
	"HEAD /api/v1/models/:model/versions/:version/artifacts/*":        auth.RoleViewer,
	"POST /api/v1/models/:model/versions/:version/finalize":           auth.RoleContributor,
	"GET /api/v1/models/:model/versions/:version/provenance":          auth.RoleViewer,
	"GET /api/v1/datasets":                                            auth.RoleViewer,
	"POST /api/v1/datasets":                                           auth.RoleContributor,
	"GET /api/v1/datasets/:dataset":                                   auth.RoleViewer,
	"GET /api/v1/datasets/:dataset/versions":                          auth.RoleViewer,
	"POST /api/v1/datasets/:dataset/versions":                         auth.RoleContributor,
	"GET /api/v1/datasets/:dataset/versions/:version":                 auth.RoleViewer,
	"GET /api/v1/datasets/:dataset/versions/:version/file":            auth.RoleViewer,
	"HEAD /api/v1/datasets/:dataset/versions/:version/file":           auth.RoleViewer,
	"GET /api/v1/datasets/:dataset/versions/:version/quality":         auth.RoleViewer,
	"POST /api/v1/datasets/:dataset/versions/:version/quality":        auth.RoleContributor,
	"GET /api/v1/datasets/:dataset/versions/:version/quality/:id/raw": auth.RoleViewer,
	"GET /api/v1/datasets/:dataset/versions/:version/impact":          auth.RoleViewer,
	"GET /api/v1/runs":                                                auth.RoleViewer,
	"POST /api/v1/runs":                                               auth.RoleContributor,
	"GET /api/v1/runs/:id":                                            auth.RoleViewer,
	"GET /api/v1/lineage":                                             auth.RoleViewer,
	"POST /api/v1/openlineage":                                        auth.RoleContributor,
	"GET /api/v1/webhooks":                                            auth.RoleAdmin,
	"POST /api/v1/webhooks":                                           auth.RoleAdmin,
	"GET /api/v1/webhooks/:id":                                        auth.RoleAdmin,
	"PATCH /api/v1/webhooks/:id":                                      auth.RoleAdmin,
	"POST /api/v1/webhooks/:id/rotate":                                auth.RoleAdmin,
	"POST /api/v1/webhooks/:id/test":                                  auth.RoleAdmin,
	"POST /api/v1/webhooks/:id/replay":                                auth.RoleAdmin,
	"GET /api/v1/webhooks/:id/deliveries":                             auth.RoleAdmin,
	"GET /api/v1/webhooks/:id/deliveries/:message":                    auth.RoleAdmin,
	"POST /api/v1/webhooks/:id/deliveries/:message/redeliver":         auth.RoleAdmin,
	"GET /models/:model/stages/:stage/policy":                         auth.RoleViewer,
	"POST /models/:model/stages/:stage/policy":                        auth.RoleAdmin,
	"GET /reviews":                                                    auth.RoleViewer,
	"GET /webhooks":                                                   auth.RoleAdmin,
	"POST /webhooks":                                                  auth.RoleAdmin,
	"GET /webhooks/:id":                                               auth.RoleAdmin,
	"POST /webhooks/:id/:verb":                                        auth.RoleAdmin,
	"POST /webhooks/:id/deliveries/:message/redeliver":                auth.RoleAdmin,
	"POST /models/:model/stages":                                      auth.RoleAdmin,
	"GET /models/:model/versions/:version/evaluations/:id/raw":        auth.RoleViewer,
	"GET /promotions/:id":                                             auth.RoleViewer,
	"POST /promotions/:id/review":                                     auth.RoleReviewer,
	"POST /promotions/:id/cancel":                                     auth.RoleContributor,
	"GET /api/v1/models/:model/versions/:version/evaluations":         auth.RoleViewer,
	"POST /api/v1/models/:model/versions/:version/evaluations":        auth.RoleContributor,
	"GET /api/v1/models/:model/versions/:version/evaluations/:id":     auth.RoleViewer,
	"GET /api/v1/models/:model/versions/:version/evaluations/:id/raw": auth.RoleViewer,
	"POST /api/v1/models/:model/versions/:version/promotions":         auth.RoleContributor,
	"GET /api/v1/models/:model/stages":                                auth.RoleViewer,
	"POST /api/v1/models/:model/stages":                               auth.RoleAdmin,
	"GET /api/v1/models/:model/stages/:stage":                         auth.RoleViewer,
	"GET /api/v1/models/:model/stages/:stage/history":                 auth.RoleViewer,
	"GET /api/v1/models/:model/stages/:stage/holder":                  auth.RoleViewer,
	"GET /api/v1/models/:model/stages/:stage/policy":                  auth.RoleViewer,
	"PUT /api/v1/models/:model/stages/:stage/policy":                  auth.RoleAdmin,
	"GET /api/v1/models/:model/stages/:stage/policy/revisions":        auth.RoleViewer,
	"GET /api/v1/promotions":                                          auth.RoleViewer,
	"GET /api/v1/promotions/:id":                                      auth.RoleViewer,
	"POST /api/v1/promotions/:id/reviews":                             auth.RoleReviewer,
	"POST /api/v1/promotions/:id/cancel":                              auth.RoleContributor,
	"GET /models":                                                     auth.RoleViewer,
	"GET /models/:model":                                              auth.RoleViewer,
	"POST /models/:model":                                             auth.RoleContributor,
	"GET /models/:model/versions/:version":                            auth.RoleViewer,
	"GET /models/:model/versions/:version/artifacts/*":                auth.RoleViewer,
	"GET /api/v1/users/:name/tokens":                                  auth.RoleAdmin,
	"POST /api/v1/users/:name/tokens":                                 auth.RoleAdmin,
	"PUT /api/v1/me/password":                                         auth.RoleViewer,
	"GET /settings/password":                                          auth.RoleViewer,
	"POST /settings/password":                                         auth.RoleViewer,
	"GET /admin/users/:name":                                          auth.RoleAdmin,
	"POST /admin/users/:name/password":                                auth.RoleAdmin,
	"POST /admin/users/:name/tokens":                                  auth.RoleAdmin,
	"POST /admin/users/:name/tokens/:id/revoke":                       auth.RoleAdmin,
	"POST /logout":                                                    auth.RoleViewer,
	"GET /":                                                           auth.RoleViewer,
	"GET /settings/tokens":                                            auth.RoleViewer,
	"POST /settings/tokens":                                           auth.RoleViewer,
	"POST /settings/tokens/:id/revoke":                                auth.RoleViewer,
	"GET /admin/users":                                                auth.RoleAdmin,
	"POST /admin/users":                                               auth.RoleAdmin,
	"POST /admin/users/:name":                                         auth.RoleAdmin,
	"GET /datasets":                                                   auth.RoleViewer,
	"GET /datasets/:dataset":                                          auth.RoleViewer,
	"GET /datasets/:dataset/diff":                                     auth.RoleViewer,
	"GET /datasets/:dataset/versions/:version":                        auth.RoleViewer,
	"GET /datasets/:dataset/versions/:version/file":                   auth.RoleViewer,
	"GET /runs":     auth.RoleViewer,
	"GET /runs/:id": auth.RoleViewer,
	"GET /lineage":  auth.RoleViewer,
	"GET /audit":    auth.RoleAdmin,
}

// concretePath fills a route pattern with parameters that name nothing, so
// that no walk request changes state that a later one depends on.
func concretePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		switch {
		case strings.HasPrefix(s, ":"):
			parts[i] = "999999"
		case s == "*":
			parts[i] = "nothing.css"
		}
	}
	return strings.Join(parts, "/")
}

func TestEveryRouteHasAnAccessRule(t *testing.T) {
	e := newEnv(t)
	var got []string
	for _, r := range e.server.Echo().Routes() {
		got = append(got, r.Method+" "+r.Path)
	}
	var want []string
	for k := range routeRoles {
		want = append(want, k)
	}
	sort.Strings(got)
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("registered routes differ from the access table (-want +got):\n%s", diff)
	}
}

func TestRouteAccess(t *testing.T) {
	e := newEnv(t)
	for _, r := range e.server.Echo().Routes() {
		key := r.Method + " " + r.Path
		need, ok := routeRoles[key]
		if !ok {
			t.Errorf("%s: no access rule (see TestEveryRouteHasAnAccessRule)", key)
			continue
		}
		path := concretePath(r.Path)
		isAPI := strings.HasPrefix(r.Path, "/api/")
		t.Run(key, func(t *testing.T) {
			if isAPI || r.Path == "/healthz" || r.Path == "/readyz" {
				checkAPIRoute(t, e, r.Method, path, need)
			} else {
				checkUIRoute(t, e, r.Method, path, need)
			}
		})
	}
}

func checkAPIRoute(t *testing.T, e *env, method, path string, need auth.Role) {
	res := e.api.Do(apitest.Request{Method: method, Path: path})
	if need == public {
		if res.Status == http.StatusUnauthorized || res.Status == http.StatusForbidden {
			t.Fatalf("public route answered %d without credentials", res.Status)
		}
		return
	}
	// A HEAD answer has no body to carry the error code.
	if res.Status != http.StatusUnauthorized || (method != http.MethodHead && res.ErrorCode() != "unauthenticated") {
		t.Errorf("without credentials: got %d %s, want 401 unauthenticated", res.Status, res.Body)
	}
	if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("without credentials: WWW-Authenticate = %q, want Bearer", res.Header.Get("WWW-Authenticate"))
	}
	bad := e.api.WithToken("slw_" + strings.Repeat("A", 43)).Do(apitest.Request{Method: method, Path: path})
	if bad.Status != http.StatusUnauthorized {
		t.Errorf("with an unknown token: got %d, want 401", bad.Status)
	}
	for _, role := range auth.Roles {
		res := e.as(role).Do(apitest.Request{Method: method, Path: path})
		switch {
		case !role.Allows(need) && res.Status != http.StatusForbidden:
			t.Errorf("role %s (route needs %s): got %d %s, want 403", role, need, res.Status, res.Body)
		case role.Allows(need) && (res.Status == http.StatusUnauthorized || res.Status == http.StatusForbidden):
			t.Errorf("role %s (route needs %s): got %d %s, want access", role, need, res.Status, res.Body)
		}
	}
}

func checkUIRoute(t *testing.T, e *env, method, path string, need auth.Role) {
	anon := e.browser()
	res := anon.do(method, path, nil, nil)
	loc := res.Header.Get("Location")
	toLogin := res.StatusCode == http.StatusSeeOther && strings.HasPrefix(loc, "/login")
	if need == public {
		if toLogin || res.StatusCode == http.StatusForbidden {
			t.Fatalf("public route answered %d (Location %q) without a session", res.StatusCode, loc)
		}
		return
	}
	if !toLogin {
		t.Errorf("without a session: got %d (Location %q), want 303 to /login", res.StatusCode, loc)
	}
	for _, role := range auth.Roles {
		b := e.browser()
		if res := b.login(userOf(role), testPassword); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("login as %s: %d", role, res.StatusCode)
		}
		res := b.do(method, path, nil, nil)
		loc := res.Header.Get("Location")
		denied := res.StatusCode == http.StatusForbidden || res.StatusCode == http.StatusUnauthorized ||
			(res.StatusCode == http.StatusSeeOther && strings.HasPrefix(loc, "/login"))
		switch {
		case !role.Allows(need) && res.StatusCode != http.StatusForbidden:
			t.Errorf("role %s (route needs %s): got %d, want 403", role, need, res.StatusCode)
		case role.Allows(need) && denied && path != "/logout":
			t.Errorf("role %s (route needs %s): got %d (Location %q), want access", role, need, res.StatusCode, loc)
		}
	}
}
