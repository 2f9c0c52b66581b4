package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
	"github.com/slipway-ml/slipway/internal/evaluation"
	"github.com/slipway-ml/slipway/internal/lineage"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/internal/promotion"
	"github.com/slipway-ml/slipway/internal/registry"
	"github.com/slipway-ml/slipway/internal/webhook"
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
	Registry *registry.Service
	Lineage  *lineage.Service
	// Evaluations and Promotions: reports; stages, policies, requests
	// and reviews
	Evaluations *evaluation.Service
	Promotions  *promotion.Service
	// Webhooks: endpoints and their delivery log (admins)
	Webhooks *webhook.Service
	// WebhookRotationWindow is how long a rotated secret keeps signing.
	WebhookRotationWindow time.Duration
	Assets                *static.Assets
	Cookie                SessionCookie
	Logger                *slog.Logger
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
	notice := ""
	if c.QueryParam("changed") != "" {
		notice = "Your password was changed. Sign in with the new one."
	}
	return Render(c, http.StatusOK, LoginPage(ui.Page(c, "Sign in", ""), safeNext(c.QueryParam("next")), "", "", notice))
}

// Login checks the credentials and starts a new session.
func (ui *UI) Login(c echo.Context) error {
	ctx := c.Request().Context()
	name, password, next := c.FormValue("name"), c.FormValue("password"), safeNext(c.FormValue("next"))
	u, err := ui.Auth.Authenticate(ctx, name, password)
	if errors.Is(err, errs.ErrTooManyRequests) {
		ui.Logger.WarnContext(ctx, "sign-in throttled", "user", truncate(name, 64), "remote_addr", c.RealIP())
		return Render(c, http.StatusTooManyRequests, LoginPage(ui.Page(c, "Sign in", ""), next, name,
			fmt.Sprintf("Too many failed sign-ins for this user. Try again in %d minutes.", int(auth.LoginFailureWindow.Minutes())), ""))
	}
	if errors.Is(err, errs.ErrUnauthenticated) {
		ui.Logger.InfoContext(ctx, "sign-in failed", "user", truncate(name, 64), "remote_addr", c.RealIP())
		return Render(c, http.StatusUnauthorized, LoginPage(ui.Page(c, "Sign in", ""), next, name, "Wrong user name or password.", ""))
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

func identity(ctx context.Context) auth.Identity {
	id, ok := auth.IdentityFrom(ctx)
	if !ok {
		panic("web: handler reached without an identity; the route lacks its role middleware")
	}
	return id
}

// tokensData lists owner's tokens for the tokens section.
func (ui *UI) tokensData(c echo.Context, owner auth.User, own bool) (TokensData, error) {
	p, err := pagination.Parse(c.QueryParam("cursor"), "")
	if err != nil {
		return TokensData{}, err
	}
	tokens, next, err := ui.Auth.ListTokens(c.Request().Context(), owner.Name, p)
	d := TokensData{Owner: owner, Own: own, Tokens: tokens, Cursor: p.Cursor, NextCursor: next, Now: time.Now(), BasePath: "/settings/tokens"}
	if !own {
		d.BasePath = "/admin/users/" + owner.Name + "/tokens"
	}
	return d, err
}

// tokenOwner is whose tokens a route is about: the signed-in user's under
// /settings, the named user's under /admin/users/{name}.
func (ui *UI) tokenOwner(c echo.Context) (auth.User, bool, error) {
	ctx := c.Request().Context()
	if name := c.Param("name"); name != "" {
		u, err := ui.Auth.GetUser(ctx, name)
		return u, false, err
	}
	return identity(ctx).User, true, nil
}

// renderTokens answers the tokens section as a fragment for htmx, or the
// whole page it lives on.
func (ui *UI) renderTokens(c echo.Context, status int, d TokensData) error {
	if IsHTMX(c) {
		return Render(c, status, TokensSection(ui.Page(c, "API tokens", "settings"), d))
	}
	if d.Own {
		return Render(c, status, TokensPage(ui.Page(c, "API tokens", "settings"), d))
	}
	return Render(c, status, UserPage(ui.Page(c, "User "+d.Owner.Name, "settings"), UserData{User: d.Owner, Tokens: d}))
}

// Tokens lists the user's API tokens.
func (ui *UI) Tokens(c echo.Context) error {
	owner, own, err := ui.tokenOwner(c)
	if err != nil {
		return err
	}
	d, err := ui.tokensData(c, owner, own)
	if err != nil {
		return err
	}
	return ui.renderTokens(c, http.StatusOK, d)
}

// CreateToken issues a token (to the signed-in user, or by an admin to the
// named user) and shows it once.
func (ui *UI) CreateToken(c echo.Context) error {
	ctx := c.Request().Context()
	owner, own, err := ui.tokenOwner(c)
	if err != nil {
		return err
	}
	in := auth.NewToken{UserName: owner.Name, Name: strings.TrimSpace(c.FormValue("name"))}
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
	if formErr != nil && !formError(formErr) {
		return formErr
	}
	d, err := ui.tokensData(c, owner, own)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if formErr != nil {
		d.Error, d.Fields = formErr.Error(), fieldErrorsOf("token", formErr)
		status = http.StatusBadRequest
	} else {
		d.NewSecret, d.NewName = secret, in.Name
	}
	// The page is answered directly (no redirect): the secret must not
	// travel in a URL, and it is shown this once.
	return ui.renderTokens(c, status, d)
}

// RevokeToken revokes a token of the signed-in user, or (admins) of the
// named user.
func (ui *UI) RevokeToken(c echo.Context) error {
	ctx := c.Request().Context()
	owner, own, err := ui.tokenOwner(c)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return errs.Invalid("id", "must be a token id")
	}
	// The page is about one user's tokens: an id of someone else's is not
	// on it, even for an admin (who revokes those on their owner's page).
	t, err := ui.Auth.GetToken(ctx, id)
	if err != nil {
		return err
	}
	if t.UserName != owner.Name {
		return fmt.Errorf("token %d of user %q: %w", id, owner.Name, errs.ErrNotFound)
	}
	if _, err := ui.Auth.RevokeToken(ctx, identity(ctx).User, id); err != nil {
		return err
	}
	d, err := ui.tokensData(c, owner, own)
	if err != nil {
		return err
	}
	if !IsHTMX(c) {
		if own {
			return c.Redirect(http.StatusSeeOther, "/settings/tokens")
		}
		return c.Redirect(http.StatusSeeOther, "/admin/users/"+owner.Name)
	}
	return ui.renderTokens(c, http.StatusOK, d)
}

// Password shows the form to change one's password.
func (ui *UI) Password(c echo.Context) error {
	return Render(c, http.StatusOK, PasswordPage(ui.Page(c, "Password", "settings"), "", fieldErrors{}))
}

// ChangePassword replaces the signed-in user's password and signs them out
// everywhere.
func (ui *UI) ChangePassword(c echo.Context) error {
	ctx := c.Request().Context()
	err := ui.Auth.ChangePassword(ctx, identity(ctx).User.Name, c.FormValue("current_password"), c.FormValue("new_password"))
	if formError(err) {
		return Render(c, http.StatusBadRequest, PasswordPage(ui.Page(c, "Password", "settings"), err.Error(), fieldErrorsOf("password", err)))
	}
	if errors.Is(err, errs.ErrTooManyRequests) {
		return Render(c, http.StatusTooManyRequests, PasswordPage(ui.Page(c, "Password", "settings"),
			fmt.Sprintf("Too many wrong passwords. Try again in %d minutes.", int(auth.LoginFailureWindow.Minutes())), fieldErrors{}))
	}
	if err != nil {
		return err
	}
	c.SetCookie(ui.Cookie.make("", time.Time{}))
	return c.Redirect(http.StatusSeeOther, "/login?changed=1")
}

func (ui *UI) usersData(c echo.Context) (UsersData, error) {
	p, err := pagination.Parse(c.QueryParam("cursor"), "")
	if err != nil {
		return UsersData{}, err
	}
	users, next, err := ui.Auth.ListUsers(c.Request().Context(), p)
	return UsersData{Users: users, Cursor: p.Cursor, NextCursor: next, Now: time.Now()}, err
}

// renderUsers answers the users section for htmx, or the whole page; a
// formErr of the new-user form (not of a row's) is shown by its fields too.
func (ui *UI) renderUsers(c echo.Context, status int, formErr error, notice string) error {
	d, err := ui.usersData(c)
	if err != nil {
		return err
	}
	if formErr != nil {
		d.Error = formErr.Error()
		if c.Path() == "/admin/users" {
			d.Fields = fieldErrorsOf("new-user", formErr)
		}
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

// userData gathers one user's admin page.
func (ui *UI) userData(c echo.Context, name string) (UserData, error) {
	u, err := ui.Auth.GetUser(c.Request().Context(), name)
	if err != nil {
		return UserData{}, err
	}
	tokens, err := ui.tokensData(c, u, false)
	return UserData{User: u, Tokens: tokens}, err
}

// renderUser answers the user section for htmx, or the whole user page.
func (ui *UI) renderUser(c echo.Context, status int, name string, formErr error, notice string) error {
	d, err := ui.userData(c, name)
	if err != nil {
		return err
	}
	if formErr != nil {
		d.Error = formErr.Error()
	}
	d.Notice = notice
	if formErr != nil {
		d.Fields = fieldErrorsOf("user", formErr)
	}
	p := ui.Page(c, "User "+name, "settings")
	if IsHTMX(c) {
		return Render(c, status, UserSection(p, d))
	}
	return Render(c, status, UserPage(p, d))
}

// User shows one user with their tokens (admins).
func (ui *UI) User(c echo.Context) error {
	return ui.renderUser(c, http.StatusOK, c.Param("name"), nil, "")
}

// SetUserPassword sets a user's password (admins); their sessions end.
func (ui *UI) SetUserPassword(c echo.Context) error {
	pw := c.FormValue("password")
	_, err := ui.Auth.UpdateUser(c.Request().Context(), c.Param("name"), auth.UserUpdate{Password: &pw})
	if formError(err) {
		return ui.renderUser(c, http.StatusBadRequest, c.Param("name"), err, "")
	}
	if err != nil {
		return err
	}
	return ui.renderUser(c, http.StatusOK, c.Param("name"), nil, "Password set; the user's sessions have ended.")
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
	onUserPage := hxTarget(c) == "user-section"
	u, err := ui.Auth.UpdateUser(c.Request().Context(), c.Param("name"), in)
	if formError(err) {
		if onUserPage {
			return ui.renderUser(c, http.StatusBadRequest, c.Param("name"), err, "")
		}
		return ui.renderUsers(c, http.StatusBadRequest, err, "")
	}
	if err != nil {
		return err
	}
	state := "enabled"
	if u.Disabled {
		state = "disabled"
	}
	notice := "User " + u.Name + " is now " + string(u.Role) + ", " + state + "."
	if onUserPage {
		return ui.renderUser(c, http.StatusOK, u.Name, nil, notice)
	}
	return ui.renderUsers(c, http.StatusOK, nil, notice)
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
	d := AuditData{Events: events, NextCursor: next, Filter: q, Now: time.Now()}
	switch hxTarget(c) {
	case "audit-rows":
		return Render(c, http.StatusOK, AuditRows(d))
	case "audit-more":
		return Render(c, http.StatusOK, AuditMore(d))
	}
	return Render(c, http.StatusOK, AuditPage(ui.Page(c, "Audit log", "audit"), d))
}

// Models lists models with a name-prefix search and a tag filter; htmx
// swaps the list only.
func (ui *UI) Models(c echo.Context) error {
	p, err := pagination.Parse(c.QueryParam("cursor"), "")
	if err != nil {
		return err
	}
	d := ModelsData{Query: c.QueryParam("q"), Tag: c.QueryParam("tag"), Archived: c.QueryParam("archived") == "true", Cursor: p.Cursor, Now: time.Now()}
	d.Models, d.NextCursor, err = ui.Registry.ListModels(c.Request().Context(), registry.ModelFilter{Prefix: d.Query, Tag: d.Tag, Archived: d.Archived}, p)
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, ModelsPage(ui.Page(c, "Models", "models"), d))
}

func (ui *UI) modelData(c echo.Context, name string) (ModelData, error) {
	ctx := c.Request().Context()
	m, err := ui.Registry.GetModel(ctx, name)
	if err != nil {
		return ModelData{}, err
	}
	p, err := pagination.Parse(c.QueryParam("cursor"), "")
	if err != nil {
		return ModelData{}, err
	}
	versions, next, err := ui.Registry.ListVersions(ctx, name, p)
	if err != nil {
		return ModelData{}, err
	}
	stages, err := ui.stagesData(c, name)
	now := time.Now()
	stages.Now = now
	return ModelData{
		Model:    m,
		Versions: VersionsData{Model: m.Name, Versions: versions, Cursor: p.Cursor, NextCursor: next, Now: now},
		Stages:   stages,
		CanEdit:  identity(ctx).User.Role.Allows(auth.RoleContributor),
		Now:      now,
	}, err
}

// Version shows one version: metadata, source, trackers, artifacts.
func (ui *UI) Version(c echo.Context) error {
	n, err := pathVersion(c)
	if err != nil {
		return err
	}
	v, err := ui.Registry.GetVersion(c.Request().Context(), c.Param("model"), n)
	if err != nil {
		return err
	}
	d := VersionData{Version: v, Now: time.Now(), ReportsCursor: c.QueryParam("reports"), PromotionsCursor: c.QueryParam("promotions")}
	ctx := c.Request().Context()
	if d.Reports, d.NextReports, err = ui.Evaluations.List(ctx, v.Model, v.Version, pagination.Page{Cursor: d.ReportsCursor, Limit: 50}); err != nil {
		return err
	}
	if d.Promotions, d.NextPromotions, err = ui.Promotions.ListPromotions(ctx, promotion.Filter{Model: v.Model, Version: v.Version}, pagination.Page{Cursor: d.PromotionsCursor, Limit: 20}); err != nil {
		return err
	}
	stages, err := ui.Promotions.ListStages(ctx, v.Model)
	if err != nil {
		return err
	}
	for _, s := range stages {
		if s.Version != nil && *s.Version == v.Version {
			d.Stages = append(d.Stages, s.Name)
		}
	}
	ref := lineage.NodeRef{Kind: lineage.KindModelVersion, Name: v.Model, Version: v.Version}
	if d.Lineage, d.Explore, err = ui.panel(c, ref, lineage.Upstream); err != nil {
		return err
	}
	return Render(c, http.StatusOK, VersionPage(ui.Page(c, fmt.Sprintf("%s v%d", v.Model, v.Version), "models"), d))
}

// Model shows one model.
func (ui *UI) Model(c echo.Context) error {
	d, err := ui.modelData(c, c.Param("model"))
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, ModelPage(ui.Page(c, d.Model.Name, "models"), d))
}

// UpdateModel saves the edit form. The form carries the revision it was
// drawn from: a change by someone else meanwhile is refused (412) and the
// page shows the model as it is now.
func (ui *UI) UpdateModel(c echo.Context) error {
	name := c.Param("model")
	rev, err := strconv.ParseInt(c.FormValue("revision"), 10, 64)
	if err != nil {
		return errs.Invalid("revision", "must be the revision the form was drawn from")
	}
	description, owner := c.FormValue("description"), c.FormValue("owner")
	archived := c.FormValue("archived") == "true"
	in := registry.ModelUpdate{Description: &description, Owner: &owner, Archived: &archived}
	tags, formErr := parseTagLines(c.FormValue("tags"))
	if formErr == nil {
		t := registry.Tags(tags)
		in.Tags = &t
		_, formErr = ui.Registry.UpdateModel(c.Request().Context(), name, rev, in)
	}
	status, notice := http.StatusOK, "Saved."
	if formErr != nil {
		if !formError(formErr) && !errors.Is(formErr, errs.ErrPreconditionFailed) {
			return formErr
		}
		status, notice = http.StatusBadRequest, ""
		if errors.Is(formErr, errs.ErrPreconditionFailed) {
			status = http.StatusPreconditionFailed
		}
	}
	d, err := ui.modelData(c, name)
	if err != nil {
		return err
	}
	d.Notice = notice
	if formErr != nil {
		d.Error, d.Fields = formErr.Error(), fieldErrorsOf("model", formErr)
	}
	p := ui.Page(c, d.Model.Name, "models")
	if IsHTMX(c) {
		return Render(c, status, ModelSection(p, d))
	}
	return Render(c, status, ModelPage(p, d))
}
