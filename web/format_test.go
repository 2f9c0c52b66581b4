package web

import (
	"testing"
	"time"
)

func TestAge(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		ago  time.Duration
		want string
	}{
		{0, "just now"},
		{59 * time.Second, "just now"},
		{-3 * time.Second, "just now"}, // clocks a little apart
		{5 * time.Minute, "5 min ago"},
		{3 * time.Hour, "3 h ago"},
		{47 * time.Hour, "47 h ago"},
		{72 * time.Hour, "3 days ago"},
		{-30 * time.Second, "in 1 min"},
		{-20 * time.Minute, "in 20 min"},
		{-90 * 24 * time.Hour, "in 90 days"},
	}
	for _, tt := range tests {
		if got := age(now, now.Add(-tt.ago)); got != tt.want {
			t.Errorf("age(now, now-%v) = %q, want %q", tt.ago, got, tt.want)
		}
	}
}
