package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slipway-ml/slipway/internal/api"
	"github.com/slipway-ml/slipway/internal/api/apitest"
	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/config"
	"github.com/slipway-ml/slipway/internal/demo"
	"github.com/slipway-ml/slipway/internal/evaluation"
	"github.com/slipway-ml/slipway/internal/lineage"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/internal/promotion"
	"github.com/slipway-ml/slipway/internal/registry"
	"github.com/slipway-ml/slipway/internal/server"
	"github.com/slipway-ml/slipway/internal/testenv"
	"github.com/slipway-ml/slipway/internal/webhook"
	"github.com/slipway-ml/slipway/static"
)

// adminToken is the bootstrap token of every test server.
const adminToken = "slw_test-bootstrap-token-0123456789abcdefghijklmnopq"

const testPassword = "correct horse battery staple"

// env is a Slipway server on a fresh database, with one user per role.
type env struct {
	t      *testing.T
	url    string
	server *server.Server
	db     *testenv.DB
	auth   *auth.Service
	doc    *api.Document
	api    *apitest.Client // no token
	tokens map[auth.Role]string
	cfg    *config.Config
	store  blob.Store
	// svc are the domain services behind the server, for tests that set
	// up data as the server's own code would (the demo story)
	svc demo.Services
}

// envSetup is what options may change before the server is built.
type envSetup struct {
	cfg   *config.Config
	pool  *pgxpool.Pool
	store blob.Store
	// deliver runs webhook delivery workers beside the server
	deliver bool
	// noWebhookKey runs the server without SLIPWAY_WEBHOOK_KEY
	noWebhookKey bool
}

// withWebhookDelivery runs webhook delivery workers for the test's server.
func withWebhookDelivery(t *testing.T, s *envSetup) { s.deliver = true }

// withoutWebhookKey runs the server as without SLIPWAY_WEBHOOK_KEY: no
// endpoint can be created.
func withoutWebhookKey(t *testing.T, s *envSetup) { s.noWebhookKey = true }

type envOption func(*testing.T, *envSetup)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	db := testenv.NewDB(t)
	store, err := blob.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	setup := &envSetup{
		cfg: &config.Config{
			Addr: "127.0.0.1:0", MaxJSONBody: 1 << 20, RequestTimeout: 5 * time.Second,
			SessionTTL: time.Hour, ShutdownTimeout: 5 * time.Second, DraftTTL: time.Hour,
		},
		pool:  db.Pool,
		store: store,
	}
	for _, o := range opts {
		o(t, setup)
	}
	cfg := setup.cfg
	assets, err := static.New()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := api.LoadDocument()
	if err != nil {
		t.Fatal(err)
	}
	authSvc := auth.NewService(setup.pool, auth.Config{SessionTTL: cfg.SessionTTL})
	hooks := testWebhooks(setup.pool)
	if setup.noWebhookKey {
		hooks = webhook.NewService(setup.pool, nil, webhook.AddressPolicy{AllowPrivate: true})
	}
	svc := demo.Services{Auth: authSvc, Registry: registry.NewService(setup.pool, setup.store),
		Lineage: lineage.NewService(setup.pool, setup.store), Evaluations: evaluation.NewService(setup.pool, setup.store),
		Promotions: promotion.NewService(setup.pool, setup.store), Webhooks: hooks}
	srv := server.New(server.Deps{
		Config: cfg, DB: setup.pool, Store: setup.store, Auth: authSvc, AuditLog: audit.NewLog(setup.pool), Registry: svc.Registry,
		Lineage: svc.Lineage, Evaluations: svc.Evaluations, Promotions: svc.Promotions, Webhooks: hooks,
		Assets: assets, OpenAPI: doc, Logger: testLogger(t),
	})
	if setup.deliver {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		d := webhook.NewDispatcher(setup.pool, hooks, setup.store, webhook.AddressPolicy{AllowPrivate: true},
			webhook.DispatchConfig{Workers: 2, Timeout: 5 * time.Second, PublicURL: "http://slipway.test"}, testLogger(t))
		go func() { d.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	ctx := context.Background()
	if _, err := authSvc.Bootstrap(ctx, adminToken, testPassword); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, url: ts.URL, server: srv, db: db, auth: authSvc, doc: doc, cfg: cfg, store: setup.store, svc: svc,
		api: apitest.New(t, ts.URL, doc), tokens: map[auth.Role]string{auth.RoleAdmin: adminToken}}
	for _, r := range []auth.Role{auth.RoleViewer, auth.RoleContributor, auth.RoleReviewer} {
		if _, err := authSvc.CreateUser(ctx, auth.NewUser{Name: string(r) + "-user", Role: r, Password: testPassword}); err != nil {
			t.Fatal(err)
		}
		secret, _, err := authSvc.CreateToken(ctx, auth.NewToken{UserName: string(r) + "-user", Name: "test"})
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[r] = secret
	}
	return e
}

// userOf is the name of the test user with role r.
func userOf(r auth.Role) string {
	if r == auth.RoleAdmin {
		return auth.BootstrapAdminName
	}
	return string(r) + "-user"
}

// as is an API client with the token of role r.
func (e *env) as(r auth.Role) *apitest.Client { return e.api.WithToken(e.tokens[r]) }

// browser is a cookie-keeping HTTP client that does not follow redirects,
// with the CSRF token of its session once signed in.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, base: e.url, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// login signs in as the user of role r and keeps the session's CSRF token.
func (b *browser) login(name, password string) *http.Response {
	b.t.Helper()
	res := b.do("POST", "/login", url.Values{"name": {name}, "password": {password}}, nil)
	if res.StatusCode == http.StatusSeeOther {
		page := b.do("GET", "/settings/tokens", nil, nil)
		m := csrfInput.FindStringSubmatch(readBody(b.t, page))
		if m == nil {
			b.t.Fatal("no CSRF token on the tokens page after login")
		}
		b.csrf = m[1]
	}
	return res
}

// do sends a request like a same-origin page would (with Origin and
// Sec-Fetch-Site), a form body when form is not nil.
func (b *browser) do(method, path string, form url.Values, header http.Header) *http.Response {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if method != "GET" {
		req.Header.Set("Origin", b.base)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		if b.csrf != "" {
			req.Header.Set("X-CSRF-Token", b.csrf)
		}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { res.Body.Close() })
	return res
}

func readBody(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testLogger logs into the test's output, shown when it fails or with -v.
// withMinIO stores artifacts in a fresh bucket of the test MinIO instead
// of a directory.
func withMinIO(t *testing.T, s *envSetup) {
	s3 := testenv.NewS3(t)
	store, err := blob.NewS3(context.Background(), blob.S3Config{Endpoint: s3.Endpoint, Bucket: s3.Bucket, AccessKey: s3.AccessKey,
		SecretKey: s3.SecretKey, Region: "us-east-1", CreateBucket: true})
	if err != nil {
		t.Fatal(err)
	}
	s.store = store
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func pageOf(n int) pagination.Page { return pagination.Page{Limit: n} }

func strconvFormat(n int64) string { return strconv.FormatInt(n, 10) }

// testWebhooks is the webhook service of the test servers: a fixed key,
// and receivers on this machine allowed.
func testWebhooks(pool *pgxpool.Pool) *webhook.Service {
	sealer, err := webhook.NewSealer([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		panic(err)
	}
	return webhook.NewService(pool, sealer, webhook.AddressPolicy{AllowPrivate: true})
}
