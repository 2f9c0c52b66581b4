package audit_test

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/errs"
)

func TestParseFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		query string
		want  audit.Filter
	}{
		{"empty", "", audit.Filter{}},
		{"strings", "actor=alice&action=token.revoke&target_type=token&target_id=7",
			audit.Filter{Actor: "alice", Action: "token.revoke", TargetType: "token", TargetID: "7"}},
		{"RFC 3339", "since=2026-01-02T15:04:05Z&until=2026-01-03T00:00:00%2B02:00",
			audit.Filter{Since: time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC), Until: time.Date(2026, 1, 2, 22, 0, 0, 0, time.UTC)}},
		{"datetime-local is UTC", "since=2026-01-02T15:04",
			audit.Filter{Since: time.Date(2026, 1, 2, 15, 4, 0, 0, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := audit.ParseFilter(q)
			if err != nil {
				t.Fatalf("ParseFilter(%q): %v", tt.query, err)
			}
			// cmp compares time.Time with Equal: the instant, not the zone.
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseFilter(%q) (-want +got):\n%s", tt.query, diff)
			}
		})
	}
}

func TestParseFilterRejectsBadTimes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query string
		want  []string
	}{
		{"since=yesterday", []string{"since"}},
		{"until=2026-13-01T00:00:00Z", []string{"until"}},
		{"since=2026-01-02&until=1700000000", []string{"since", "until"}},
	}
	for _, tt := range tests {
		q, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		_, err = audit.ParseFilter(q)
		if !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("ParseFilter(%q) = %v, want ErrInvalid", tt.query, err)
			continue
		}
		var fes errs.FieldErrors
		if !errors.As(err, &fes) {
			t.Errorf("ParseFilter(%q) = %T, want errs.FieldErrors", tt.query, err)
			continue
		}
		var fields []string
		for _, fe := range fes {
			fields = append(fields, fe.Field)
		}
		if diff := cmp.Diff(tt.want, fields); diff != "" {
			t.Errorf("ParseFilter(%q) fields (-want +got):\n%s", tt.query, diff)
		}
	}
}
