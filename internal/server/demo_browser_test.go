package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/demo"
)

// screenshotDir is where journeys write screenshots of key pages:
// SLIPWAY_SCREENSHOT_DIR, else test-output/screenshots at the top of the
// repository (make screenshots refreshes docs/screenshots from a run).
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("SLIPWAY_SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "test-output", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// shoot writes a PNG of the viewport as name.png.
func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if len(png) < 1000 {
		t.Fatalf("screenshot %s: %d bytes", name, len(png))
	}
	p := filepath.Join(screenshotDir(t), name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// serving is a receiver that keeps the stage moves it is told of.
type serving struct {
	mu    sync.Mutex
	moves []string // "model vN stage"
	srv   *httptest.Server
}

func newServing(t *testing.T) *serving {
	s := &serving{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var ev struct {
			Type string
			Data struct {
				Model   string
				Stage   string
				Version int
			}
		}
		if json.Unmarshal(b, &ev) == nil && ev.Type == "stage.moved" {
			s.mu.Lock()
			s.moves = append(s.moves, fmt.Sprintf("%s v%d %s", ev.Data.Model, ev.Data.Version, ev.Data.Stage))
			s.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *serving) waitFor(t *testing.T, move string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		for _, m := range s.moves {
			if m == move {
				s.mu.Unlock()
				return
			}
		}
		s.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the serving layer was never told %q (told %v)", move, s.moves)
}

// seedDemo loads the demo story, its webhook endpoint pointed at hookURL.
func (e *env) seedDemo(hookURL string) demo.Result {
	e.t.Helper()
	res, err := demo.Seed(context.Background(), e.svc, demo.Options{WebhookURL: hookURL})
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func signIn(name string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.WaitVisible(css(`[data-testid=login-name]`)),
		chromedp.SendKeys(css(`[data-testid=login-name]`), name),
		chromedp.SendKeys(css(`[data-testid=login-password]`), testPassword),
		chromedp.Click(css(`[data-testid=login-submit]`)),
	}
}

// The first-start journey on the demo story: the dashboard shows what
// waits, what runs and what is wrong; the admin opens the waiting review,
// sees champion against challenger with the regressed country, approves;
// the stage moves, the serving layer is told, the delivery is logged; the
// lineage of the new champion is browsed. Screenshots of each page are
// written for the README.
func TestBrowserJourneyDemo(t *testing.T) {
	e := newEnv(t, withWebhookDelivery)
	srv := newServing(t)
	res := e.seedDemo(srv.srv.URL + "/hooks")
	srv.waitFor(t, "session-recs v2 production")

	ctx, problems := newBrowser(t)
	do := stepper(t, ctx, problems)
	do("a laptop screen", chromedp.EmulateViewport(1366, 900))
	do("sign in; the dashboard", append(append([]chromedp.Action[chromedp.Void]{chromedp.Navigate(e.url + "/")}, signIn(userOf(auth.RoleAdmin))...),
		chromedp.WaitVisible(css(`[data-testid=dash-reviews]`)))...)
	review := fmt.Sprintf(`[data-testid=dash-review-%d]`, res.Pending)
	if got := text(t, ctx, review); !strings.Contains(got, "session-recs v4") || !strings.Contains(got, "production") || !strings.Contains(got, "replaces v2") {
		t.Errorf("waiting review on the dashboard: %q", got)
	}
	if got := text(t, ctx, `[data-testid=dash-prod-session-recs]`); !strings.Contains(got, "v2") || !strings.Contains(got, "HIT_RATE") || !strings.Contains(got, "0.231") {
		t.Errorf("production row: %q", got)
	}
	if got := text(t, ctx, `[data-testid=dash-prod-churn-scores]`); !strings.Contains(got, "batch_predictions") {
		t.Errorf("batch model row: %q", got)
	}
	if got := text(t, ctx, `[data-testid=dash-quality]`); !strings.Contains(got, "warehouse.analytics.sessions_train v1") || !strings.Contains(got, "sessions_drift") || !strings.Contains(got, "session-recs v2") {
		t.Errorf("quality panel: %q", got)
	}
	if got := text(t, ctx, `[data-testid=dash-moves]`); !strings.Contains(got, "ci-pipeline") || !strings.Contains(got, "staging") {
		t.Errorf("moves panel: %q", got)
	}
	if got := text(t, ctx, `[data-testid=dash-webhooks]`); !strings.Contains(got, "Every webhook endpoint is delivering") {
		t.Errorf("webhooks panel: %q", got)
	}
	if exact, err := chromedp.Run(ctx, chromedp.AttributeValue(css(review+` time`), "title")); err != nil || !strings.HasSuffix(exact.Value, "UTC") {
		t.Errorf("the time's exact title: %q %v", exact.Value, err)
	}
	shoot(t, ctx, "dashboard")

	do("the review queue, then the request",
		chromedp.Click(css(`[data-testid=nav-reviews]`)),
		chromedp.WaitVisible(css(`[data-testid=reviews-table]`)),
		chromedp.Click(css(fmt.Sprintf(`[data-testid=review-%d] [data-testid=review-link]`, res.Pending))),
		chromedp.WaitVisible(css(`[data-testid=metrics-table]`)),
	)
	if got := text(t, ctx, `[data-testid=champion-version]`); got != "v2" {
		t.Errorf("champion %q", got)
	}
	if got := text(t, ctx, `[data-testid=slices-HIT_RATE_BY_COUNTRY] [data-testid=slices-regressed]`); !strings.HasPrefix(got, "1 of 4 slices") {
		t.Errorf("country slices: %q", got)
	}
	if got := text(t, ctx, `[data-testid=metric-HIT_RATE]`); !strings.Contains(got, "0.247") || !strings.Contains(got, "0.231") {
		t.Errorf("HIT_RATE row: %q", got)
	}
	shoot(t, ctx, "promotion")

	do("approve",
		chromedp.SendKeys(css(`[data-testid=review-comment]`), "DE is within the holdout's noise; watch it in the A/B dashboard."),
		chromedp.Click(css(`[data-testid=review-approve]`)),
		chromedp.WaitVisible(css(`[data-testid=review-notice]`)),
	)
	if got := text(t, ctx, `[data-testid=promotion-status]`); got != "promoted" {
		t.Fatalf("status after approval %q", got)
	}
	srv.waitFor(t, "session-recs v4 production")

	do("the model page: production moved",
		chromedp.Navigate(e.url+"/models/session-recs"),
		chromedp.WaitVisible(css(`[data-testid=stage-production] [data-testid=stage-holder]`)),
	)
	if got := text(t, ctx, `[data-testid=stage-production] [data-testid=stage-holder]`); got != "v4" {
		t.Errorf("production holder %q", got)
	}
	if got := text(t, ctx, `[data-testid=stage-history] li:first-child`); !strings.Contains(got, "admin") {
		t.Errorf("latest move: %q", got)
	}
	shoot(t, ctx, "model")

	do("the delivery log shows the move delivered",
		chromedp.Navigate(fmt.Sprintf("%s/webhooks/%d?status=delivered", e.url, res.WebhookEndpoint)),
		chromedp.WaitVisible(css(`[data-testid=deliveries-table]`)),
	)
	if got := text(t, ctx, `[data-testid=deliveries-table] tbody`); !strings.Contains(got, "stage.moved") || !strings.Contains(got, "delivered") {
		t.Errorf("delivery log: %q", got)
	}

	do("what the October snapshot fed: two versions, one through the Metaflow steps",
		chromedp.EmulateViewport(1366, 520),
		chromedp.Navigate(e.url+"/lineage?node=dataset_version%3Awarehouse.analytics.sessions_train%2F2&direction=downstream&depth=4"),
		chromedp.WaitVisible(css(`#lineage-graph svg`)),
	)
	if got := text(t, ctx, `#lineage-graph`); !strings.Contains(got, "session-recs v3") || !strings.Contains(got, "session-recs v4") || !strings.Contains(got, "train") || !strings.Contains(got, "evaluate") {
		t.Errorf("lineage graph: %q", got)
	}
	shoot(t, ctx, "lineage")
	if p := problems(); len(p) > 0 {
		t.Errorf("browser problems: %v", p)
	}
}

// Without JavaScript, the pages that promise it still work: sign in is a
// form, the review is a form post that answers with the page, lineage
// switches are a GET form.
func TestBrowserWithoutJavaScript(t *testing.T) {
	e := newEnv(t)
	res := e.seedDemo("")
	ctx, problems := newBrowser(t)
	do := stepper(t, ctx, problems)
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	do("sign in", append([]chromedp.Action[chromedp.Void]{chromedp.Navigate(e.url + "/")}, append(signIn(userOf(auth.RoleAdmin)),
		chromedp.WaitVisible(css(`[data-testid=dash-reviews]`)))...)...)
	do("approve with a plain form post",
		chromedp.Navigate(fmt.Sprintf("%s/promotions/%d", e.url, res.Pending)),
		chromedp.WaitVisible(css(`[data-testid=review-form]`)),
		chromedp.Click(css(`[data-testid=review-approve]`)),
		chromedp.WaitVisible(css(`[data-testid=review-notice]`)),
	)
	if got := text(t, ctx, `[data-testid=promotion-status]`); got != "promoted" {
		t.Fatalf("status after approval without JavaScript %q", got)
	}
	do("lineage switches by a GET form",
		chromedp.Navigate(e.url+"/lineage?node=model_version%3Asession-recs%2F4&direction=upstream&depth=1"),
		chromedp.WaitVisible(css(`[data-testid=lineage-form]`)),
		chromedp.SetValue(css(`[data-testid=lineage-direction]`), "downstream"),
		chromedp.Submit(css(`[data-testid=lineage-form]`)),
		chromedp.WaitVisible(css(`#lineage-graph`)),
	)
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !strings.Contains(loc, "direction=downstream") {
		t.Errorf("after the switch: %s", loc)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("browser problems: %v", p)
	}
}
