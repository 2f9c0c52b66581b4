package web

import (
	"strings"

	"github.com/a-h/templ"

	"github.com/slipway-ml/slipway/internal/validate"
)

// fieldErrors are a form's problems by the name of the field each is about,
// to show next to that field (the alert above the form says them all). The
// zero value has none.
type fieldErrors struct {
	form string // prefixes element ids: two forms of a page may share field names
	msgs map[string]string
}

// fieldErrorsOf sorts err's field errors by form field; "tags.team" is
// about the field "tags".
func fieldErrorsOf(form string, err error) fieldErrors {
	fe := fieldErrors{form: form, msgs: map[string]string{}}
	for _, e := range validate.Flatten(err) {
		name, msg := e.Field, e.Rule
		if i := strings.IndexAny(name, ".["); i > 0 {
			name, msg = name[:i], e.Error()
		}
		if _, seen := fe.msgs[name]; !seen {
			fe.msgs[name] = msg
		}
	}
	return fe
}

func (fe fieldErrors) msg(field string) string { return fe.msgs[field] }

func (fe fieldErrors) id(field string) string { return fe.form + "-" + field + "-error" }

// attrs marks the control of field invalid and described by its message.
func (fe fieldErrors) attrs(field string) templ.Attributes {
	if fe.msgs[field] == "" {
		return nil
	}
	return templ.Attributes{"aria-invalid": "true", "aria-describedby": fe.id(field)}
}
