package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/lineage"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/internal/promotion"
)

// How much each dashboard panel shows; the pages behind them show all.
const (
	dashReviews    = 8
	dashProduction = 50
	dashMoves      = 8
	dashQuality    = 10
	dashEndpoints  = 10
)

// Dashboard answers what a reviewer or an admin looks for first: what
// waits for them, what runs in production, what moved, and what is wrong
// upstream or downstream.
func (ui *UI) Dashboard(c echo.Context) error {
	ctx := c.Request().Context()
	id := identity(ctx)
	d := DashboardData{Now: time.Now(), Me: id.User.Name, ShowWebhooks: id.User.Role == auth.RoleAdmin}

	open, next, err := ui.Promotions.ListPromotions(ctx, promotion.Filter{Status: promotion.StatusPendingApproval}, pagination.Page{Limit: dashReviews})
	if err != nil {
		return err
	}
	// the newest requests, shown oldest first as the queue is
	for i, j := 0, len(open)-1; i < j; i, j = i+1, j-1 {
		open[i], open[j] = open[j], open[i]
	}
	d.Reviews, d.MoreReviews = open, next != ""
	if d.Production, err = ui.Promotions.Holdings(ctx, "production", dashProduction); err != nil {
		return err
	}
	if d.Moves, err = ui.Promotions.RecentMoves(ctx, dashMoves); err != nil {
		return err
	}
	roots := make([]lineage.VersionRef, len(d.Production))
	for i, h := range d.Production {
		roots[i] = lineage.VersionRef{Model: h.Model, Version: h.Version}
	}
	if d.QualityFailures, err = ui.Lineage.UpstreamQualityFailures(ctx, roots, dashQuality); err != nil {
		return err
	}
	if d.ShowWebhooks {
		if d.FailingEndpoints, err = ui.Webhooks.Unhealthy(ctx, dashEndpoints); err != nil {
			return err
		}
	}

	counts, err := ui.Auth.Count(ctx)
	if err != nil {
		return err
	}
	d.Users, d.ActiveTokens, d.Sessions = counts.Users, counts.ActiveTokens, counts.Sessions
	if d.AuditEvents24h, err = ui.AuditLog.CountSince(ctx, time.Now().Add(-24*time.Hour)); err != nil {
		return err
	}
	if d.Models, err = ui.Registry.CountModels(ctx); err != nil {
		return err
	}
	return Render(c, http.StatusOK, DashboardPage(ui.Page(c, "Dashboard", "dashboard"), d))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
