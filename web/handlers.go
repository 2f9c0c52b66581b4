package web

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/static"
)

// SessionCookie names and flags the session cookie. Over TLS it is
// __Host- prefixed and Secure: the browser then refuses it from plain HTTP
// and from other subdomains.
type SessionCookie struct{ Secure bool }

// Name is the cookie's name.
func (c SessionCookie) Name() string {
	if c.Secure {
		return "__Host-slipway_session"
	}
	return "slipway_session"
}

func (c SessionCookie) make(value string, expires time.Time) *http.Cookie {
	ck := &http.Cookie{Name: c.Name(), Value: value, Path: "/", HttpOnly: true, Secure: c.Secure, SameSite: http.SameSiteLaxMode}
	if value == "" {
		ck.MaxAge = -1
	} else {
		ck.Expires = expires
	}
	return ck
}

// UI holds the browser UI's handlers.
type UI struct {
	Auth     *auth.Service
	AuditLog *audit.Log
	Assets   *static.Assets
	Cookie   SessionCookie
	Logger   *slog.Logger
}

// Page returns the base Page for the identity of c.
func (ui *UI) Page(c echo.Context, title, section string) Page {
	p := Page{Title: title, Section: section, Assets: ui.Assets}
	if id, ok := auth.IdentityFrom(c.Request().Context()); ok {
		u := id.User
		p.User = &u
		p.CSRF = id.CSRFToken
	}
	return p
}

// Render writes component with status, rendering into a buffer first so
// that a template error is a clean 500 and never half a page.
func Render(c echo.Context, status int, component templ.Component) error {
	var buf bytes.Buffer
	if err := component.Render(c.Request().Context(), &buf); err != nil {
		return err
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// safeNext keeps a post-login redirect on this site: a path, not "//host"
// nor "/\host" which browsers treat as another origin.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return next
}

// LoginForm shows the sign-in page.
func (ui *UI) LoginForm(c echo.Context) error {
	if _, ok := auth.IdentityFrom(c.Request().Context()); ok {
		return c.Redirect(http.StatusSeeOther, safeNext(c.QueryParam("next")))
	}
	return Render(c, http.StatusOK, LoginPage(ui.Page(c, "Sign in", ""), safeNext(c.QueryParam("next")), "", ""))
}

// Login checks the credentials and starts a new session.
func (ui *UI) Login(c echo.Context) error {
	ctx := c.Request().Context()
	name, password, next := c.FormValue("name"), c.FormValue("password"), safeNext(c.FormValue("next"))
	u, err := ui.Auth.Authenticate(ctx, name, password)
	if errors.Is(err, errs.ErrUnauthenticated) {
		ui.Logger.InfoContext(ctx, "sign-in failed", "user", name, "remote_addr", c.RealIP())
		return Render(c, http.StatusUnauthorized, LoginPage(ui.Page(c, "Sign in", ""), next, name, "Wrong user name or password."))
	}
	if err != nil {
		return err
	}
	// A new session id at every sign-in; the old one, if any, ends.
	if old, err := c.Cookie(ui.Cookie.Name()); err == nil && old.Value != "" {
		if err := ui.Auth.DeleteSession(ctx, old.Value); err != nil {
			return err
		}
	}
	ctx = audit.WithRequest(ctx, c.Response().Header().Get(echo.HeaderXRequestID), c.RealIP())
	sess, err := ui.Auth.CreateSession(ctx, u, auth.SessionMeta{RemoteAddr: c.RealIP(), UserAgent: c.Request().UserAgent()})
	if err != nil {
		return err
	}
	c.SetCookie(ui.Cookie.make(sess.Secret, sess.ExpiresAt))
	return c.Redirect(http.StatusSeeOther, next)
}

// Logout ends the session.
func (ui *UI) Logout(c echo.Context) error {
	if ck, err := c.Cookie(ui.Cookie.Name()); err == nil && ck.Value != "" {
		if err := ui.Auth.DeleteSession(c.Request().Context(), ck.Value); err != nil {
			return err
		}
	}
	c.SetCookie(ui.Cookie.make("", time.Time{}))
	if IsHTMX(c) {
		c.Response().Header().Set(HXRedirect, "/login")
		return c.NoContent(http.StatusNoContent)
	}
	return c.Redirect(http.StatusSeeOther, "/login")
}

// Dashboard shows the figures of this Slipway.
func (ui *UI) Dashboard(c echo.Context) error {
	ctx := c.Request().Context()
	counts, err := ui.Auth.Count(ctx)
	if err != nil {
		return err
	}
	events, err := ui.AuditLog.CountSince(ctx, time.Now().Add(-24*time.Hour))
	if err != nil {
		return err
	}
	d := DashboardData{Users: counts.Users, ActiveTokens: counts.ActiveTokens, Sessions: counts.Sessions, AuditEvents24h: events}
	return Render(c, http.StatusOK, DashboardPage(ui.Page(c, "Dashboard", "dashboard"), d))
}

func identity(ctx context.Context) auth.Identity {
	id, ok := auth.IdentityFrom(ctx)
	if !ok {
		panic("web: handler reached without an identity; the route lacks its role middleware")
	}
	return id
}

func (ui *UI) tokensData(c echo.Context) (TokensData, error) {
	p, err := pagination.Parse(c.QueryParam("cursor"), "")
	if err != nil {
		return TokensData{}, err
	}
	ctx := c.Request().Context()
	tokens, next, err := ui.Auth.ListTokens(ctx, identity(ctx).User.Name, p)
	return TokensData{Tokens: tokens, NextCursor: next, Now: time.Now()}, err
}

// Tokens lists the user's API tokens.
func (ui *UI) Tokens(c echo.Context) error {
	d, err := ui.tokensData(c)
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, TokensPage(ui.Page(c, "API tokens", "settings"), d))
}

// CreateToken issues a token to the signed-in user and shows it once.
func (ui *UI) CreateToken(c echo.Context) error {
	ctx := c.Request().Context()
	in := auth.NewToken{UserName: identity(ctx).User.Name, Name: strings.TrimSpace(c.FormValue("name"))}
	status := http.StatusOK
	var formErr error
	days, err := strconv.Atoi(c.FormValue("expires_in_days"))
	if err != nil || days < 0 || days > 5*365 {
		formErr = errs.Invalid("expires_in_days", "must be a number of days between 0 (never) and 1825")
	} else if days > 0 {
		t := time.Now().Add(time.Duration(days) * 24 * time.Hour)
		in.ExpiresAt = &t
	}
	var secret string
	if formErr == nil {
		secret, _, formErr = ui.Auth.CreateToken(ctx, in)
	}
	if formErr != nil && !errors.Is(formErr, errs.ErrInvalid) && !errors.Is(formErr, errs.ErrConflict) {
		return formErr
	}
	d, err := ui.tokensData(c)
	if err != nil {
		return err
	}
	if formErr != nil {
		d.Error = formErr.Error()
		status = http.StatusBadRequest
	} else {
		d.NewSecret, d.NewName = secret, in.Name
		status = http.StatusCreated
	}
	// The page is answered directly (no redirect): the secret must not
	// travel in a URL, and it is shown this once.
	if IsHTMX(c) {
		return Render(c, status, TokensSection(ui.Page(c, "API tokens", "settings"), d))
	}
	return Render(c, status, TokensPage(ui.Page(c, "API tokens", "settings"), d))
}

// RevokeToken revokes one of the user's tokens.
func (ui *UI) RevokeToken(c echo.Context) error {
	ctx := c.Request().Context()
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return errs.Invalid("id", "must be a token id")
	}
	if _, err := ui.Auth.RevokeToken(ctx, identity(ctx).User, id); err != nil {
		return err
	}
	if !IsHTMX(c) {
		return c.Redirect(http.StatusSeeOther, "/settings/tokens")
	}
	d, err := ui.tokensData(c)
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, TokensSection(ui.Page(c, "API tokens", "settings"), d))
}

func (ui *UI) usersData(c echo.Context) (UsersData, error) {
	p, err := pagination.Parse(c.QueryParam("cursor"), "")
	if err != nil {
		return UsersData{}, err
	}
	users, next, err := ui.Auth.ListUsers(c.Request().Context(), p)
	return UsersData{Users: users, NextCursor: next}, err
}

func (ui *UI) renderUsers(c echo.Context, status int, formErr error, notice string) error {
	d, err := ui.usersData(c)
	if err != nil {
		return err
	}
	if formErr != nil {
		d.Error = formErr.Error()
	}
	d.Notice = notice
	p := ui.Page(c, "Users", "settings")
	if IsHTMX(c) {
		return Render(c, status, UsersSection(p, d))
	}
	return Render(c, status, UsersPage(p, d))
}

// Users lists users (admins).
func (ui *UI) Users(c echo.Context) error { return ui.renderUsers(c, http.StatusOK, nil, "") }

// formError tells a validation or conflict error, shown in the form, from
// any other, which goes to the error handler.
func formError(err error) bool {
	return errors.Is(err, errs.ErrInvalid) || errors.Is(err, errs.ErrConflict)
}

// CreateUser adds a user (admins).
func (ui *UI) CreateUser(c echo.Context) error {
	u, err := ui.Auth.CreateUser(c.Request().Context(), auth.NewUser{
		Name: strings.TrimSpace(c.FormValue("name")), Role: auth.Role(c.FormValue("role")), Password: c.FormValue("password"),
	})
	if err != nil {
		if formError(err) {
			return ui.renderUsers(c, http.StatusBadRequest, err, "")
		}
		return err
	}
	return ui.renderUsers(c, http.StatusCreated, nil, "User "+u.Name+" created with role "+string(u.Role)+".")
}

// UpdateUser changes a user's role or enabled state (admins).
func (ui *UI) UpdateUser(c echo.Context) error {
	var in auth.UserUpdate
	if v := c.FormValue("role"); v != "" {
		r := auth.Role(v)
		in.Role = &r
	}
	if v := c.FormValue("disabled"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errs.Invalid("disabled", "must be true or false")
		}
		in.Disabled = &b
	}
	u, err := ui.Auth.UpdateUser(c.Request().Context(), c.Param("name"), in)
	if err != nil {
		if formError(err) {
			return ui.renderUsers(c, http.StatusBadRequest, err, "")
		}
		return err
	}
	state := "enabled"
	if u.Disabled {
		state = "disabled"
	}
	return ui.renderUsers(c, http.StatusOK, nil, "User "+u.Name+" is now "+string(u.Role)+", "+state+".")
}

// Audit shows the audit log (admins) with filters; htmx asks for the rows
// only when filtering, and for the next page when "older" is clicked.
func (ui *UI) Audit(c echo.Context) error {
	q := c.QueryParams()
	f, err := audit.ParseFilter(q)
	if err != nil {
		return err
	}
	p, err := pagination.Parse(q.Get("cursor"), "")
	if err != nil {
		return err
	}
	events, next, err := ui.AuditLog.List(c.Request().Context(), f, p)
	if err != nil {
		return err
	}
	d := AuditData{Events: events, NextCursor: next, Filter: q}
	switch hxTarget(c) {
	case "audit-rows":
		return Render(c, http.StatusOK, AuditRows(d))
	case "audit-more":
		return Render(c, http.StatusOK, AuditMore(d))
	}
	return Render(c, http.StatusOK, AuditPage(ui.Page(c, "Audit log", "audit"), d))
}
