package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/registry"
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

// humanBytes writes a size in binary units, e.g. 1.5 GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// age writes how long ago t was, or how soon it will be, coarsely.
func age(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < -5*time.Second:
		return "in " + span(-d)
	case d < time.Minute:
		return "just now"
	}
	return span(d) + " ago"
}

// span writes a duration in the coarsest unit that keeps it readable.
func span(d time.Duration) string {
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%d min", max(1, int(d.Minutes())))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// ifSet is then when cond is not empty, "" otherwise: a link to a page
// that exists only when there is a cursor.
func ifSet(cond, then string) string {
	if cond == "" {
		return ""
	}
	return then
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// artifactURL is the UI's download link of an artifact (a session, not a
// token, authorises it).
func artifactURL(v registry.Version, path string) string {
	return fmt.Sprintf("/models/%s/versions/%d/artifacts/%s", v.Model, v.Version, (&url.URL{Path: path}).EscapedPath())
}
