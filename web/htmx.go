package web

import "github.com/labstack/echo/v4"

// Header names of the htmx protocol and of Slipway's CSRF token, in one place.
const (
	HXRequest  = "HX-Request"
	HXTarget   = "HX-Target"
	HXRedirect = "HX-Redirect"
	HXRetarget = "HX-Retarget"
	HXReswap   = "HX-Reswap"
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf_token"
)

// IsHTMX reports whether htmx made the request (so a fragment is wanted).
func IsHTMX(c echo.Context) bool { return c.Request().Header.Get(HXRequest) == "true" }

// hxTarget is the id of the element htmx will swap, "" when not htmx.
func hxTarget(c echo.Context) string {
	if !IsHTMX(c) {
		return ""
	}
	return c.Request().Header.Get(HXTarget)
}
