package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/slipway-ml/slipway/internal/database"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/webhook"
)

// ListWebhooks lists the webhook endpoints (admin).
func (a *API) ListWebhooks(c echo.Context) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	items, next, err := a.Webhooks.List(c.Request().Context(), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(items, next))
}

type endpointWithSecret struct {
	webhook.Endpoint
	// Secret signs the deliveries: in this answer only, never again.
	Secret string `json:"secret"`
}

// CreateWebhook registers an endpoint and answers its secret, once.
func (a *API) CreateWebhook(c echo.Context) error {
	var in webhook.NewEndpoint
	if err := decodeJSON(c, a.MaxJSONBody, &in); err != nil {
		return err
	}
	e, secret, err := a.Webhooks.Create(c.Request().Context(), in)
	if err != nil {
		return noKey(err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/api/v1/webhooks/%d", e.ID))
	return c.JSON(http.StatusCreated, endpointWithSecret{Endpoint: e, Secret: secret})
}

// noKey says what to do when secrets cannot be sealed because
// SLIPWAY_WEBHOOK_KEY is not set: a 503 whose message names the setting,
// not the "try again shortly" of a dependency that is down, which would
// send the admin waiting for nothing.
func noKey(err error) error {
	if errors.Is(err, errs.ErrUnavailable) && !database.Unavailable(err) {
		return echo.NewHTTPError(http.StatusServiceUnavailable,
			"webhooks need SLIPWAY_WEBHOOK_KEY (32 random bytes in base64) to seal signing secrets, and it is not set on this server")
	}
	return err
}

// GetWebhook returns one endpoint.
func (a *API) GetWebhook(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	e, err := a.Webhooks.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

// UpdateWebhook changes an endpoint: URL, description, filters, enabled.
func (a *API) UpdateWebhook(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	var in webhook.EndpointUpdate
	if err := decodeJSON(c, a.MaxJSONBody, &in); err != nil {
		return err
	}
	if in == (webhook.EndpointUpdate{}) {
		return errs.Invalid("body", "must set at least one of url, description, event_types, models, enabled")
	}
	e, err := a.Webhooks.Update(c.Request().Context(), id, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

type rotateRequest struct {
	// Window is how long the old secret keeps signing ("24h"); absent: the
	// configured default.
	Window string `json:"window"`
}

// RotateWebhookSecret gives an endpoint a new secret, answered once.
func (a *API) RotateWebhookSecret(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	var in rotateRequest
	if err := decodeJSON(c, a.MaxJSONBody, &in); err != nil {
		return err
	}
	window := a.WebhookRotationWindow
	if in.Window != "" {
		if window, err = time.ParseDuration(in.Window); err != nil {
			return errs.Invalid("window", `must be a duration such as "24h" or "0s"`)
		}
	}
	e, secret, err := a.Webhooks.RotateSecret(c.Request().Context(), id, window)
	if err != nil {
		return noKey(err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, endpointWithSecret{Endpoint: e, Secret: secret})
}

// TestWebhook queues a test message to an endpoint.
func (a *API) TestWebhook(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	m, err := a.Webhooks.SendTest(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, m)
}

var deliveryFilters = map[string]bool{"status": true, "event_type": true, "cursor": true, "limit": true}

// ListDeliveries is an endpoint's delivery log: its messages, newest
// first, by status and event type.
func (a *API) ListDeliveries(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	p, err := page(c)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	for k := range q {
		if !deliveryFilters[k] {
			return errs.Invalid(k, "is not a filter of deliveries (status, event_type)")
		}
	}
	items, next, err := a.Webhooks.Messages(c.Request().Context(), webhook.MessageFilter{EndpointID: id, Status: q.Get("status"), EventType: q.Get("event_type")}, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(items, next))
}

func messageParam(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("message"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errs.Invalid("message", "must be a positive integer")
	}
	return id, nil
}

// GetDelivery returns one message with every attempt.
func (a *API) GetDelivery(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	mid, err := messageParam(c)
	if err != nil {
		return err
	}
	m, err := a.Webhooks.Message(c.Request().Context(), id, mid)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, messageWithLog{Message: m, Log: append([]webhook.Attempt{}, m.Log...)})
}

// messageWithLog is one message with its attempts: log is there, empty
// before the first attempt, not left out.
type messageWithLog struct {
	webhook.Message
	Log []webhook.Attempt `json:"log"`
}

// Redeliver sends a message again: same webhook-id, a new timestamp and
// signature.
func (a *API) Redeliver(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	mid, err := messageParam(c)
	if err != nil {
		return err
	}
	m, err := a.Webhooks.Redeliver(c.Request().Context(), id, mid)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, m)
}

type replayRequest struct {
	// Since is an RFC 3339 time: read here, so that a bad one is named.
	Since string `json:"since"`
}

type replayAnswer struct {
	Queued int `json:"queued"`
}

// Replay sends an endpoint every event since a time that it has not
// received (a receiver that was down).
func (a *API) Replay(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	var in replayRequest
	if err := decodeJSON(c, a.MaxJSONBody, &in); err != nil {
		return err
	}
	if in.Since == "" {
		return errs.Invalid("since", "is required: an RFC 3339 time")
	}
	since, err := time.Parse(time.RFC3339Nano, in.Since)
	if err != nil {
		return errs.Invalid("since", "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
	}
	n, err := a.Webhooks.ReplaySince(c.Request().Context(), id, since)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, replayAnswer{Queued: n})
}
