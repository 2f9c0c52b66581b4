package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/slipway-ml/slipway/internal/errs"
)

// decodeJSON reads a JSON request body into v strictly: the content type
// must be application/json (415), the body at most maxBytes (413, refused
// from Content-Length before reading when it is declared), unknown fields
// and trailing data are 400.
func decodeJSON(c echo.Context, maxBytes int64, v any) error {
	req := c.Request()
	mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err != nil || mt != echo.MIMEApplicationJSON {
		return fmt.Errorf("the body must be application/json: %w", errs.ErrUnsupportedMedia)
	}
	if req.ContentLength > maxBytes {
		return fmt.Errorf("the body is larger than %d bytes: %w", maxBytes, errs.ErrTooLarge)
	}
	return decodeJSONReader(http.MaxBytesReader(c.Response(), req.Body, maxBytes), maxBytes, v, "body")
}

// decodeJSONReader decodes exactly one JSON value from r into v, strictly
// (unknown fields refused), reading at most maxBytes; field names the
// input in errors ("body", or a multipart part).
func decodeJSONReader(r io.Reader, maxBytes int64, v any, field string) error {
	lr := &io.LimitedReader{R: r, N: maxBytes + 1}
	dec := json.NewDecoder(lr)
	dec.DisallowUnknownFields()
	tooLarge := func() bool { return lr.N <= 0 }
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe) || tooLarge():
			return fmt.Errorf("the %s is larger than %d bytes: %w", field, maxBytes, errs.ErrTooLarge)
		case errors.Is(err, io.EOF):
			return errs.Invalid(field, "must not be empty")
		case errors.As(err, &se):
			return errs.Invalid(field, "is not valid JSON (at byte %d)", se.Offset)
		case errors.As(err, &te):
			name := te.Field
			if name == "" {
				name = field
			}
			return errs.Invalid(name, "must be a JSON %s", jsonKind(te.Type.Kind().String()))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return errs.Invalid(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "is not a known field")
		default:
			return errs.Invalid(field, "is not valid JSON: %v", err)
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if tooLarge() {
			return fmt.Errorf("the %s is larger than %d bytes: %w", field, maxBytes, errs.ErrTooLarge)
		}
		return errs.Invalid(field, "must hold exactly one JSON value")
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct", "ptr":
		return "object"
	}
	return "number"
}
