package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/web"
)

func isAPI(path string) bool { return path == "/api" || strings.HasPrefix(path, "/api/") }

var clientRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{8,64}$`)

// requestID gives every request an id, answered in X-Request-Id and kept in
// logs and audit records. A well-formed id from the client (or a proxy) is
// kept, so that one id follows a call across systems.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !clientRequestID.MatchString(id) {
			b := make([]byte, 12)
			rand.Read(b)
			id = hex.EncodeToString(b)
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

func reqID(c echo.Context) string { return c.Response().Header().Get(echo.HeaderXRequestID) }

// recoverPanics turns a panic into a 500 through the error handler, with
// the stack in the log and not in the response.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.deps.Logger.ErrorContext(c.Request().Context(), "panic", "request_id", reqID(c), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return next(c)
	}
}

// logRequests writes one structured line per request.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err) // answer now, so the status below is the real one
		}
		req, res := c.Request(), c.Response()
		attrs := []slog.Attr{
			slog.String("request_id", reqID(c)),
			slog.String("method", req.Method),
			slog.String("path", req.URL.Path),
			slog.Int("status", res.Status),
			slog.Int64("bytes", res.Size),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("remote_addr", c.RealIP()),
		}
		if id, ok := auth.IdentityFrom(req.Context()); ok {
			attrs = append(attrs, slog.String("user", id.User.Name))
		}
		level := slog.LevelInfo
		if res.Status >= 500 {
			level = slog.LevelError
			if err != nil {
				attrs = append(attrs, slog.String("error", err.Error()))
			}
		}
		s.deps.Logger.LogAttrs(req.Context(), level, "request", attrs...)
		return nil
	}
}

// contentSecurityPolicy allows scripts and styles from Slipway only: no
// inline script, no eval, no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func securityHeaders(tls bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("Content-Security-Policy", contentSecurityPolicy)
			h.Set("X-Frame-Options", "DENY")
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "same-origin")
			h.Set("Cross-Origin-Opener-Policy", "same-origin")
			if tls {
				h.Set("Strict-Transport-Security", "max-age=31536000")
			}
			return next(c)
		}
	}
}

// bodyLimit refuses bodies over max bytes: at once from Content-Length when
// it is declared, and after max bytes when the body is chunked, without
// reading the rest. Streaming routes (artifacts) bound their own reads.
func bodyLimit(max int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if isStreaming(c) {
				return next(c)
			}
			if req.ContentLength > max {
				return fmt.Errorf("the request body is larger than %d bytes: %w", max, errs.ErrTooLarge)
			}
			if req.Body != nil && req.Body != http.NoBody {
				req.Body = http.MaxBytesReader(c.Response(), req.Body, max)
			}
			return next(c)
		}
	}
}

func compress() echo.MiddlewareFunc {
	return middleware.GzipWithConfig(middleware.GzipConfig{
		Level:     5,
		MinLength: 1024,
		// Already compressed, or cheaper to send as is. Answers to writes
		// are small, and a gzip writer costs its reset whether it is used
		// or not: only reads are compressed.
		Skipper: func(c echo.Context) bool {
			r := c.Request()
			return r.Method != http.MethodGet || r.Header.Get("Range") != "" || isStreaming(c)
		},
	})
}

// requestTimeout bounds every request: handlers and the database calls they
// make inherit the deadline, so a dead dependency answers 503 in time rather
// than holding the connection.
func requestTimeout(d time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if isStreaming(c) {
				return next(c) // a 10 GiB upload takes what it takes
			}
			ctx, cancel := context.WithTimeout(c.Request().Context(), d)
			defer cancel()
			c.SetRequest(c.Request().WithContext(ctx))
			return next(c)
		}
	}
}

type authErrKey struct{}

// authenticate resolves the caller: a bearer token for the API, the session
// cookie for the UI (the API never accepts cookies, so it needs no CSRF
// defence; the UI never accepts tokens). It does not refuse anything: a
// failure is kept in the context and reported by requireRole, so public
// routes answer whatever credentials come with them.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		ctx := audit.WithRequest(req.Context(), reqID(c), c.RealIP())
		var (
			id  auth.Identity
			err error
			has bool
		)
		if isAPI(req.URL.Path) {
			if h := req.Header.Get(echo.HeaderAuthorization); h != "" {
				scheme, token, ok := strings.Cut(h, " ")
				if !ok || !strings.EqualFold(scheme, "Bearer") {
					err = fmt.Errorf("the Authorization header must be `Bearer <token>`: %w", errs.ErrUnauthenticated)
				} else {
					id, err = s.deps.Auth.LookupToken(ctx, strings.TrimSpace(token))
					has = err == nil
				}
			}
		} else if ck, cerr := c.Cookie(s.ui.Cookie.Name()); cerr == nil && ck.Value != "" {
			id, err = s.deps.Auth.LookupSession(ctx, ck.Value)
			has = err == nil
			if errors.Is(err, errs.ErrUnauthenticated) {
				c.SetCookie(&http.Cookie{Name: s.ui.Cookie.Name(), Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.ui.Cookie.Secure, SameSite: http.SameSiteLaxMode})
				err = nil // an expired session is simply no session: sign in again
			}
		}
		if has {
			ctx = auth.WithIdentity(ctx, id)
			ctx = audit.WithActor(ctx, id.Actor())
		}
		if err != nil {
			ctx = context.WithValue(ctx, authErrKey{}, err)
		}
		c.SetRequest(req.WithContext(ctx))
		return next(c)
	}
}

// requireRole refuses callers without credentials (401) or without the
// role (403).
func requireRole(role auth.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			ctx := c.Request().Context()
			id, ok := auth.IdentityFrom(ctx)
			if !ok {
				if err, ok := ctx.Value(authErrKey{}).(error); ok {
					return err
				}
				return fmt.Errorf("sign in or send `Authorization: Bearer <token>`: %w", errs.ErrUnauthenticated)
			}
			if !id.User.Role.Allows(role) {
				return fmt.Errorf("this needs role %s; %s has role %s: %w", role, id.User.Name, id.User.Role, errs.ErrForbidden)
			}
			return next(c)
		}
	}
}

// checkCSRF guards every unsafe browser request: the browser must say the
// request comes from Slipway's own pages (Sec-Fetch-Site, or Origin), and a
// signed-in request must carry the session's token, which htmx sends in
// X-CSRF-Token (hx-headers on <body>) and plain forms in a hidden field.
func (s *Server) checkCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		switch req.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if isAPI(req.URL.Path) {
			return next(c) // bearer tokens only: a browser never sends one on its own
		}
		if err := s.cop.Check(req); err != nil {
			return fmt.Errorf("cross-site request refused: %w", errs.ErrForbidden)
		}
		id, ok := auth.IdentityFrom(req.Context())
		if !ok {
			return next(c) // sign-in form, or requireRole will answer 401
		}
		token := req.Header.Get(web.CSRFHeader)
		if token == "" {
			token = c.FormValue(web.CSRFField)
		}
		if token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(id.CSRFToken)) != 1 {
			return fmt.Errorf("missing or wrong CSRF token; reload the page: %w", errs.ErrForbidden)
		}
		return next(c)
	}
}
