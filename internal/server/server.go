// Package server assembles Slipway's HTTP edge: the Echo instance, its
// middleware (request ids, logs, recovery, limits, security headers,
// authentication, CSRF), the one error handler, and the table of every route
// with the role it needs.
package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"

	"github.com/slipway-ml/slipway/internal/api"
	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/config"
	"github.com/slipway-ml/slipway/internal/evaluation"
	"github.com/slipway-ml/slipway/internal/idempotency"
	"github.com/slipway-ml/slipway/internal/lineage"
	"github.com/slipway-ml/slipway/internal/promotion"
	"github.com/slipway-ml/slipway/internal/registry"
	"github.com/slipway-ml/slipway/internal/webhook"
	"github.com/slipway-ml/slipway/static"
	"github.com/slipway-ml/slipway/web"
)

// Pinger is a dependency /readyz checks.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Deps is everything the HTTP edge needs, built by main.
type Deps struct {
	Config   *config.Config
	DB       *pgxpool.Pool
	Store    Pinger // the object store
	Auth     *auth.Service
	AuditLog *audit.Log
	Registry *registry.Service
	Lineage  *lineage.Service
	// Evaluations and Promotions: reports, stages, policies, requests
	Evaluations *evaluation.Service
	Promotions  *promotion.Service
	Webhooks    *webhook.Service
	Assets      *static.Assets
	OpenAPI     *api.Document
	Logger      *slog.Logger
}

// Server is the HTTP edge.
type Server struct {
	deps Deps
	echo *echo.Echo
	ui   *web.UI
	api  *api.API
	cop  *http.CrossOriginProtection
	idem *idempotency.Store
}

// New builds the Echo instance with its middleware and routes.
func New(d Deps) *Server {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.IPExtractor = ipExtractor(d.Config.TrustedProxies)
	cookie := web.SessionCookie{Secure: d.Config.TLS()}
	s := &Server{
		deps: d,
		echo: e,
		ui: &web.UI{Auth: d.Auth, AuditLog: d.AuditLog, Registry: d.Registry, Lineage: d.Lineage, Evaluations: d.Evaluations, Promotions: d.Promotions, Webhooks: d.Webhooks,
			WebhookRotationWindow: d.Config.WebhookRotationWindow, Assets: d.Assets, Cookie: cookie, Logger: d.Logger},
		api: &api.API{Auth: d.Auth, AuditLog: d.AuditLog, Registry: d.Registry, Lineage: d.Lineage, Evaluations: d.Evaluations, Promotions: d.Promotions,
			Webhooks: d.Webhooks, WebhookRotationWindow: d.Config.WebhookRotationWindow, MaxJSONBody: d.Config.MaxJSONBody, DraftTTL: d.Config.DraftTTL},
		cop:  http.NewCrossOriginProtection(),
		idem: idempotency.NewStore(d.DB),
	}
	if d.Config.PublicURL != nil {
		if err := s.cop.AddTrustedOrigin(d.Config.PublicURL.Scheme + "://" + d.Config.PublicURL.Host); err != nil {
			panic(err) // validated by config.Load
		}
	}
	e.HTTPErrorHandler = s.handleError
	e.Use(
		requestID,
		// Outside the logger, which answers errors: the deadline must
		// still be live while the error page renders.
		requestTimeout(d.Config.RequestTimeout),
		s.logRequests,
		s.recoverPanics,
		securityHeaders(d.Config.TLS()),
		bodyLimit(d.Config.MaxJSONBody),
		compress(),
		s.authenticate,
		s.checkCSRF,
	)
	s.routes()
	return s
}

// ipExtractor takes the client address from the connection, or from
// X-Forwarded-For when the connection comes from a trusted proxy. The
// address goes into logs, sessions and audit records: a forged one must not.
func ipExtractor(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// Handler is the http.Handler to serve.
func (s *Server) Handler() http.Handler { return s.echo }

// Echo exposes the Echo instance to tests that walk its routes.
func (s *Server) Echo() *echo.Echo { return s.echo }

// healthz answers while the process runs.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when the database and the object store answer, 503
// otherwise; a load balancer takes the replica out meanwhile.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "object_store": "ok"}
	status := http.StatusOK
	if err := s.deps.DB.Ping(ctx); err != nil {
		checks["database"] = "unreachable"
		status = http.StatusServiceUnavailable
		s.deps.Logger.WarnContext(ctx, "readiness: database unreachable", "error", err)
	}
	if err := s.deps.Store.Ping(ctx); err != nil {
		checks["object_store"] = "unreachable"
		status = http.StatusServiceUnavailable
		s.deps.Logger.WarnContext(ctx, "readiness: object store unreachable", "error", err)
	}
	state := "ok"
	if status != http.StatusOK {
		state = "unavailable"
	}
	return c.JSON(status, map[string]any{"status": state, "checks": checks})
}
