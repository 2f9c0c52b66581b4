// Package web is Slipway's browser UI: templ components and the handlers
// that render them. Handlers call the same domain services as the JSON API;
// the UI has no SQL of its own.
package web

import (
	"encoding/json"

	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/static"
)

// Page is what the layout needs to draw any page.
type Page struct {
	Title   string
	Section string // key of the active navigation item
	User    *auth.User
	CSRF    string
	Assets  *static.Assets
	Flash   *Flash
}

// Flash is a one-off message at the top of a page.
type Flash struct {
	Kind    string // "success" or "error"
	Message string
}

// hxHeaders is the hx-headers value that makes htmx send the CSRF token
// with every request it makes.
func (p Page) hxHeaders() string {
	if p.CSRF == "" {
		return ""
	}
	b, _ := json.Marshal(map[string]string{CSRFHeader: p.CSRF})
	return string(b)
}

func (p Page) isAdmin() bool { return p.User != nil && p.User.Role == auth.RoleAdmin }

type navItem struct {
	Key, Label, Href string
	// Available is false for sections this release of Slipway does not
	// have yet: they show, greyed out, so the layout is stable.
	Available bool
	AdminOnly bool
}

var navItems = []navItem{
	{Key: "dashboard", Label: "Dashboard", Href: "/", Available: true},
	{Key: "models", Label: "Models", Href: "/models", Available: true},
	{Key: "datasets", Label: "Datasets", Href: "/datasets", Available: true},
	{Key: "runs", Label: "Runs", Href: "/runs", Available: true},
	{Key: "lineage", Label: "Lineage", Href: "/lineage", Available: true},
	{Key: "reviews", Label: "Reviews", Href: "/reviews", Available: true},
	{Key: "webhooks", Label: "Webhooks", Href: "/webhooks", Available: true, AdminOnly: true},
	{Key: "audit", Label: "Audit", Href: "/audit", Available: true, AdminOnly: true},
	{Key: "settings", Label: "Settings", Href: "/settings/tokens", Available: true},
}

func (p Page) nav() []navItem {
	items := make([]navItem, 0, len(navItems))
	for _, it := range navItems {
		if it.AdminOnly && !p.isAdmin() {
			continue
		}
		items = append(items, it)
	}
	return items
}
