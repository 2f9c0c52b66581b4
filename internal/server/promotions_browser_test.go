package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/slipway-ml/slipway/internal/api/apitest"
	"github.com/slipway-ml/slipway/internal/auth"
)

// seedReview builds, through the API, a review that waits: session-recs v1
// holds production; v2 is better overall but worse for one country, and
// its production request waits for one approval.
func seedReview(t *testing.T, e *env) (requestID int64) {
	t.Helper()
	ci, admin := e.as(auth.RoleContributor), e.as(auth.RoleAdmin)
	must := func(res *apitest.Response, want int, what string) *apitest.Response {
		t.Helper()
		if res.Status != want {
			t.Fatalf("%s: %d %s", what, res.Status, res.Body)
		}
		return res
	}
	for _, name := range []string{"sessions-train", "sessions-test"} {
		must(ci.Send("POST", "/api/v1/datasets", map[string]any{"name": name}), 201, "dataset")
		must(ci.Send("POST", "/api/v1/datasets/"+name+"/versions", map[string]any{"type": "object",
			"reference": map[string]any{"uri": "s3://acme-ml/" + name + ".parquet"}, "sha256": strings.Repeat("ab", 32)}), 201, "dataset version")
	}
	must(ci.Send("POST", "/api/v1/models", map[string]any{"name": "session-recs"}), 201, "model")
	// per-country miss rates: lower is better
	must(admin.Send("PUT", "/api/v1/models/session-recs/stages/production/policy", map[string]any{"comment": "launch",
		"directions": map[string]any{"MRED_COUNTRY": "lower_is_better"}, "rules": []map[string]any{
			{"kind": "required_suite", "suite": "reclist"},
			{"kind": "threshold", "suite": "reclist", "metric": "HIT_RATE", "op": ">=", "value": 0.015},
			{"kind": "champion", "suite": "reclist", "metric": "HIT_RATE", "direction": "higher_is_better", "tolerance": 0.02, "tolerance_type": "relative"},
			{"kind": "champion", "suite": "reclist", "metric": "MRED_COUNTRY.mred", "direction": "higher_is_better", "tolerance": 0.001},
			{"kind": "approvals", "count": 1},
		}}), 200, "policy")
	report := func(v int, hitRate, mred, de float64) {
		body := fmt.Sprintf(`{"metadata": {"model_name": "SessionRecs"}, "data": [
			{"name": "HIT_RATE", "description": "", "result": %v, "display_type": "CHART_TYPE.SCALAR"},
			{"name": "MRED_COUNTRY", "description": "", "result": {"mred": %v, "US": 0.781, "DE": %v, "UK": 0.779}, "display_type": "CHART_TYPE.BARS"}]}`, hitRate, mred, de)
		must(ci.Do(apitest.Request{Method: "POST", Path: fmt.Sprintf("/api/v1/models/session-recs/versions/%d/evaluations?suite=reclist&evaluation_dataset=sessions-test&evaluation_dataset_version=1", v),
			Body: body}), 201, "report")
	}
	for v, figures := range [][3]float64{{0.210, -0.0061, 0.792}, {0.231, -0.0065, 0.853}} {
		must(register(ci, "session-recs", `{"training_data":[{"dataset":"sessions-train","version":1}]}`, file{"model.bin", strings.NewReader(fmt.Sprint(v))}), 201, "register")
		report(v+1, figures[0], figures[1], figures[2])
	}
	var p struct {
		ID       int64  `json:"id"`
		Decision string `json:"decision"`
	}
	must(ci.Send("POST", "/api/v1/models/session-recs/versions/1/promotions", map[string]any{"stage": "production", "reason": "first launch"}), 201, "request v1").Decode(t, &p)
	must(e.as(auth.RoleReviewer).Send("POST", fmt.Sprintf("/api/v1/promotions/%d/reviews", p.ID), map[string]any{"decision": "approve"}), 200, "approve v1")
	must(ci.Send("POST", "/api/v1/models/session-recs/versions/2/promotions", map[string]any{"stage": "production", "reason": "weekly retrain: +10% hit rate"}), 201, "request v2").Decode(t, &p)
	if p.Decision != "pending_approval" {
		t.Fatalf("v2's request: %s, want pending_approval", p.Decision)
	}
	return p.ID
}

func TestBrowserJourneyReview(t *testing.T) {
	e := newEnv(t)
	id := seedReview(t, e)
	ctx, problems := newBrowser(t)
	do := stepper(t, ctx, problems)
	do("sign in as a reviewer and open the queue",
		chromedp.Navigate(e.url+"/login"),
		chromedp.WaitVisible(css(`[data-testid=login-name]`)),
		chromedp.SendKeys(css(`[data-testid=login-name]`), userOf(auth.RoleReviewer)),
		chromedp.SendKeys(css(`[data-testid=login-password]`), testPassword),
		chromedp.Click(css(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(css(`[data-testid=nav-reviews]`)),
		chromedp.Click(css(`[data-testid=nav-reviews]`)),
		chromedp.WaitVisible(css(fmt.Sprintf(`[data-testid=review-%d]`, id))),
	)
	do("open the request: the page is the comparison",
		chromedp.Click(css(fmt.Sprintf(`[data-testid=review-%d] [data-testid=review-link]`, id))),
		chromedp.WaitVisible(css(`[data-testid=metrics-table]`)),
	)
	if got := text(t, ctx, `[data-testid=champion-version]`); got != "v1" {
		t.Errorf("champion shown: %q, want v1", got)
	}
	if v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid="metric-HIT_RATE"] [data-verdict]').dataset.verdict`)); err != nil || v != "better" {
		t.Errorf("HIT_RATE delta verdict: %q (%v), want better", v, err)
	}
	// the aggregate improved, one country did not: the slices say so (the
	// miss-rate equality difference, slightly worse within its tolerance,
	// and Germany's miss rate)
	if got := text(t, ctx, `[data-testid=slices-regressed]`); !strings.Contains(got, "2 of 4") {
		t.Errorf("regressed slices: %q", got)
	}
	if got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('svg.slices .regressed .label')).map(e => e.textContent).sort()`)); err != nil || strings.Join(got, ",") != "DE,mred" {
		t.Errorf("slices marked regressed: %v (%v), want DE and mred", got, err)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=rules-table] tbody tr').length`)); err != nil || n != 5 {
		t.Errorf("rules shown: %d (%v), want 5", n, err)
	}
	if dir := os.Getenv("SLIPWAY_TEST_SCREENSHOTS"); dir != "" {
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			os.WriteFile(filepath.Join(dir, "promotion.png"), png, 0o644)
		}
	}
	do("approve with a comment",
		chromedp.SendKeys(css(`[data-testid=review-comment]`), "the DE drop is explained by the holiday"),
		chromedp.Click(css(`[data-testid=review-approve]`)),
		chromedp.WaitVisible(css(`[data-testid=review-notice]`)),
	)
	if got := text(t, ctx, `[data-testid=promotion-status]`); got != "promoted" {
		t.Errorf("status after the approval: %q", got)
	}
	do("the model page shows the new holder and the history",
		chromedp.Navigate(e.url+"/models/session-recs"),
		chromedp.WaitVisible(css(`[data-testid=stage-production] [data-testid=stage-holder]`)),
	)
	if got := text(t, ctx, `[data-testid=stage-production] [data-testid=stage-holder]`); got != "v2" {
		t.Errorf("production holder on the model page: %q", got)
	}
	if got := text(t, ctx, `[data-testid=stage-history]`); !strings.Contains(got, "v1 → v2") {
		t.Errorf("history: %q", got)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=trend-chart] circle').length`)); err != nil || n != 2 {
		t.Errorf("trend points: %d (%v), want 2", n, err)
	}
	for _, q := range []struct{ at, want string }{{"2020-01-01T00:00", "Nothing held production"}, {"2099-01-01T00:00", "production held v2"}} {
		do("what held production at "+q.at,
			chromedp.Navigate(e.url+"/models/session-recs?stage=production&at="+q.at),
			chromedp.WaitVisible(css(`[data-testid=holder-at-answer]`)),
		)
		if got := text(t, ctx, `[data-testid=holder-at-answer]`); !strings.Contains(got, q.want) {
			t.Errorf("at %s: %q, want %q", q.at, got, q.want)
		}
	}

	// the reviewer's own request: no form, and the reason
	rv := e.as(auth.RoleReviewer)
	var own struct {
		ID int64 `json:"id"`
	}
	res := rv.Send("POST", "/api/v1/models/session-recs/versions/1/promotions", map[string]any{"stage": "staging", "reason": "staging drill"})
	if res.Status != 201 {
		t.Fatalf("reviewer's request: %d %s", res.Status, res.Body)
	}
	res.Decode(t, &own)
	do("a reviewer cannot approve their own request",
		chromedp.Navigate(fmt.Sprintf("%s/promotions/%d", e.url, own.ID)),
		chromedp.WaitVisible(css(`[data-testid=review-not-allowed]`)),
	)
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=review-form]').length`)); err != nil || n != 0 {
		t.Errorf("review forms on the reviewer's own request: %d (%v)", n, err)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("browser problems: %v", p)
	}
}

func TestBrowserJourneyPolicyEditor(t *testing.T) {
	e := newEnv(t)
	if res := e.as(auth.RoleContributor).Send("POST", "/api/v1/models", map[string]any{"name": "session-recs"}); res.Status != 201 {
		t.Fatalf("model: %d %s", res.Status, res.Body)
	}
	ctx, problems := newBrowser(t)
	do := stepper(t, ctx, problems)
	do("sign in as an admin and add a stage",
		chromedp.Navigate(e.url+"/login"),
		chromedp.WaitVisible(css(`[data-testid=login-name]`)),
		chromedp.SendKeys(css(`[data-testid=login-name]`), userOf(auth.RoleAdmin)),
		chromedp.SendKeys(css(`[data-testid=login-password]`), testPassword),
		chromedp.Click(css(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(css(`[data-testid=nav-models]`)),
		chromedp.Navigate(e.url+"/models/session-recs"),
		chromedp.WaitVisible(css(`[data-testid=stage-production]`)),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid=stage-add]').closest('details').open = true`),
		chromedp.SendKeys(css(`[data-testid=stage-add-name]`), "canary"),
		chromedp.Submit(css(`[data-testid=stage-add-name]`)),
		chromedp.WaitVisible(css(`[data-testid=stage-canary]`)),
	)
	do("open production's policy: the default",
		chromedp.Click(css(`[data-testid=stage-production] [data-testid=stage-policy]`)),
		chromedp.WaitVisible(css(`[data-testid=policy-revision]`)),
	)
	if got := text(t, ctx, `[data-testid=policy-revision]`); got != "default" {
		t.Errorf("policy badge: %q, want default", got)
	}
	do("a broken rule is refused and named",
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid=policy-form]').closest('details').open = true`),
		chromedp.SetValue(css(`[data-testid=policy-editor]`), `[{"kind": "threshold", "metric": "HIT_RATE", "op": "=~", "value": 0.1}]`),
		chromedp.Click(css(`[data-testid=policy-save]`)),
		chromedp.WaitVisible(css(`[data-testid=policy-errors]`)),
	)
	if got := text(t, ctx, `[data-testid=policy-errors]`); !strings.Contains(got, "rules[0].op") {
		t.Errorf("errors shown: %q", got)
	}
	do("a good policy is saved as revision 1",
		chromedp.SetValue(css(`[data-testid=policy-editor]`), `[{"kind": "threshold", "suite": "reclist", "metric": "HIT_RATE", "op": ">=", "value": 0.015}, {"kind": "approvals", "count": 1}]`),
		chromedp.SendKeys(css(`[data-testid=policy-comment]`), "launch floor"),
		chromedp.Click(css(`[data-testid=policy-save]`)),
		chromedp.WaitVisible(css(`[data-testid=policy-notice]`)),
	)
	if got := text(t, ctx, `[data-testid=policy-rules]`); !strings.Contains(got, "HIT_RATE >= 0.015") {
		t.Errorf("rules shown: %q", got)
	}
	var p struct {
		Revision int `json:"revision"`
		Comment  string
	}
	e.as(auth.RoleViewer).Get("/api/v1/models/session-recs/stages/production/policy").Decode(t, &p)
	if p.Revision != 1 || p.Comment != "launch floor" {
		t.Errorf("the API reads revision %d %q", p.Revision, p.Comment)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("browser problems: %v", p)
	}
}
