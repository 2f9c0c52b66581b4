// Package pagination implements the keyset pagination every list of the API
// uses: an opaque cursor that encodes the sort key of the last item returned,
// and a bounded page size. OFFSET is never used: its cost grows with depth.
package pagination

import (
	"encoding/base64"
	"encoding/json"
	"strconv"

	"github.com/slipway-ml/slipway/internal/errs"
)

const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// Page is a request for one page: after the position in Cursor, at most
// Limit items.
type Page struct {
	Cursor string
	Limit  int
}

// Parse validates the raw ?cursor= and ?limit= values.
func Parse(cursor, limit string) (Page, error) {
	p := Page{Cursor: cursor, Limit: DefaultLimit}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 || n > MaxLimit {
			return p, errs.Invalid("limit", "must be an integer between 1 and %d", MaxLimit)
		}
		p.Limit = n
	}
	return p, nil
}

// Size returns the page size, defaulted and capped.
func (p Page) Size() int {
	if p.Limit < 1 {
		return DefaultLimit
	}
	return min(p.Limit, MaxLimit)
}

// Decode reads the cursor into key. An empty cursor leaves key untouched and
// returns false.
func (p Page) Decode(key any) (bool, error) {
	if p.Cursor == "" {
		return false, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(p.Cursor)
	if err != nil || json.Unmarshal(b, key) != nil {
		return false, errs.Invalid("cursor", "is not a cursor this list returned")
	}
	return true, nil
}

// Encode makes the opaque cursor for key.
func Encode(key any) string {
	b, err := json.Marshal(key)
	if err != nil {
		panic(err) // keys are plain structs of strings and numbers
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Trim cuts a result fetched with Size()+1 rows to the page size and returns
// the cursor for the next page ("" on the last page).
func Trim[T any](items []T, p Page, key func(T) any) ([]T, string) {
	if len(items) <= p.Size() {
		return items, ""
	}
	items = items[:p.Size()]
	return items, Encode(key(items[len(items)-1]))
}
