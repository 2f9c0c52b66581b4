package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/registry"
)

// ListModels lists models: ?q= name prefix, ?tag=key or key=value,
// ?archived=true for archived ones.
func (a *API) ListModels(c echo.Context) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	f := registry.ModelFilter{Prefix: c.QueryParam("q"), Tag: c.QueryParam("tag")}
	if v := c.QueryParam("archived"); v != "" {
		if f.Archived, err = strconv.ParseBool(v); err != nil {
			return errs.Invalid("archived", "must be true or false")
		}
	}
	models, next, err := a.Registry.ListModels(c.Request().Context(), f, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(models, next))
}

type createModelRequest struct {
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Owner       string        `json:"owner"`
	Tags        registry.Tags `json:"tags"`
}

// CreateModel registers a model.
func (a *API) CreateModel(c echo.Context) error {
	var in createModelRequest
	if err := decodeJSON(c, a.MaxJSONBody, &in); err != nil {
		return err
	}
	m, err := a.Registry.CreateModel(c.Request().Context(), registry.NewModel{Name: in.Name, Description: in.Description, Owner: in.Owner, Tags: in.Tags})
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/models/"+m.Name)
	c.Response().Header().Set("ETag", m.ETag())
	return c.JSON(http.StatusCreated, m)
}

// GetModel returns one model with its ETag.
func (a *API) GetModel(c echo.Context) error {
	m, err := a.Registry.GetModel(c.Request().Context(), c.Param("model"))
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", m.ETag())
	return c.JSON(http.StatusOK, m)
}

type updateModelRequest struct {
	Description *string        `json:"description"`
	Owner       *string        `json:"owner"`
	Tags        *registry.Tags `json:"tags"`
	Archived    *bool          `json:"archived"`
}

// UpdateModel changes description, owner, tags or the archived flag. It
// needs If-Match with the ETag the caller read (428 without, 412 when
// someone changed the model since).
func (a *API) UpdateModel(c echo.Context) error {
	ctx := c.Request().Context()
	name := c.Param("model")
	ifMatch := c.Request().Header.Get("If-Match")
	if ifMatch == "" {
		return fmt.Errorf("send If-Match with the ETag of the model as you read it (GET /api/v1/models/%s): %w", name, errs.ErrPreconditionNeeded)
	}
	var in updateModelRequest
	if err := decodeJSON(c, a.MaxJSONBody, &in); err != nil {
		return err
	}
	rev, err := parseIfMatch(ifMatch)
	if err != nil {
		return err
	}
	if rev == 0 { // If-Match: * matches whatever revision is current
		m, err := a.Registry.GetModel(ctx, name)
		if err != nil {
			return err
		}
		rev = m.Revision
	}
	m, err := a.Registry.UpdateModel(ctx, name, rev, registry.ModelUpdate{Description: in.Description, Owner: in.Owner, Tags: in.Tags, Archived: in.Archived})
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", m.ETag())
	return c.JSON(http.StatusOK, m)
}

// parseIfMatch reads an If-Match value: one entity tag ("3", or W/"3", as
// weak comparison is enough for a JSON document) or *, returned as 0.
func parseIfMatch(v string) (int64, error) {
	v = strings.TrimSpace(v)
	if v == "*" {
		return 0, nil
	}
	v = strings.TrimPrefix(v, "W/")
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		if n, err := strconv.ParseInt(v[1:len(v)-1], 10, 64); err == nil && n > 0 {
			return n, nil
		}
	}
	return 0, fmt.Errorf("If-Match %q is not an ETag this API gave out: %w", v, errs.ErrPreconditionFailed)
}
