package web

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/a-h/templ"

	"github.com/slipway-ml/slipway/internal/evalreport"
	"github.com/slipway-ml/slipway/internal/promotion"
)

// numText writes a metric value for reading: six significant digits, or
// NaN/Infinity, or a dash when absent.
func numText(f *float64) string {
	if f == nil {
		return "—"
	}
	return fnum(*f)
}

func fnum(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		b, _ := evalreport.Number(f).MarshalJSON()
		return strings.Trim(string(b), `"`)
	}
	return strconv.FormatFloat(f, 'g', 6, 64)
}

func numPtr(n *evalreport.Number) string {
	if n == nil {
		return "—"
	}
	return fnum(float64(*n))
}

func deltaText(m promotion.MetricRow) string {
	d, ok := m.Delta()
	if !ok {
		return ""
	}
	if d >= 0 {
		return "+" + fnum(d)
	}
	return fnum(d)
}

// verdictClass colours a delta: better, worse, same, or neutral when the
// direction is unknown.
func verdictClass(v string) string {
	if v == "" {
		return "delta"
	}
	return "delta " + v
}

func statusBadge(status string) string {
	switch status {
	case promotion.StatusPromoted:
		return "badge ok"
	case promotion.StatusRejected:
		return "badge bad"
	case promotion.StatusPendingApproval:
		return "badge warn"
	}
	return "badge tag"
}

func ruleBadge(r promotion.RuleResult) (string, string) {
	switch {
	case r.Skipped:
		return "badge warn", "skipped"
	case r.Pending:
		return "badge warn", "waiting"
	case r.Passed:
		return "badge ok", "pass"
	}
	return "badge bad", "fail"
}

func comparedText(r promotion.RuleResult) string {
	if r.ComparedTo == nil {
		return "—"
	}
	return fmt.Sprintf("v%d: %s", r.ComparedTo.Version, numPtr(r.ComparedTo.Value))
}

func boolMark(b *bool) string {
	switch {
	case b == nil:
		return "—"
	case *b:
		return "passed"
	}
	return "failed"
}

func boolClass(b *bool) string {
	switch {
	case b == nil:
		return "muted"
	case *b:
		return "badge ok"
	}
	return "badge bad"
}

func versionLink(model string, v int) string { return fmt.Sprintf("/models/%s/versions/%d", model, v) }

func optVersion(v *int) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf("v%d", *v)
}

// sliceChart is a group of slices drawn as paired horizontal bars.
type sliceChart struct {
	Group  promotion.SliceGroup
	Width  float64
	Height float64
	Rows   []sliceBar
}

type sliceBar struct {
	Label          string
	Y              float64
	CandX, CandW   float64 // the candidate's bar
	ChampX, ChampW float64 // the champion's bar (0 wide when absent)
	Cand, Champ    string
	Regressed      bool
	HasChamp       bool
}

const (
	sliceLabelW = 170.0
	sliceBarW   = 320.0
	sliceRowH   = 30.0
)

// newSliceChart scales a group's values to bars from a common zero;
// negative values extend left of it.
func newSliceChart(g promotion.SliceGroup) sliceChart {
	lo, hi := 0.0, 0.0
	for _, r := range g.Rows {
		for _, v := range []*float64{r.Candidate, r.Champion} {
			if v != nil && !math.IsNaN(*v) && !math.IsInf(*v, 0) {
				lo, hi = math.Min(lo, *v), math.Max(hi, *v)
			}
		}
	}
	span := hi - lo
	if span == 0 {
		span = 1
	}
	zero := sliceLabelW + (-lo)/span*sliceBarW
	bar := func(v *float64) (float64, float64) {
		if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) {
			return zero, 0
		}
		w := math.Abs(*v) / span * sliceBarW
		if *v < 0 {
			return zero - w, w
		}
		return zero, w
	}
	c := sliceChart{Group: g, Width: sliceLabelW + sliceBarW + 110}
	for i, r := range g.Rows {
		b := sliceBar{Label: truncate(strings.TrimPrefix(r.Path, "."), 26), Y: float64(i) * sliceRowH, Cand: numText(r.Candidate), Champ: numText(r.Champion),
			Regressed: r.Verdict == "worse", HasChamp: r.Champion != nil}
		b.CandX, b.CandW = bar(r.Candidate)
		b.ChampX, b.ChampW = bar(r.Champion)
		c.Rows = append(c.Rows, b)
	}
	c.Height = float64(len(g.Rows)) * sliceRowH
	return c
}

// summary says what the chart shows, for a screen reader (and on hover).
func (c sliceChart) summary() string {
	parts := make([]string, 0, len(c.Rows))
	for _, r := range c.Rows {
		p := r.Label + ": candidate " + r.Cand
		if r.HasChamp {
			p += ", champion " + r.Champ
		}
		if r.Regressed {
			p += " (worse)"
		}
		parts = append(parts, p)
	}
	return c.Group.Test + " by slice. " + strings.Join(parts, "; ")
}

// summary says what the chart shows, for a screen reader (and on hover).
func (c trendChart) summary() string {
	if len(c.Dots) == 0 {
		return c.Metric + " across versions: no finite value"
	}
	first, last := c.Dots[0], c.Dots[len(c.Dots)-1]
	return fmt.Sprintf("%s across %d versions, from %s (v%d) to %s (v%d); lowest %s, highest %s",
		c.Metric, len(c.Dots), first.Value, first.Version, last.Value, last.Version, c.Min, c.Max)
}

// policyEditorAttrs points the policy editor at the list of its problems.
func policyEditorAttrs(invalid bool) templ.Attributes {
	if !invalid {
		return nil
	}
	return templ.Attributes{"aria-invalid": "true", "aria-describedby": "policy-errors"}
}

// trendChart is a metric across versions, as a polyline.
type trendChart struct {
	Metric, Suite string
	Width, Height float64
	Points        string
	Dots          []trendDot
	Min, Max      string
}

type trendDot struct {
	X, Y    float64
	Version int
	Value   string
	Holder  bool // holds production now
}

func newTrendChart(metric, suite string, pts []promotion.TrendPoint, production *int) trendChart {
	c := trendChart{Metric: metric, Suite: suite, Width: 560, Height: 160}
	var finite []promotion.TrendPoint
	for _, p := range pts {
		if !math.IsNaN(p.Value) && !math.IsInf(p.Value, 0) {
			finite = append(finite, p)
		}
	}
	if len(finite) == 0 {
		return c
	}
	lo, hi := finite[0].Value, finite[0].Value
	for _, p := range finite {
		lo, hi = math.Min(lo, p.Value), math.Max(hi, p.Value)
	}
	if hi == lo {
		hi, lo = hi+1, lo-1
	}
	const padX, padY = 40.0, 18.0
	step := 0.0
	if len(finite) > 1 {
		step = (c.Width - 2*padX) / float64(len(finite)-1)
	}
	var pts2 []string
	for i, p := range finite {
		x := padX + float64(i)*step
		y := padY + (hi-p.Value)/(hi-lo)*(c.Height-2*padY)
		pts2 = append(pts2, fmt.Sprintf("%.1f,%.1f", x, y))
		c.Dots = append(c.Dots, trendDot{X: x, Y: y, Version: p.Version, Value: fnum(p.Value), Holder: production != nil && *production == p.Version})
	}
	c.Points = strings.Join(pts2, " ")
	c.Min, c.Max = fnum(lo), fnum(hi)
	return c
}
