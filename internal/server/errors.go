package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/slipway-ml/slipway/internal/database"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/web"
)

// APIError is the JSON body of every API error.
type APIError struct {
	Error APIErrorBody `json:"error"`
}

// APIErrorBody says what went wrong: a stable code for programs, a message
// for people, and details (e.g. which fields) when there are some.
type APIErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details any    `json:"details,omitempty"`
}

type fieldDetail struct {
	Field string `json:"field"`
	Rule  string `json:"rule"`
}

var kinds = []struct {
	err    error
	status int
	code   string
}{
	{errs.ErrInvalid, http.StatusBadRequest, "invalid_argument"},
	{errs.ErrUnauthenticated, http.StatusUnauthorized, "unauthenticated"},
	{errs.ErrForbidden, http.StatusForbidden, "forbidden"},
	{errs.ErrNotFound, http.StatusNotFound, "not_found"},
	{errs.ErrConflict, http.StatusConflict, "conflict"},
	{errs.ErrPreconditionFailed, http.StatusPreconditionFailed, "precondition_failed"},
	{errs.ErrPreconditionNeeded, http.StatusPreconditionRequired, "precondition_required"},
	{errs.ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
	{errs.ErrUnsupportedMedia, http.StatusUnsupportedMediaType, "unsupported_media_type"},
	{errs.ErrUnprocessable, http.StatusUnprocessableEntity, "unprocessable"},
	{errs.ErrTooManyRequests, http.StatusTooManyRequests, "too_many_requests"},
	{errs.ErrUnavailable, http.StatusServiceUnavailable, "unavailable"},
}

func codeFor(status int) string {
	for _, k := range kinds {
		if k.status == status {
			return k.code
		}
	}
	switch status {
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusRequestedRangeNotSatisfiable:
		return "range_not_satisfiable"
	case http.StatusInternalServerError:
		return "internal"
	}
	return "error"
}

// classify maps an error to status, code, message and details. This is the
// only place in Slipway where errors become HTTP.
func classify(err error) (int, string, string, any) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg, _ := he.Message.(string)
		switch he.Code {
		case http.StatusNotFound:
			msg = "no such page or endpoint"
		case http.StatusRequestEntityTooLarge:
			msg = "the request body is too large"
		}
		if msg == "" {
			msg = http.StatusText(he.Code)
		}
		return he.Code, codeFor(he.Code), msg, nil
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, "too_large", "the request body is too large", nil
	}
	if database.Unavailable(err) || errors.Is(err, errs.ErrUnavailable) {
		return http.StatusServiceUnavailable, "unavailable", "a service Slipway depends on is unavailable; try again shortly", nil
	}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			var details any
			var fe *errs.FieldError
			var fes errs.FieldErrors
			switch {
			case errors.As(err, &fes):
				d := make([]fieldDetail, len(fes))
				for i, f := range fes {
					d[i] = fieldDetail{f.Field, f.Rule}
				}
				details = d
			case errors.As(err, &fe):
				details = []fieldDetail{{fe.Field, fe.Rule}}
			}
			return k.status, k.code, err.Error(), details
		}
	}
	return http.StatusInternalServerError, "internal", "internal error; the request id identifies it in Slipway's log", nil
}

// handleError answers an error: JSON under /api, a page or an htmx fragment
// elsewhere.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	req := c.Request()
	if errors.Is(req.Context().Err(), context.Canceled) {
		// The client went away; nobody reads the answer.
		c.Response().WriteHeader(499)
		return
	}
	status, code, msg, details := classify(err)
	if status >= 500 {
		s.deps.Logger.ErrorContext(req.Context(), "request failed", "request_id", reqID(c), "status", status, "error", err.Error())
	}
	// A handler may have set headers for the answer it meant to give (an
	// artifact's type, length, digest): they do not describe an error.
	for _, k := range []string{echo.HeaderContentType, echo.HeaderContentLength, echo.HeaderContentDisposition, "ETag", "Content-Digest", "Accept-Ranges"} {
		c.Response().Header().Del(k)
	}
	var werr error
	switch {
	case isAPI(req.URL.Path):
		if status == http.StatusUnauthorized {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="slipway"`)
		}
		werr = c.JSON(status, APIError{APIErrorBody{Code: code, Message: msg, Details: details}})
	case status == http.StatusUnauthorized:
		login := "/login?next=" + url.QueryEscape(req.URL.RequestURI())
		if web.IsHTMX(c) {
			c.Response().Header().Set(web.HXRedirect, login)
			werr = c.NoContent(http.StatusUnauthorized)
		} else if req.Method == http.MethodGet {
			werr = c.Redirect(http.StatusSeeOther, login)
		} else {
			werr = c.Redirect(http.StatusSeeOther, "/login")
		}
	case web.IsHTMX(c):
		c.Response().Header().Set(web.HXRetarget, "#flash")
		c.Response().Header().Set(web.HXReswap, "innerHTML")
		werr = web.Render(c, status, web.ErrorFragment(msg))
	default:
		werr = web.Render(c, status, web.ErrorPage(s.ui.Page(c, http.StatusText(status), ""), status, msg))
	}
	if werr != nil {
		s.deps.Logger.ErrorContext(req.Context(), "writing error response failed", "request_id", reqID(c), "error", werr.Error())
		if !c.Response().Committed {
			c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextPlainCharsetUTF8)
			c.Response().WriteHeader(status)
			c.Response().Write([]byte(msg + "\n"))
		}
	}
}
