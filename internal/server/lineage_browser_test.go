package server_test

import (
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/slipway-ml/slipway/internal/auth"
)

// seedPipeline registers, through the API, the story of the lineage
// acceptance: train (warehouse query) and test (object) datasets, a run
// reading both and producing ranker v1, a failing quality check on train.
func seedPipeline(t *testing.T, e *env) {
	t.Helper()
	c := e.as(auth.RoleContributor)
	for _, step := range []struct {
		path string
		body any
	}{
		{"/api/v1/datasets", map[string]any{"name": "sessions-train"}},
		{"/api/v1/datasets", map[string]any{"name": "sessions-test"}},
		{"/api/v1/datasets/sessions-train/versions", map[string]any{"type": "warehouse_query",
			"reference": map[string]any{"warehouse": "snowflake://acme", "sql": "select * from sessions where day < '2026-11-01'", "as_of": "2026-11-01T00:00:00Z"},
			"schema":    []map[string]any{{"name": "session_id", "type": "VARCHAR"}, {"name": "sku", "type": "VARCHAR"}}, "row_count": 1843221}},
		{"/api/v1/datasets/sessions-train/versions", map[string]any{"type": "warehouse_query",
			"reference": map[string]any{"warehouse": "snowflake://acme", "sql": "select * from sessions where day < '2026-11-15'", "as_of": "2026-11-15T00:00:00Z"},
			"schema":    []map[string]any{{"name": "session_id", "type": "VARCHAR"}, {"name": "sku", "type": "ARRAY"}, {"name": "ts", "type": "TIMESTAMP"}}, "row_count": 2000000}},
		{"/api/v1/datasets/sessions-test/versions", map[string]any{"type": "object",
			"reference": map[string]any{"uri": "s3://acme-ml/sessions/test.parquet"}, "sha256": strings.Repeat("ab", 32)}},
		{"/api/v1/models", map[string]any{"name": "ranker"}},
	} {
		if res := c.Send("POST", step.path, step.body); res.Status != 201 {
			t.Fatalf("POST %s: %d %s", step.path, res.Status, res.Body)
		}
	}
	if res := register(c, "ranker", `{"source":{"git_commit":"abcdef1234567"}}`, file{"model.bin", strings.NewReader("weights")}); res.Status != 201 {
		t.Fatalf("register: %d %s", res.Status, res.Body)
	}
	if res := c.Send("POST", "/api/v1/runs", map[string]any{"orchestrator": "metaflow", "external_id": "SessionRecFlow/1842", "name": "SessionRecFlow",
		"status": "completed", "git": map[string]any{"repo": "git@example.com:acme/rec.git", "commit": "0123456789abcdef"},
		"inputs":  []map[string]any{{"dataset": "sessions-train", "version": 1}, {"dataset": "sessions-test", "version": 1}},
		"outputs": []map[string]any{{"model": "ranker", "version": 1}}}); res.Status != 201 {
		t.Fatalf("run: %d %s", res.Status, res.Body)
	}
	if res := c.Send("POST", "/api/v1/datasets/sessions-train/versions/1/quality", map[string]any{"suite": "sessions.critical", "producer": "great_expectations",
		"passed": false, "failed_checks": []map[string]any{{"name": "expect_column_values_to_not_be_null", "column": "session_id"}}}); res.Status != 201 {
		t.Fatalf("quality: %d %s", res.Status, res.Body)
	}
}

func TestBrowserJourneyLineage(t *testing.T) {
	e := newEnv(t)
	seedPipeline(t, e)
	ctx, problems := newBrowser(t)
	do := stepper(t, ctx, problems)
	do("sign in and open the model version",
		chromedp.Navigate(e.url+"/login"),
		chromedp.WaitVisible(css(`[data-testid=login-name]`)),
		chromedp.SendKeys(css(`[data-testid=login-name]`), userOf(auth.RoleViewer)),
		chromedp.SendKeys(css(`[data-testid=login-password]`), testPassword),
		chromedp.Click(css(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(css(`[data-testid=nav-models]`)),
		chromedp.Navigate(e.url+"/models/ranker/versions/1"),
		chromedp.WaitVisible(css(`[data-testid=lineage-svg]`)),
	)
	// The panel draws the upstream graph: the run and both datasets, each
	// node a link to its page, the failing dataset marked.
	nodes, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('[data-testid=lineage-panel] svg a')).map(a => a.getAttribute('data-testid')).sort()`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"node-dataset_version:sessions-test/1", "node-dataset_version:sessions-train/1", "node-model_version:ranker/1", "node-run:1"}
	if strings.Join(nodes, ",") != strings.Join(want, ",") {
		t.Errorf("panel nodes = %v, want %v", nodes, want)
	}
	if bad, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('svg .node-bad').length`)); err != nil || bad != 1 {
		t.Errorf("nodes marked bad = %d (%v), want 1 (the train set failed its checks)", bad, err)
	}
	do("click the train dataset node",
		chromedp.Click(css(`[data-testid="node-dataset_version:sessions-train/1"]`)),
		chromedp.WaitVisible(css(`[data-testid=dataset-version-title]`)),
	)
	if got := text(t, ctx, `[data-testid=dataset-version-title]`); got != "sessions-train v1" {
		t.Errorf("dataset version title = %q", got)
	}
	if got := text(t, ctx, `[data-testid=quality-badge]`); got != "quality failed" {
		t.Errorf("quality badge = %q", got)
	}
	if got := text(t, ctx, `[data-testid=impact-ranker-1]`); !strings.HasPrefix(got, "ranker v1") {
		t.Errorf("impact = %q", got)
	}
	do("open the explorer, then switch direction and depth (htmx)",
		chromedp.Click(css(`[data-testid=lineage-explore]`)),
		chromedp.WaitVisible(css(`[data-testid=lineage-form]`)),
		htmxReady,
		// chromedp.SetValue fires change on each control, and each change
		// is a request whose response may land after the test has looked:
		// set the three controls quietly, fire one change, and wait for the
		// summary of that answer.
		chromedp.Evaluate[chromedp.Void](`(() => {
			const f = document.querySelector('[data-testid=lineage-form]');
			f.elements.node.value = 'model_version:ranker/1';
			f.elements.direction.value = 'upstream';
			f.elements.depth.value = '1';
			f.elements.depth.dispatchEvent(new Event('change', {bubbles: true}));
		})()`),
		waitFor(`(document.querySelector('[data-testid=lineage-summary]')?.textContent ?? '').includes('upstream to depth 1') && location.search.includes('depth=1')`),
	)
	if got := text(t, ctx, `[data-testid=lineage-summary]`); !strings.HasPrefix(got, "2 nodes, 1 edges, upstream to depth 1") {
		t.Errorf("summary after the switch = %q", got)
	}
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.Contains(loc, "depth=1") {
		t.Errorf("the explorer's URL follows its controls: %q (%v)", loc, err)
	}
	do("a bad node is said on the page",
		chromedp.SetValue(css(`[data-testid=lineage-node]`), "table:x"),
		chromedp.WaitVisible(css(`[data-testid=lineage-error]`)),
	)
	do("dataset page and version diff",
		chromedp.Navigate(e.url+"/datasets/sessions-train"),
		chromedp.WaitVisible(css(`[data-testid=diff-2]`)),
		chromedp.Click(css(`[data-testid=diff-2]`)),
		chromedp.WaitVisible(css(`[data-testid=diff-columns]`)),
		chromedp.WaitVisible(css(`[data-testid=added-ts]`)),
		chromedp.WaitVisible(css(`[data-testid=retyped-sku]`)),
	)
	if got := text(t, ctx, `[data-testid=diff-rows]`); !strings.Contains(got, "+156779") {
		t.Errorf("row delta = %q", got)
	}
	if dir := os.Getenv("SLIPWAY_TEST_SCREENSHOTS"); dir != "" {
		do("screenshot", chromedp.Navigate(e.url+"/lineage?node=dataset_version%3Asessions-train%2F1&direction=both&depth=5"),
			chromedp.WaitVisible(css(`[data-testid=lineage-svg]`)))
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			os.WriteFile(dir+"/lineage.png", png, 0o644)
		}
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("the browser reported problems: %v", p)
	}
}
