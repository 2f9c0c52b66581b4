// Package validate holds the input rules shared by Slipway's domain
// packages: names, free text, tags, links and commit ids. Each rule reports
// a field error that the HTTP layer answers as 400 with the rule.
package validate

import (
	"errors"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/slipway-ml/slipway/internal/errs"
)

// NamePattern is the grammar of model and dataset names. Upper case,
// spaces and look-alike characters are outside it, so two names that look
// the same are the same name.
const NamePattern = `^[a-z0-9][a-z0-9._-]{0,127}$`

var nameRE = regexp.MustCompile(NamePattern)

// Name checks a model or dataset name against the grammar.
func Name(field, name string) error {
	if !nameRE.MatchString(name) {
		return errs.Invalid(field, "must match %s: 1 to 128 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit", NamePattern)
	}
	return nil
}

var tagKeyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$`)

const (
	maxTags        = 50
	maxTagValueLen = 256
)

// TagKey reports whether k is a valid tag key.
func TagKey(k string) bool { return tagKeyRE.MatchString(k) }

// Tags checks the keys and values of free labels and their number.
func Tags(field string, t map[string]string, fe *errs.FieldErrors) {
	if len(t) > maxTags {
		fe.Add(field, "must hold at most %d tags", maxTags)
		return
	}
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := t[k]
		if !tagKeyRE.MatchString(k) {
			fe.Add(field+"."+k, "tag keys must match ^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")
		} else if !utf8.ValidString(v) || len(v) > maxTagValueLen || strings.ContainsFunc(v, IsControl) {
			fe.Add(field+"."+k, "tag values must be at most %d bytes of printable UTF-8", maxTagValueLen)
		}
	}
}

// IsControl reports a C0 or C1 control character.
func IsControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// Text checks a free text field: UTF-8, at most max bytes, no control
// characters but newlines and tabs when multiline.
func Text(field, s string, max int, multiline bool, fe *errs.FieldErrors) {
	bad := func(r rune) bool {
		if multiline && (r == '\n' || r == '\r' || r == '\t') {
			return false
		}
		return IsControl(r)
	}
	if !utf8.ValidString(s) || len(s) > max || strings.ContainsFunc(s, bad) {
		fe.Add(field, "must be at most %d bytes of printable UTF-8", max)
	}
}

// LinkURL accepts absolute http(s) URLs only: javascript:, data: and the
// like would run in the browser of whoever clicks the link.
func LinkURL(s string) error {
	if len(s) > 2048 {
		return errors.New("must be at most 2048 bytes")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsFunc(s, IsControl) {
		return errors.New("must be an absolute http:// or https:// URL")
	}
	return nil
}

var commitRE = regexp.MustCompile(`^[0-9a-f]{7,64}$`)

// Commit checks a git commit id: lower-case hex, 7 to 64 characters.
func Commit(field, s string, fe *errs.FieldErrors) {
	if s != "" && !commitRE.MatchString(s) {
		fe.Add(field, "must be a lower-case hex commit id of 7 to 64 characters")
	}
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// SHA256 reports whether s is a lower-case hex SHA-256.
func SHA256(s string) bool { return sha256RE.MatchString(s) }

// Flatten returns the field errors err carries, nil if none.
func Flatten(err error) errs.FieldErrors {
	var fes errs.FieldErrors
	var fe *errs.FieldError
	switch {
	case errors.As(err, &fes):
		return fes
	case errors.As(err, &fe):
		return errs.FieldErrors{fe}
	}
	return nil
}
