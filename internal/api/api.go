// Package api is Slipway's JSON API under /api/v1: handlers that parse a
// request, call the domain services the UI also uses, and answer JSON. Its
// OpenAPI document is embedded here and served at /api/v1/openapi.json.
package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

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
)

// API holds the JSON handlers.
type API struct {
	Auth        *auth.Service
	AuditLog    *audit.Log
	Registry    *registry.Service
	Lineage     *lineage.Service
	Evaluations *evaluation.Service
	Promotions  *promotion.Service
	Webhooks    *webhook.Service
	// WebhookRotationWindow is how long a rotated secret keeps signing.
	WebhookRotationWindow time.Duration
	MaxJSONBody           int64
	DraftTTL              time.Duration // how long a draft version waits for finalize
}

// List is the shape of every list response.
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func list[T any](items []T, next string) List[T] {
	if items == nil {
		items = []T{}
	}
	return List[T]{Items: items, NextCursor: next}
}

func page(c echo.Context) (pagination.Page, error) {
	return pagination.Parse(c.QueryParam("cursor"), c.QueryParam("limit"))
}

func identity(ctx context.Context) auth.Identity {
	id, ok := auth.IdentityFrom(ctx)
	if !ok {
		panic("api: handler reached without an identity; the route lacks its role middleware")
	}
	return id
}

// Me answers who the token belongs to: the cheapest way for a client to
// check its credentials.
func (a *API) Me(c echo.Context) error {
	return c.JSON(http.StatusOK, identity(c.Request().Context()).User)
}

// ListTokens lists the caller's tokens.
func (a *API) ListTokens(c echo.Context) error {
	return a.listTokens(c, identity(c.Request().Context()).User.Name)
}

func (a *API) listTokens(c echo.Context, user string) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	tokens, next, err := a.Auth.ListTokens(c.Request().Context(), user, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(tokens, next))
}

type createTokenRequest struct {
	Name      string     `json:"name"`
	ExpiresAt *time.Time `json:"expires_at"`
}

type createdToken struct {
	auth.Token
	// Token is the secret: in this response only, never again.
	Secret string `json:"token"`
}

// CreateToken issues a token to the caller.
func (a *API) CreateToken(c echo.Context) error {
	return a.issueToken(c, identity(c.Request().Context()).User.Name)
}

// issueToken creates a token for user from the request body and answers it
// with its secret, which no cache may keep.
func (a *API) issueToken(c echo.Context, user string) error {
	var in createTokenRequest
	if err := decodeJSON(c, a.MaxJSONBody, &in); err != nil {
		return err
	}
	secret, t, err := a.Auth.CreateToken(c.Request().Context(), auth.NewToken{UserName: user, Name: in.Name, ExpiresAt: in.ExpiresAt})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, createdToken{Token: t, Secret: secret})
}

// RevokeToken revokes a token of the caller (or any token, for an admin).
func (a *API) RevokeToken(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return errs.Invalid("id", "must be a positive integer")
	}
	ctx := c.Request().Context()
	t, err := a.Auth.RevokeToken(ctx, identity(ctx).User, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

// ListUsers lists users (admin).
func (a *API) ListUsers(c echo.Context) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	users, next, err := a.Auth.ListUsers(c.Request().Context(), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(users, next))
}

type createUserRequest struct {
	Name     string    `json:"name"`
	Role     auth.Role `json:"role"`
	Password string    `json:"password"`
}

// CreateUser adds a user (admin).
func (a *API) CreateUser(c echo.Context) error {
	var in createUserRequest
	if err := decodeJSON(c, a.MaxJSONBody, &in); err != nil {
		return err
	}
	u, err := a.Auth.CreateUser(c.Request().Context(), auth.NewUser{Name: in.Name, Role: in.Role, Password: in.Password})
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/users/"+u.Name)
	return c.JSON(http.StatusCreated, u)
}

// GetUser returns one user (admin).
func (a *API) GetUser(c echo.Context) error {
	u, err := a.Auth.GetUser(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, u)
}

type updateUserRequest struct {
	Role     *auth.Role `json:"role"`
	Disabled *bool      `json:"disabled"`
	Password *string    `json:"password"`
}

// UpdateUser changes a user's role, disabled flag or password (admin).
func (a *API) UpdateUser(c echo.Context) error {
	var in updateUserRequest
	if err := decodeJSON(c, a.MaxJSONBody, &in); err != nil {
		return err
	}
	if in.Role == nil && in.Disabled == nil && in.Password == nil {
		return errs.Invalid("body", "must set at least one of role, disabled, password")
	}
	u, err := a.Auth.UpdateUser(c.Request().Context(), c.Param("name"), auth.UserUpdate{Role: in.Role, Disabled: in.Disabled, Password: in.Password})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, u)
}

var auditParams = map[string]bool{
	"actor": true, "action": true, "target_type": true, "target_id": true,
	"since": true, "until": true, "cursor": true, "limit": true,
}

// ListAudit reads the audit log (admin).
func (a *API) ListAudit(c echo.Context) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	for k := range q {
		if !auditParams[k] {
			return errs.Invalid(k, "is not a filter of the audit log (actor, action, target_type, target_id, since, until)")
		}
	}
	f, err := audit.ParseFilter(q)
	if err != nil {
		return err
	}
	events, next, err := a.AuditLog.List(c.Request().Context(), f, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(events, next))
}

// ListUserTokens lists the tokens of a user (admin).
func (a *API) ListUserTokens(c echo.Context) error {
	u, err := a.Auth.GetUser(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	return a.listTokens(c, u.Name)
}

// CreateUserToken issues a token to a user (admin): how a CI identity gets
// its first token without the command line.
func (a *API) CreateUserToken(c echo.Context) error {
	return a.issueToken(c, c.Param("name"))
}

type changePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// ChangePassword replaces the caller's password; their browser sessions end.
func (a *API) ChangePassword(c echo.Context) error {
	var in changePasswordRequest
	if err := decodeJSON(c, a.MaxJSONBody, &in); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := a.Auth.ChangePassword(ctx, identity(ctx).User.Name, in.CurrentPassword, in.NewPassword); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
