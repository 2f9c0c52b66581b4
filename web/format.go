package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/slipway-ml/slipway/internal/errs"
)

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func formatOptTime(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return formatTime(*t)
}

func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return "—"
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "Error"
}

// truncate cuts s to at most n bytes, on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// tagLines writes tags one key=value per line, for a textarea.
func tagLines(t map[string]string) string {
	lines := make([]string, 0, len(t))
	for k, v := range t {
		lines = append(lines, k+"="+v)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// parseTagLines reads what tagLines wrote (and people typed).
func parseTagLines(s string) (map[string]string, error) {
	tags := map[string]string{}
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if _, dup := tags[k]; dup {
			return nil, errs.Invalid("tags", "line %d repeats the key %q", i+1, k)
		}
		tags[k] = strings.TrimSpace(v)
	}
	return tags, nil
}
