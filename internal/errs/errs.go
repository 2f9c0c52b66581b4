// Package errs defines the kinds of failure that Slipway's domain packages
// return. Domain code wraps one of the sentinel errors below with context
// ("model %q: %w"); the HTTP layer maps the kind to a status code in exactly
// one place, so no domain package ever speaks HTTP.
package errs

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel kinds. Wrap them with %w; test with errors.Is.
var (
	ErrInvalid            = errors.New("invalid argument")
	ErrUnauthenticated    = errors.New("authentication required")
	ErrForbidden          = errors.New("forbidden")
	ErrNotFound           = errors.New("not found")
	ErrConflict           = errors.New("conflict")
	ErrPreconditionFailed = errors.New("precondition failed")
	ErrPreconditionNeeded = errors.New("precondition required")
	ErrTooLarge           = errors.New("too large")
	ErrUnsupportedMedia   = errors.New("unsupported media type")
	ErrUnprocessable      = errors.New("unprocessable")
	ErrTooManyRequests    = errors.New("too many requests")
	ErrUnavailable        = errors.New("dependency unavailable")
)

// FieldError says which input field broke which rule. It unwraps to ErrInvalid.
type FieldError struct {
	Field string // JSON field, query parameter or form field name
	Rule  string // human-readable rule, e.g. `must match ^[a-z0-9][a-z0-9._-]{0,127}$`
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Rule }
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Invalid returns a *FieldError for field with the given rule.
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Rule: fmt.Sprintf(format, args...)}
}

// FieldErrors collects several field errors so a client learns every problem
// of a request at once. It unwraps to ErrInvalid.
type FieldErrors []*FieldError

func (fe FieldErrors) Error() string {
	parts := make([]string, len(fe))
	for i, e := range fe {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

func (fe FieldErrors) Unwrap() error { return ErrInvalid }

// Add appends a field error.
func (fe *FieldErrors) Add(field, format string, args ...any) {
	*fe = append(*fe, &FieldError{Field: field, Rule: fmt.Sprintf(format, args...)})
}

// Err returns nil when no error was added, the collection otherwise.
func (fe FieldErrors) Err() error {
	if len(fe) == 0 {
		return nil
	}
	return fe
}
