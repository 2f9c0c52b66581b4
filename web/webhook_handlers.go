package web

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/internal/webhook"
)

func deliveryBadge(status string) string {
	switch status {
	case webhook.StatusDelivered:
		return "badge ok"
	case webhook.StatusFailed:
		return "badge bad"
	}
	return "badge warn"
}

func headerLines(h map[string]string) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, h[k])
	}
	return b.String()
}

func (ui *UI) webhooksData(c echo.Context) (WebhooksData, error) {
	p, err := pagination.Parse(c.QueryParam("cursor"), "")
	if err != nil {
		return WebhooksData{}, err
	}
	d := WebhooksData{Cursor: p.Cursor, Types: webhook.EventTypes, Now: time.Now()}
	d.Endpoints, d.NextCursor, err = ui.Webhooks.List(c.Request().Context(), p)
	return d, err
}

// WebhooksList lists the endpoints (admins).
func (ui *UI) WebhooksList(c echo.Context) error {
	d, err := ui.webhooksData(c)
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, WebhooksPage(ui.Page(c, "Webhooks", "webhooks"), d))
}

// CreateWebhook adds an endpoint and shows its secret once.
func (ui *UI) CreateWebhook(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return err
	}
	in := webhook.NewEndpoint{URL: strings.TrimSpace(form.Get("url")), Description: form.Get("description"), EventTypes: form["event_types"]}
	for _, m := range strings.Split(form.Get("models"), ",") {
		if m = strings.TrimSpace(m); m != "" {
			in.Models = append(in.Models, m)
		}
	}
	e, secret, createErr := ui.Webhooks.Create(c.Request().Context(), in)
	if createErr != nil && !formError(createErr) {
		return createErr
	}
	d, err := ui.webhooksData(c)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if createErr != nil {
		status, d.Error, d.Fields = http.StatusBadRequest, createErr.Error(), fieldErrorsOf("webhook", createErr)
	} else {
		d.Created, d.Secret = &e, secret
		c.Response().Header().Set("Cache-Control", "no-store")
	}
	return Render(c, status, WebhooksPage(ui.Page(c, "Webhooks", "webhooks"), d))
}

func webhookID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("no such webhook endpoint: %w", errs.ErrNotFound)
	}
	return id, nil
}

func (ui *UI) webhookData(c echo.Context, id int64) (WebhookData, error) {
	ctx := c.Request().Context()
	e, err := ui.Webhooks.Get(ctx, id)
	if err != nil {
		return WebhookData{}, err
	}
	p, err := pagination.Parse(c.QueryParam("cursor"), "")
	if err != nil {
		return WebhookData{}, err
	}
	d := WebhookData{Endpoint: e, Status: c.QueryParam("status"), Cursor: p.Cursor, Now: time.Now()}
	if d.Messages, d.NextCursor, err = ui.Webhooks.Messages(ctx, webhook.MessageFilter{EndpointID: id, Status: d.Status}, p); err != nil {
		return WebhookData{}, err
	}
	if s := c.QueryParam("message"); s != "" {
		mid, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return WebhookData{}, errs.Invalid("message", "must be a message id")
		}
		m, err := ui.Webhooks.Message(ctx, id, mid)
		if err != nil {
			return WebhookData{}, err
		}
		d.Open = &m
	}
	return d, nil
}

// Webhook is one endpoint's page: settings, actions and delivery log.
func (ui *UI) Webhook(c echo.Context) error {
	id, err := webhookID(c)
	if err != nil {
		return err
	}
	d, err := ui.webhookData(c, id)
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, WebhookPage(ui.Page(c, "Webhook "+d.Endpoint.URL, "webhooks"), d))
}

// WebhookAction runs one of an endpoint's buttons: test, rotate, disable,
// enable, replay, redeliver; the page says what happened.
func (ui *UI) WebhookAction(c echo.Context) error {
	id, err := webhookID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var notice, secret string
	var actErr error
	switch verb := c.Param("verb"); verb {
	case "test":
		var m webhook.Message
		if m, actErr = ui.Webhooks.SendTest(ctx, id); actErr == nil {
			notice = "Test event queued as " + m.MsgID + "."
		}
	case "rotate":
		_, secret, actErr = ui.Webhooks.RotateSecret(ctx, id, ui.WebhookRotationWindow)
	case "disable", "enable":
		on := verb == "enable"
		if _, actErr = ui.Webhooks.Update(ctx, id, webhook.EndpointUpdate{Enabled: &on}); actErr == nil {
			notice = "Endpoint " + verb + "d."
		}
	case "replay":
		t, err := time.Parse(atLayout, c.FormValue("since"))
		if err != nil {
			actErr = errs.Invalid("since", "a time such as 2026-11-20T03:00 (UTC)")
			break
		}
		var n int
		if n, actErr = ui.Webhooks.ReplaySince(ctx, id, t.UTC()); actErr == nil {
			notice = fmt.Sprintf("%d messages queued.", n)
		}
	default:
		return fmt.Errorf("no such action: %w", errs.ErrNotFound)
	}
	return ui.renderWebhook(c, id, notice, secret, actErr)
}

// Redeliver sends one message again.
func (ui *UI) Redeliver(c echo.Context) error {
	id, err := webhookID(c)
	if err != nil {
		return err
	}
	mid, err := strconv.ParseInt(c.Param("message"), 10, 64)
	if err != nil {
		return fmt.Errorf("no such message: %w", errs.ErrNotFound)
	}
	m, actErr := ui.Webhooks.Redeliver(c.Request().Context(), id, mid)
	return ui.renderWebhook(c, id, "Queued again: "+m.MsgID+".", "", actErr)
}

func (ui *UI) renderWebhook(c echo.Context, id int64, notice, secret string, actErr error) error {
	if actErr != nil && !formError(actErr) && !errors.Is(actErr, errs.ErrUnavailable) {
		return actErr
	}
	d, err := ui.webhookData(c, id)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if actErr != nil {
		status, d.Error, d.Fields = http.StatusBadRequest, actErr.Error(), fieldErrorsOf("webhook", actErr)
	} else {
		d.Notice, d.Secret = notice, secret
	}
	if secret != "" {
		c.Response().Header().Set("Cache-Control", "no-store")
	}
	return Render(c, status, WebhookPage(ui.Page(c, "Webhook "+d.Endpoint.URL, "webhooks"), d))
}
