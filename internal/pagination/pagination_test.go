package pagination_test

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/pagination"
)

// wantFieldError fails t unless err is a *errs.FieldError for field that
// unwraps to errs.ErrInvalid.
func wantFieldError(t *testing.T, err error, field string) {
	t.Helper()
	if !errors.Is(err, errs.ErrInvalid) {
		t.Fatalf("error = %v, want one wrapping errs.ErrInvalid", err)
	}
	var fe *errs.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error = %v (%T), want a *errs.FieldError", err, err)
	}
	if fe.Field != field {
		t.Errorf("FieldError.Field = %q, want %q", fe.Field, field)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cursor, limit string
		want          pagination.Page
	}{
		{"", "", pagination.Page{Limit: pagination.DefaultLimit}},
		{"abc", "", pagination.Page{Cursor: "abc", Limit: pagination.DefaultLimit}},
		{"", "1", pagination.Page{Limit: 1}},
		{"xyz", "10", pagination.Page{Cursor: "xyz", Limit: 10}},
		{"", "200", pagination.Page{Limit: pagination.MaxLimit}},
	}
	for _, tt := range tests {
		got, err := pagination.Parse(tt.cursor, tt.limit)
		if err != nil {
			t.Errorf("Parse(%q, %q): %v", tt.cursor, tt.limit, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Parse(%q, %q) (-want +got):\n%s", tt.cursor, tt.limit, diff)
		}
	}
}

func TestParseRejectsBadLimit(t *testing.T) {
	t.Parallel()
	for _, limit := range []string{"0", "-1", "201", "1000000", "x", "1.5", " 5", "5 ", "0x10"} {
		t.Run(limit, func(t *testing.T) {
			t.Parallel()
			_, err := pagination.Parse("", limit)
			wantFieldError(t, err, "limit")
		})
	}
}

func TestSize(t *testing.T) {
	t.Parallel()
	tests := []struct{ limit, want int }{
		{0, pagination.DefaultLimit},
		{-3, pagination.DefaultLimit},
		{1, 1},
		{7, 7},
		{pagination.MaxLimit, pagination.MaxLimit},
		{pagination.MaxLimit + 1, pagination.MaxLimit},
		{1 << 30, pagination.MaxLimit},
	}
	for _, tt := range tests {
		if got := (pagination.Page{Limit: tt.limit}).Size(); got != tt.want {
			t.Errorf("Page{Limit: %d}.Size() = %d, want %d", tt.limit, got, tt.want)
		}
	}
}

type key struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, in := range []key{
		{},
		{ID: 1, Name: "a"},
		{ID: 1<<62 + 3, Name: "weird/näme \"quoted\" +=?&"},
		{ID: -7},
	} {
		cursor := pagination.Encode(in)
		var out key
		ok, err := pagination.Page{Cursor: cursor}.Decode(&out)
		if err != nil || !ok {
			t.Errorf("Decode(Encode(%+v)) = %v, %v; want true, nil", in, ok, err)
			continue
		}
		if diff := cmp.Diff(in, out); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
		// The cursor goes into URLs as is.
		if _, err := base64.RawURLEncoding.DecodeString(cursor); err != nil {
			t.Errorf("cursor %q is not unpadded base64url: %v", cursor, err)
		}
	}
}

func TestDecodeEmptyCursorLeavesKey(t *testing.T) {
	t.Parallel()
	k := key{ID: 42, Name: "kept"}
	ok, err := pagination.Page{}.Decode(&k)
	if err != nil || ok {
		t.Fatalf("Decode of empty cursor = %v, %v; want false, nil", ok, err)
	}
	if diff := cmp.Diff(key{ID: 42, Name: "kept"}, k); diff != "" {
		t.Errorf("key changed (-want +got):\n%s", diff)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"not base64":             "!!!not a cursor!!!",
		"padded std base64":      base64.StdEncoding.EncodeToString([]byte(`{"id":1}`)),
		"base64 of non-JSON":     base64.RawURLEncoding.EncodeToString([]byte("hello")),
		"JSON of another shape":  pagination.Encode("a string"),
		"JSON with a wrong type": pagination.Encode(map[string]string{"id": "seven"}),
		"truncated JSON":         base64.RawURLEncoding.EncodeToString([]byte(`{"id":1`)),
	}
	for name, cursor := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var k key
			ok, err := pagination.Page{Cursor: cursor}.Decode(&k)
			if ok {
				t.Errorf("Decode(%q) reported a position", cursor)
			}
			wantFieldError(t, err, "cursor")
		})
	}
}

func TestTrim(t *testing.T) {
	t.Parallel()
	idKey := func(n int) any { return key{ID: int64(n)} }
	tests := []struct {
		name      string
		items     []int
		limit     int
		wantItems []int
		wantNext  *key // nil: no next page
	}{
		{"empty", nil, 3, nil, nil},
		{"fewer than a page", []int{9, 8}, 3, []int{9, 8}, nil},
		{"exactly a page", []int{9, 8, 7}, 3, []int{9, 8, 7}, nil},
		{"one more than a page", []int{9, 8, 7, 6}, 3, []int{9, 8, 7}, &key{ID: 7}},
		{"limit 1 with more", []int{5, 4}, 1, []int{5}, &key{ID: 5}},
		{"default limit", make([]int, pagination.DefaultLimit), 0, make([]int, pagination.DefaultLimit), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := pagination.Page{Limit: tt.limit}
			got, next := pagination.Trim(tt.items, p, idKey)
			if diff := cmp.Diff(tt.wantItems, got); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
			if tt.wantNext == nil {
				if next != "" {
					t.Errorf("next = %q on the last page, want empty", next)
				}
				return
			}
			var k key
			if ok, err := (pagination.Page{Cursor: next}).Decode(&k); err != nil || !ok {
				t.Fatalf("next cursor %q does not decode: %v", next, err)
			}
			if diff := cmp.Diff(*tt.wantNext, k); diff != "" {
				t.Errorf("next cursor key (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTrimDefaultLimitWithMore(t *testing.T) {
	t.Parallel()
	items := make([]int, pagination.DefaultLimit+1)
	for i := range items {
		items[i] = i
	}
	got, next := pagination.Trim(items, pagination.Page{}, func(n int) any { return key{ID: int64(n)} })
	if len(got) != pagination.DefaultLimit {
		t.Errorf("len(items) = %d, want %d", len(got), pagination.DefaultLimit)
	}
	if want := pagination.Encode(key{ID: pagination.DefaultLimit - 1}); next != want {
		t.Errorf("next = %q, want %q", next, want)
	}
}
