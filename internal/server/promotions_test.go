package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-ml/slipway/internal/api/apitest"
	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/evaluation"
	"github.com/slipway-ml/slipway/internal/promotion"
)

// The HTTP story of evaluation reports, stages, policies and promotions.
// Every answer is checked against the OpenAPI document by apitest.

// --- helpers ---------------------------------------------------------------

// user creates a user with role and returns a client with a token of it.
func (e *env) user(t *testing.T, name string, role auth.Role) *apitest.Client {
	t.Helper()
	ctx := context.Background()
	if _, err := e.auth.CreateUser(ctx, auth.NewUser{Name: name, Role: role, Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	secret, _, err := e.auth.CreateToken(ctx, auth.NewToken{UserName: name, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return e.api.WithToken(secret)
}

// sample reads a RecList sample report (the same bytes as the product's
// samples/ directory).
func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../evalreport/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recListV2 is the RecList 2.x sample with HIT_RATE and MRED_COUNTRY.mred
// set to the given figures.
func recListV2(t *testing.T, hitRate, mred float64) []byte {
	t.Helper()
	s := string(sample(t, "reclist-v2-report.json"))
	for old, repl := range map[string]string{`"result": 0.2141`: fmt.Sprintf(`"result": %v`, hitRate), `"mred": -0.0061`: fmt.Sprintf(`"mred": %v`, mred)} {
		if strings.Count(s, old) != 1 {
			t.Fatalf("the RecList sample has changed: %q is not in it once", old)
		}
		s = strings.Replace(s, old, repl, 1)
	}
	return []byte(s)
}

func evalPath(model string, version int) string {
	return fmt.Sprintf("/api/v1/models/%s/versions/%d/evaluations", model, version)
}

// postReport sends a report body (the body is the report) described by
// query.
func postReport(c *apitest.Client, model string, version int, query string, body any, header http.Header) *apitest.Response {
	return c.Do(apitest.Request{Method: "POST", Path: evalPath(model, version) + "?" + query, Body: body, ContentType: "application/json", Header: header})
}

func attachReport(t *testing.T, c *apitest.Client, model string, version int, query string, body []byte) evaluation.Report {
	t.Helper()
	res := postReport(c, model, version, query, body, nil)
	wantStatus(t, fmt.Sprintf("report of %s/%d (%s)", model, version, query), res, http.StatusCreated)
	var r evaluation.Report
	res.Decode(t, &r)
	if want := fmt.Sprintf("%s/%d", evalPath(model, version), r.ID); res.Header.Get("Location") != want {
		t.Errorf("report Location = %q, want %q", res.Header.Get("Location"), want)
	}
	return r
}

func requestPromotion(c *apitest.Client, model string, version int, body any) *apitest.Response {
	return c.Send("POST", fmt.Sprintf("/api/v1/models/%s/versions/%d/promotions", model, version), body)
}

// promote requests a promotion and expects an answer (201) with decision.
func promote(t *testing.T, c *apitest.Client, model string, version int, stage, reason string, override bool, decision string) promotion.Promotion {
	t.Helper()
	res := requestPromotion(c, model, version, map[string]any{"stage": stage, "reason": reason, "override": override})
	wantStatus(t, fmt.Sprintf("promote %s/%d to %s", model, version, stage), res, http.StatusCreated)
	var p promotion.Promotion
	res.Decode(t, &p)
	if p.Decision != decision || p.Status != decision {
		t.Errorf("promote %s/%d to %s: decision %s, status %s, want %s: %s", model, version, stage, p.Decision, p.Status, decision, res.Body)
	}
	if want := fmt.Sprintf("/api/v1/promotions/%d", p.ID); res.Header.Get("Location") != want {
		t.Errorf("promotion Location = %q, want %q", res.Header.Get("Location"), want)
	}
	return p
}

func review(c *apitest.Client, id int64, decision, comment string) *apitest.Response {
	return c.Send("POST", fmt.Sprintf("/api/v1/promotions/%d/reviews", id), map[string]any{"decision": decision, "comment": comment})
}

func putPolicy(c *apitest.Client, model, stage string, body any, ifMatch string) *apitest.Response {
	r := apitest.Request{Method: "PUT", Path: fmt.Sprintf("/api/v1/models/%s/stages/%s/policy", model, stage), Body: body}
	if ifMatch != "" {
		r.Header = http.Header{"If-Match": {ifMatch}}
	}
	return c.Do(r)
}

// ruleResult finds the result of the rule of kind (on metric, when given).
func ruleResult(t *testing.T, p promotion.Promotion, kind, metric string) promotion.RuleResult {
	t.Helper()
	for _, r := range p.Rules {
		if r.Rule == kind && (metric == "" || r.Metric == metric) {
			return r
		}
	}
	t.Fatalf("promotion %d has no %s rule on %q: %+v", p.ID, kind, metric, p.Rules)
	return promotion.RuleResult{}
}

func num(n *promotion.Number) float64 {
	if n == nil {
		return math.Inf(-1) // never near a wanted value
	}
	return float64(*n)
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func stageOf(t *testing.T, c *apitest.Client, model, stage string) promotion.Stage {
	t.Helper()
	return get[promotion.Stage](t, c, fmt.Sprintf("/api/v1/models/%s/stages/%s", model, stage))
}

func holderVersion(st promotion.Stage) int {
	if st.Version == nil {
		return 0
	}
	return *st.Version
}

// reportMetrics reads a report's metrics by key.
func reportMetrics(t *testing.T, c *apitest.Client, model string, version int, id int64) map[string]evaluation.Metric {
	t.Helper()
	r := get[evaluation.Report](t, c, fmt.Sprintf("%s/%d", evalPath(model, version), id))
	if len(r.Metrics) != r.MetricCount {
		t.Errorf("report %d: %d metrics, metric_count %d", id, len(r.Metrics), r.MetricCount)
	}
	out := map[string]evaluation.Metric{}
	for _, m := range r.Metrics {
		out[m.Key] = m
	}
	return out
}

// storedReports counts the raw reports in the object store.
func storedReports(t *testing.T, e *env) int {
	t.Helper()
	n := 0
	if err := e.store.List(context.Background(), "reports/", func(blob.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// --- the acceptance scenario ---------------------------------------------

// scenario is session-recs with its datasets, its staging and production
// policies, and the people of the story.
type scenario struct {
	e        *env
	ci       *apitest.Client // the training pipeline: contributor, registers and requests
	lead     *apitest.Client // an ML lead: reviewer, requests production
	reviewer *apitest.Client // another reviewer
	admin    *apitest.Client
	viewer   *apitest.Client
}

const recs = "session-recs"

// evalOn is the description of a RecList report on a dataset's version 1.
func evalOn(dataset string) string {
	return "suite=reclist&producer=reclist-2.1&evaluation_dataset=" + dataset + "&evaluation_dataset_version=1"
}

func newScenario(t *testing.T) *scenario {
	t.Helper()
	e := newEnv(t, withMinIO)
	s := &scenario{e: e, ci: e.as(auth.RoleContributor), lead: e.user(t, "ml-lead", auth.RoleReviewer), reviewer: e.as(auth.RoleReviewer),
		admin: e.as(auth.RoleAdmin), viewer: e.as(auth.RoleViewer)}
	for _, name := range []string{"sessions-train", "sessions-test"} {
		createDataset(t, s.ci, name)
		objectVersion(t, s.ci, name, "s3://acme-ml/sessions/"+name+".parquet", hexSHA([]byte(name)))
	}
	createModel(t, s.ci, map[string]any{"name": recs, "owner": "search-team"})

	// every model has staging and production, empty, under the default policy
	stages := get[listPage[promotion.Stage]](t, s.viewer, "/api/v1/models/"+recs+"/stages")
	if len(stages.Items) != 2 || stages.Items[0].Name != "production" || stages.Items[1].Name != "staging" || stages.NextCursor != "" {
		t.Fatalf("stages of a new model: %+v", stages)
	}
	for _, st := range stages.Items {
		if st.Version != nil || st.Since != nil || st.PolicyRevision != 0 {
			t.Errorf("new stage %s: %+v", st.Name, st)
		}
	}
	res := s.viewer.Get("/api/v1/models/" + recs + "/stages/production/policy")
	wantStatus(t, "default policy", res, http.StatusOK)
	var def promotion.StoredPolicy
	res.Decode(t, &def)
	if !def.Default || def.Revision != 0 || len(def.Rules) != 1 || def.Rules[0].Kind != "approvals" || def.Rules[0].Count != 1 || res.Header.Get("ETag") != `"0"` {
		t.Errorf("default policy: %s (ETag %q)", res.Body, res.Header.Get("ETag"))
	}

	floor := map[string]any{"kind": "threshold", "suite": "reclist", "metric": "HIT_RATE", "op": ">=", "value": 0.015}
	res = putPolicy(s.admin, recs, "staging", map[string]any{"comment": "floor only", "rules": []any{floor, map[string]any{"kind": "approvals", "count": 0}}}, `"0"`)
	wantStatus(t, "staging policy", res, http.StatusOK)
	var staging promotion.StoredPolicy
	res.Decode(t, &staging)
	if staging.Revision != 1 || staging.Default || staging.CreatedBy != auth.BootstrapAdminName || staging.CreatedAt == nil || res.Header.Get("ETag") != `"1"` {
		t.Errorf("staging policy: %s", res.Body)
	}
	res = putPolicy(s.admin, recs, "production", map[string]any{"comment": "the production gate", "rules": []any{
		map[string]any{"kind": "required_suite", "suite": "reclist", "dataset": "sessions-test"},
		map[string]any{"kind": "no_leakage", "suite": "reclist"},
		floor,
		map[string]any{"kind": "champion", "metric": "HIT_RATE", "suite": "reclist", "direction": "higher_is_better", "tolerance": 0.02, "tolerance_type": "relative"},
		map[string]any{"kind": "champion", "metric": "MRED_COUNTRY.mred", "suite": "reclist", "direction": "higher_is_better", "tolerance": 0.001, "tolerance_type": "absolute"},
		map[string]any{"kind": "approvals", "count": 1},
	}}, "")
	wantStatus(t, "production policy", res, http.StatusOK)
	return s
}

// version registers a version of session-recs trained on sessions-train/1
// with a RecList 2.x report of the given figures on dataset/1.
func (s *scenario) version(t *testing.T, hitRate, mred float64, evalDataset string) int {
	t.Helper()
	res := register(s.ci, recs, `{"framework":"pytorch","training_data":[{"dataset":"sessions-train","version":1}]}`,
		file{"model/weights.pt", strings.NewReader(fmt.Sprintf("weights of HIT_RATE %v", hitRate))}, file{"model/config.json", strings.NewReader(`{"dim":64}`)})
	wantStatus(t, "register", res, http.StatusCreated)
	var v struct{ Version int }
	res.Decode(t, &v)
	body := recListV2(t, hitRate, mred)
	r := attachReport(t, s.ci, recs, v.Version, evalOn(evalDataset), body)
	if r.Format != "reclist-v2" || r.Suite != "reclist" || r.Producer != "reclist-2.1" || r.Dataset == nil || *r.Dataset != (evaluation.DatasetRef{Dataset: evalDataset, Version: 1}) ||
		r.SHA256 != hexSHA(body) || r.Size != int64(len(body)) || r.MetricCount != 15 || r.TestCount != 0 || r.CreatedBy != userOf(auth.RoleContributor) ||
		r.Meta["model_name"] != "SessionRecsTwoTower" {
		t.Errorf("report of v%d: %+v", v.Version, r)
	}
	return v.Version
}

// TestPromotionAcceptanceScenario is the story of the product contract,
// through the API: a gate to staging, an approved production promotion, a
// regression rejected against the champion, a floor, and a rollback.
func TestPromotionAcceptanceScenario(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	start := time.Now().UTC()

	// v1 (HIT_RATE 0.210): staging at once, production after a review
	v1 := s.version(t, 0.210, -0.0061, "sessions-test")
	p := promote(t, s.ci, recs, v1, "staging", "nightly retrain", false, "promoted")
	if p.Champion != nil || p.PolicyRevision != 1 || p.ApprovalsRequired != 0 || p.RequestedBy != userOf(auth.RoleContributor) ||
		p.Author != userOf(auth.RoleContributor) || p.DecidedAt == nil || p.Message != "every rule passed" {
		t.Errorf("staging v1: %+v", p)
	}
	if r := ruleResult(t, p, "threshold", "HIT_RATE"); !r.Passed || !near(num(r.Observed), 0.21) || !near(num(r.Threshold), 0.015) || r.ReportID == 0 {
		t.Errorf("staging floor of v1: %+v", r)
	}
	if holderVersion(stageOf(t, s.viewer, recs, "staging")) != v1 {
		t.Fatal("staging is not v1")
	}

	req := promote(t, s.lead, recs, v1, "production", "v1 passed staging", false, "pending_approval")
	if req.ApprovalsRequired != 1 || req.Approvals != 0 || req.DecidedAt != nil || req.PolicyRevision != 1 || req.Champion != nil {
		t.Errorf("production request of v1: %+v", req)
	}
	for _, r := range req.Rules {
		if r.Rule == "approvals" {
			if !r.Pending || r.Passed || r.Approvals == nil || *r.Approvals != (promotion.Approvals{Have: 0, Need: 1}) {
				t.Errorf("approvals rule of a pending request: %+v", r)
			}
		} else if !r.Passed {
			t.Errorf("rule %s of v1 failed: %s", r.Name, r.Message)
		}
	}
	if r := ruleResult(t, req, "no_leakage", ""); !strings.Contains(r.Message, "1 report(s) checked against 1 training input(s)") {
		t.Errorf("no_leakage of v1: %+v", r)
	}
	if r := ruleResult(t, req, "champion", "HIT_RATE"); r.ComparedTo != nil || r.Message != "no current holder: nothing to compare with" {
		t.Errorf("champion rule without a holder: %+v", r)
	}
	queue := get[listPage[promotion.Promotion]](t, s.reviewer, "/api/v1/promotions?status=pending_approval")
	if len(queue.Items) != 1 || queue.Items[0].ID != req.ID {
		t.Errorf("the review queue: %+v", queue.Items)
	}
	// four eyes: the requester may not approve; nor may the author, who
	// is not a reviewer anyway
	wantErr(t, "the requester approving", review(s.lead, req.ID, "approve", "lgtm"), http.StatusForbidden, "", "four eyes")
	wantErr(t, "the author (a contributor) approving", review(s.ci, req.ID, "approve", "lgtm"), http.StatusForbidden, "", "")
	if holderVersion(stageOf(t, s.viewer, recs, "production")) != 0 {
		t.Fatal("a refused review moved production")
	}
	res := review(s.reviewer, req.ID, "approve", "compared with the offline baseline")
	wantStatus(t, "a reviewer approving", res, http.StatusOK)
	var approved promotion.Promotion
	res.Decode(t, &approved)
	if approved.Status != "promoted" || approved.Decision != "promoted" || approved.Approvals != 1 || approved.DecidedBy != userOf(auth.RoleReviewer) ||
		approved.DecidedAt == nil || len(approved.Reviews) != 1 || approved.Reviews[0].Reviewer != userOf(auth.RoleReviewer) ||
		approved.Reviews[0].Decision != "approve" || len(approved.Evaluations) != 2 || approved.Evaluations[0].Decision != "pending_approval" ||
		approved.Evaluations[1].Decision != "promoted" {
		t.Errorf("after the approval: %s", res.Body)
	}
	if r := ruleResult(t, approved, "approvals", ""); !r.Passed || r.Pending || *r.Approvals != (promotion.Approvals{Have: 1, Need: 1}) {
		t.Errorf("approvals rule after the approval: %+v", r)
	}
	if got := get[promotion.Promotion](t, s.viewer, fmt.Sprintf("/api/v1/promotions/%d", req.ID)); got.Status != "promoted" || len(got.Reviews) != 1 {
		t.Errorf("GET the approved request: %+v", got)
	}

	// what the serving layer reads
	prod := stageOf(t, s.viewer, recs, "production")
	if holderVersion(prod) != v1 || prod.Since == nil || prod.PolicyRevision != 1 || len(prod.Artifacts) != 2 {
		t.Fatalf("production after the approval: %+v", prod)
	}
	for _, a := range prod.Artifacts {
		if want := fmt.Sprintf("/api/v1/models/%s/versions/%d/artifacts/%s", recs, v1, a.Path); a.URL != want {
			t.Errorf("artifact URL %q, want %q", a.URL, want)
		}
		res := s.viewer.Get(a.URL)
		if res.Status != http.StatusOK || hexSHA(res.Body) != a.SHA256 || int64(len(res.Body)) != a.Size {
			t.Errorf("download of %s: %d, %d bytes", a.Path, res.Status, len(res.Body))
		}
	}
	if prod.Artifacts[0].Path != "model/config.json" || prod.Artifacts[1].Path != "model/weights.pt" {
		t.Errorf("artifacts of the holder: %+v", prod.Artifacts)
	}

	// v2: a better hit rate, a worse MRED: staging yes, production no
	v2 := s.version(t, 0.230, -0.0091, "sessions-test")
	promote(t, s.ci, recs, v2, "staging", "nightly retrain", false, "promoted")
	rej := promote(t, s.ci, recs, v2, "production", "nightly retrain", false, "rejected")
	if rej.Champion == nil || *rej.Champion != v1 || rej.DecidedAt == nil || !strings.HasPrefix(rej.Message, "rejected: ") || !strings.Contains(rej.Message, "MRED_COUNTRY.mred") {
		t.Errorf("production v2: %+v", rej)
	}
	mred := ruleResult(t, rej, "champion", "MRED_COUNTRY.mred")
	if mred.Passed || !near(num(mred.Observed), -0.0091) || !near(num(mred.Threshold), -0.0071) || mred.ComparedTo == nil ||
		mred.ComparedTo.Version != v1 || !near(num(mred.ComparedTo.Value), -0.0061) || mred.ReportID == 0 {
		t.Errorf("the MRED rule of v2: %+v", mred)
	}
	hit := ruleResult(t, rej, "champion", "HIT_RATE")
	if !hit.Passed || !near(num(hit.Observed), 0.23) || !near(num(hit.Threshold), 0.21*0.98) || hit.ComparedTo == nil || hit.ComparedTo.Version != v1 || !near(num(hit.ComparedTo.Value), 0.21) {
		t.Errorf("the HIT_RATE rule of v2: %+v", hit)
	}
	if holderVersion(stageOf(t, s.viewer, recs, "production")) != v1 {
		t.Error("a rejected request moved production")
	}
	wantErr(t, "review of a rejected request", review(s.reviewer, rej.ID, "approve", ""), http.StatusConflict, "", "rejected")

	// v3: under the floor; evaluated on its own training data
	v3 := s.version(t, 0.012, -0.0061, "sessions-train")
	low := promote(t, s.ci, recs, v3, "staging", "nightly retrain", false, "rejected")
	if r := ruleResult(t, low, "threshold", "HIT_RATE"); r.Passed || !near(num(r.Observed), 0.012) || !near(num(r.Threshold), 0.015) || r.Message != "HIT_RATE = 0.012, not >= 0.015" {
		t.Errorf("the floor of v3: %+v", r)
	}
	if holderVersion(stageOf(t, s.viewer, recs, "staging")) != v2 {
		t.Error("a rejected request moved staging")
	}
	leak := promote(t, s.ci, recs, v3, "production", "nightly retrain", false, "rejected")
	if r := ruleResult(t, leak, "no_leakage", ""); r.Passed || !strings.HasPrefix(r.Message, "leakage: ") || !strings.Contains(r.Message, "sessions-train/1") {
		t.Errorf("no_leakage of v3: %+v", r)
	}
	if r := ruleResult(t, leak, "required_suite", ""); r.Passed || !strings.Contains(r.Message, "sessions-test") {
		t.Errorf("required_suite on sessions-test of v3: %+v", r)
	}

	// An admin forces v2 into production; then the rollback to v1, which
	// the policy refuses (v1 is worse than the champion v2), done by an
	// admin's override.
	wantErr(t, "an override by a contributor", requestPromotion(s.ci, recs, v2, map[string]any{"stage": "production", "reason": "x", "override": true}),
		http.StatusForbidden, "", "admin")
	forced := promote(t, s.admin, recs, v2, "production", "accept the MRED regression for the campaign", true, "promoted")
	if !forced.Override || !strings.HasPrefix(forced.Message, "override: promoted skipping ") {
		t.Errorf("override of v2: %+v", forced)
	}
	if r := ruleResult(t, forced, "champion", "MRED_COUNTRY.mred"); r.Passed || !r.Skipped {
		t.Errorf("the failing rule of an override: %+v", r)
	}
	if r := ruleResult(t, forced, "approvals", ""); !r.Skipped || r.Pending {
		t.Errorf("the approvals of an override: %+v", r)
	}
	back := promote(t, s.ci, recs, v1, "production", "rollback: v2 misbehaves", false, "rejected")
	if r := ruleResult(t, back, "champion", "HIT_RATE"); r.Passed || r.ComparedTo == nil || r.ComparedTo.Version != v2 {
		t.Errorf("a rollback goes through the policy: %+v", r)
	}
	rollback := promote(t, s.admin, recs, v1, "production", "rollback: v2 misbehaves", true, "promoted")
	if !rollback.Override || rollback.Champion == nil || *rollback.Champion != v2 {
		t.Errorf("the rollback: %+v", rollback)
	}
	if holderVersion(stageOf(t, s.viewer, recs, "production")) != v1 {
		t.Error("production is not v1 after the rollback")
	}

	// history, newest first, each move naming the holder it replaced
	hist := get[listPage[promotion.Move]](t, s.viewer, "/api/v1/models/"+recs+"/stages/production/history")
	type step struct {
		version, previous int
		promotion         int64
		override          bool
		by                string
	}
	want := []step{{v1, v2, rollback.ID, true, auth.BootstrapAdminName}, {v2, v1, forced.ID, true, auth.BootstrapAdminName}, {v1, 0, req.ID, false, userOf(auth.RoleReviewer)}}
	if len(hist.Items) != len(want) || hist.NextCursor != "" {
		t.Fatalf("production history: %+v", hist)
	}
	for i, m := range hist.Items {
		got := step{*m.Version, 0, *m.PromotionID, m.Override, m.MovedBy}
		if m.PreviousVersion != nil {
			got.previous = *m.PreviousVersion
		}
		if got != want[i] || m.Stage != "production" || m.Model != recs {
			t.Errorf("move %d: %+v, want %+v", i, got, want[i])
		}
	}
	if hist.Items[0].Reason != "rollback: v2 misbehaves" || hist.Items[2].Reason != "v1 passed staging" {
		t.Errorf("move reasons: %q, %q", hist.Items[0].Reason, hist.Items[2].Reason)
	}
	first, second, third := hist.Items[2].MovedAt, hist.Items[1].MovedAt, hist.Items[0].MovedAt
	if !first.Before(second) || !second.Before(third) {
		t.Fatalf("moves out of order: %v %v %v", first, second, third)
	}
	// what held production at a time
	holderAt := func(at time.Time) promotion.Stage {
		t.Helper()
		var h struct {
			Version *int            `json:"version"`
			Since   *time.Time      `json:"since"`
			At      time.Time       `json:"at"`
			Move    *promotion.Move `json:"move"`
		}
		res := s.viewer.Get("/api/v1/models/" + recs + "/stages/production/holder?at=" + url.QueryEscape(at.Format(time.RFC3339Nano)))
		wantStatus(t, "holder at "+at.String(), res, http.StatusOK)
		res.Decode(t, &h)
		if !h.At.Equal(at) || (h.Version == nil) != (h.Move == nil) || (h.Move != nil && (*h.Move.Version != *h.Version || !h.Since.Equal(h.Move.MovedAt))) {
			t.Errorf("holder at %v: %s", at, res.Body)
		}
		return promotion.Stage{Version: h.Version, Since: h.Since}
	}
	mid := func(a, b time.Time) time.Time { return a.Add(b.Sub(a) / 2) }
	for _, tc := range []struct {
		at      time.Time
		version int
	}{
		{start.Add(-time.Hour), 0},
		{first.Add(-time.Microsecond), 0},
		{first, v1},
		{mid(first, second), v1},
		{second, v2},
		{mid(second, third), v2},
		{third, v1},
		{third.Add(time.Hour), v1},
	} {
		if got := holderVersion(holderAt(tc.at)); got != tc.version {
			t.Errorf("production at %v held v%d, want v%d", tc.at, got, tc.version)
		}
	}
	if h := get[map[string]any](t, s.viewer, "/api/v1/models/"+recs+"/stages/production/holder"); h["version"] != float64(v1) {
		t.Errorf("holder now: %v", h)
	}
	// the history a page at a time
	cursor, pages := "", 0
	var versions []string
	for {
		p := get[listPage[promotion.Move]](t, s.viewer, "/api/v1/models/"+recs+"/stages/production/history?limit=1&cursor="+url.QueryEscape(cursor))
		pages++
		for _, m := range p.Items {
			versions = append(versions, fmt.Sprint(*m.Version))
		}
		if p.NextCursor == "" || pages > 5 {
			break
		}
		cursor = p.NextCursor
	}
	if strings.Join(versions, ",") != "1,2,1" {
		t.Errorf("history page by page: %v", versions)
	}
	if h := get[listPage[promotion.Move]](t, s.viewer, "/api/v1/models/"+recs+"/stages/staging/history"); len(h.Items) != 2 || *h.Items[0].Version != v2 || *h.Items[1].Version != v1 {
		t.Errorf("staging history: %+v", h.Items)
	}
	// the policy's revisions
	revs := get[listPage[promotion.StoredPolicy]](t, s.viewer, "/api/v1/models/"+recs+"/stages/production/policy/revisions")
	if len(revs.Items) != 1 || revs.Items[0].Revision != 1 || len(revs.Items[0].Rules) != 6 || revs.Items[0].Comment != "the production gate" {
		t.Errorf("production policy revisions: %+v", revs)
	}
	// every request of the story, by stage
	if l := get[listPage[promotion.Promotion]](t, s.viewer, "/api/v1/promotions?model="+recs+"&stage=production"); len(l.Items) != 6 {
		t.Errorf("%d production requests, want 6", len(l.Items))
	}
	if l := get[listPage[promotion.Promotion]](t, s.viewer, "/api/v1/promotions?model="+recs+"&stage=staging&status=rejected"); len(l.Items) != 1 || l.Items[0].Version != v3 {
		t.Errorf("rejected staging requests: %+v", l.Items)
	}
}

// TestPromotionApprovalAgainstTheChampionOfThatMoment approves requests
// after the stage moved: the last approval evaluates the policy again,
// against the champion of that moment and the policy in force.
func TestPromotionApprovalAgainstTheChampionOfThatMoment(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	v1 := s.version(t, 0.210, -0.0061, "sessions-test")
	first := promote(t, s.lead, recs, v1, "production", "first", false, "pending_approval")
	wantStatus(t, "approve v1", review(s.reviewer, first.ID, "approve", ""), http.StatusOK)

	// two candidates, both better than v1, wait for review
	v2 := s.version(t, 0.230, -0.0061, "sessions-test")
	v3 := s.version(t, 0.250, -0.0061, "sessions-test")
	p2 := promote(t, s.ci, recs, v2, "production", "v2", false, "pending_approval")
	p3 := promote(t, s.ci, recs, v3, "production", "v3", false, "pending_approval")
	if p2.Champion == nil || *p2.Champion != v1 {
		t.Errorf("champion of the v2 request: %v", p2.Champion)
	}
	wantStatus(t, "approve v3", review(s.reviewer, p3.ID, "approve", ""), http.StatusOK)
	// v2 was better than v1, but is worse than v3 by more than 2%
	res := review(s.reviewer, p2.ID, "approve", "was fine yesterday")
	wantStatus(t, "approve v2 after v3 took production", res, http.StatusOK)
	var late promotion.Promotion
	res.Decode(t, &late)
	if late.Status != "rejected" || late.Decision != "rejected" || late.Champion == nil || *late.Champion != v3 || late.DecidedBy != userOf(auth.RoleReviewer) ||
		len(late.Evaluations) != 2 || late.Evaluations[0].Decision != "pending_approval" || *late.Evaluations[0].Champion != v1 ||
		late.Evaluations[1].Decision != "rejected" || *late.Evaluations[1].Champion != v3 {
		t.Errorf("a late approval: %s", res.Body)
	}
	if r := ruleResult(t, late, "champion", "HIT_RATE"); r.Passed || r.ComparedTo == nil || r.ComparedTo.Version != v3 || !near(num(r.ComparedTo.Value), 0.25) {
		t.Errorf("the HIT_RATE rule at the late approval: %+v", r)
	}
	if holderVersion(stageOf(t, s.viewer, recs, "production")) != v3 {
		t.Error("a rejected approval moved production")
	}

	// a policy that asks for two approvals: the first leaves it open
	res = s.viewer.Get("/api/v1/models/" + recs + "/stages/production/policy")
	var pol promotion.StoredPolicy
	res.Decode(t, &pol)
	pol.Rules[len(pol.Rules)-1].Count = 2
	wantStatus(t, "two approvals", putPolicy(s.admin, recs, "production", map[string]any{"rules": pol.Rules, "comment": "four eyes are not enough"}, res.Header.Get("ETag")), http.StatusOK)
	v4 := s.version(t, 0.260, -0.0061, "sessions-test")
	p4 := promote(t, s.ci, recs, v4, "production", "v4", false, "pending_approval")
	if p4.ApprovalsRequired != 2 || p4.PolicyRevision != 2 {
		t.Errorf("a request under two approvals: %+v", p4)
	}
	res = review(s.reviewer, p4.ID, "approve", "one")
	wantStatus(t, "the first of two approvals", res, http.StatusOK)
	var one promotion.Promotion
	res.Decode(t, &one)
	if r := ruleResult(t, one, "approvals", ""); one.Status != "pending_approval" || one.Approvals != 1 || r.Approvals == nil || *r.Approvals != (promotion.Approvals{Have: 1, Need: 2}) || !r.Pending {
		t.Errorf("after one of two approvals: %s", res.Body)
	}
	res = review(s.lead, p4.ID, "approve", "two")
	wantStatus(t, "the second approval", res, http.StatusOK)
	res.Decode(t, &one)
	if one.Status != "promoted" || one.Approvals != 2 || len(one.Reviews) != 2 || holderVersion(stageOf(t, s.viewer, recs, "production")) != v4 {
		t.Errorf("after two approvals: %s", res.Body)
	}
}

// --- report formats -----------------------------------------------------

// TestEvaluationReportFormats sends both RecList samples and a report with
// bare NaN tokens: each is stored byte for byte, and its metrics are what
// policy rules address.
func TestEvaluationReportFormats(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withMinIO)
	c := e.as(auth.RoleContributor)
	viewer := e.as(auth.RoleViewer)
	createModel(t, c, map[string]any{"name": "recs"})
	wantStatus(t, "register v1", register(c, "recs", `{}`, file{"m.bin", strings.NewReader("1")}), http.StatusCreated)
	wantStatus(t, "register v2", register(c, "recs", `{}`, file{"m.bin", strings.NewReader("2")}), http.StatusCreated)

	v0, v2 := sample(t, "reclist-v0-report.json"), sample(t, "reclist-v2-report.json")
	r0 := attachReport(t, c, "recs", 1, "suite=reclist-legacy", v0) // detected
	r2 := attachReport(t, c, "recs", 1, "suite=reclist&format=reclist-v2&producer=reclist", v2)
	if r0.Format != "reclist-v0" || r0.Dataset != nil || r0.Meta["model_name"] != "LSTMRecModel" || r0.Meta["run_time"] != "1763604765000" || r0.SHA256 != hexSHA(v0) {
		t.Errorf("RecList 0.x report: %+v", r0)
	}
	if r2.Format != "reclist-v2" || r2.Meta["reclist"] != "DFSessionRecList" || r2.SHA256 != hexSHA(v2) || r2.Size != int64(len(v2)) {
		t.Errorf("RecList 2.x report: %+v", r2)
	}
	m0, m2 := reportMetrics(t, viewer, "recs", 1, r0.ID), reportMetrics(t, viewer, "recs", 1, r2.ID)
	for _, tc := range []struct {
		metrics         map[string]evaluation.Metric
		key, test, path string
		value           float64
	}{
		{m0, `HITS_BY_SLICE["(0, 5]"].hit_rate`, "HITS_BY_SLICE", `["(0, 5]"].hit_rate`, 0.031},
		{m0, "HR@10", "HR@10", "", 0.1132},
		{m0, "MRR_BY_COUNTRY.US", "MRR_BY_COUNTRY", ".US", 0.051}, // a JSON document in a string, as pandas writes
		{m0, "stats.test_set_size", "stats", ".test_set_size", 10000},
		{m2, "MRED_COUNTRY.mred", "MRED_COUNTRY", ".mred", -0.0061},
		{m2, "HIT_RATE", "HIT_RATE", "", 0.2141},
		{m2, "HITS_DISTRIBUTION[4]", "HITS_DISTRIBUTION", "[4]", 0.37},
	} {
		m, ok := tc.metrics[tc.key]
		if !ok || m.Test != tc.test || m.Path != tc.path || !near(float64(m.Value), tc.value) {
			t.Errorf("metric %s: %+v (present %v)", tc.key, m, ok)
		}
	}

	// the raw bytes, as sent
	for _, tc := range []struct {
		r    evaluation.Report
		body []byte
	}{{r0, v0}, {r2, v2}} {
		path := fmt.Sprintf("%s/%d/raw", evalPath("recs", 1), tc.r.ID)
		res := viewer.Get(path)
		if res.Status != 200 || !bytes.Equal(res.Body, tc.body) || hexSHA(res.Body) != tc.r.SHA256 || res.Header.Get("ETag") != `"`+tc.r.SHA256+`"` ||
			!strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") || res.Header.Get("Content-Digest") == "" {
			t.Errorf("raw report %d: %d, %d bytes, ETag %q, type %q", tc.r.ID, res.Status, len(res.Body), res.Header.Get("ETag"), res.Header.Get("Content-Type"))
		}
		res = viewer.Do(apitest.Request{Method: "GET", Path: path, Header: http.Header{"Range": {"bytes=10-19"}}})
		if res.Status != http.StatusPartialContent || !bytes.Equal(res.Body, tc.body[10:20]) || res.Header.Get("Content-Range") != fmt.Sprintf("bytes 10-19/%d", len(tc.body)) {
			t.Errorf("raw report %d, a range: %d %q %q", tc.r.ID, res.Status, res.Header.Get("Content-Range"), res.Body)
		}
		wantErr(t, "a range past the end", viewer.Do(apitest.Request{Method: "GET", Path: path, Header: http.Header{"Range": {fmt.Sprintf("bytes=%d-", len(tc.body))}}}),
			http.StatusRequestedRangeNotSatisfiable, "", "")
	}
	wantErr(t, "raw of a report of another version", viewer.Get(fmt.Sprintf("%s/%d/raw", evalPath("recs", 2), r0.ID)), http.StatusNotFound, "", "")
	wantErr(t, "a report of another version", viewer.Get(fmt.Sprintf("%s/%d", evalPath("recs", 2), r0.ID)), http.StatusNotFound, "", "")
	list := get[listPage[evaluation.Report]](t, viewer, evalPath("recs", 1))
	if len(list.Items) != 2 || list.Items[0].ID != r2.ID || list.Items[1].ID != r0.ID || list.Items[0].Metrics != nil {
		t.Errorf("reports of v1 (newest first, without metrics): %+v", list.Items)
	}
	if p := get[listPage[evaluation.Report]](t, viewer, evalPath("recs", 1)+"?limit=1"); len(p.Items) != 1 || p.NextCursor == "" {
		t.Errorf("a page of one report: %+v", p)
	} else if p2 := get[listPage[evaluation.Report]](t, viewer, evalPath("recs", 1)+"?limit=1&cursor="+url.QueryEscape(p.NextCursor)); len(p2.Items) != 1 || p2.Items[0].ID != r0.ID || p2.NextCursor != "" {
		t.Errorf("the second page of reports: %+v", p2)
	}

	// a policy addresses the metrics of both formats by key
	wantStatus(t, "staging policy", putPolicy(e.as(auth.RoleAdmin), "recs", "staging", map[string]any{"rules": []any{
		map[string]any{"kind": "threshold", "suite": "reclist-legacy", "metric": `HITS_BY_SLICE["(0, 5]"].hit_rate`, "op": ">=", "value": 0.03},
		map[string]any{"kind": "threshold", "metric": "MRR_BY_COUNTRY.US", "op": ">", "value": 0.05},
		map[string]any{"kind": "threshold", "suite": "reclist", "metric": "MRED_COUNTRY.mred", "op": "between", "min": -0.01, "max": 0},
		map[string]any{"kind": "approvals", "count": 0},
	}}, ""), http.StatusOK)
	p := promote(t, c, "recs", 1, "staging", "both formats", false, "promoted")
	for _, tc := range []struct {
		metric   string
		report   int64
		observed float64
	}{{`HITS_BY_SLICE["(0, 5]"].hit_rate`, r0.ID, 0.031}, {"MRR_BY_COUNTRY.US", r0.ID, 0.051}, {"MRED_COUNTRY.mred", r2.ID, -0.0061}} {
		if r := ruleResult(t, p, "threshold", tc.metric); !r.Passed || r.ReportID != tc.report || !near(num(r.Observed), tc.observed) {
			t.Errorf("rule on %s: %+v", tc.metric, r)
		}
	}

	// NaN and the infinities, as Python's json.dumps writes them
	nan := []byte(`{"metrics": {"hit_rate": NaN, "coverage": Infinity, "loss": -Infinity, "mrr": 0.04},
  "tests": [{"name": "no_empty_recommendations", "passed": true}, {"name": "gender_invariance", "passed": false, "message": "3% of pairs changed"}]}`)
	rn := attachReport(t, c, "recs", 2, "suite=offline", nan)
	if rn.Format != "slipway" || rn.MetricCount != 4 || rn.TestCount != 2 || rn.TestsFailed != 1 {
		t.Errorf("the NaN report: %+v", rn)
	}
	res := viewer.Get(fmt.Sprintf("%s/%d", evalPath("recs", 2), rn.ID))
	wantStatus(t, "GET the NaN report", res, http.StatusOK)
	var raw struct {
		Metrics []struct {
			Key   string          `json:"key"`
			Value json.RawMessage `json:"value"`
		} `json:"metrics"`
		Tests []evaluation.Test `json:"tests"`
	}
	res.Decode(t, &raw)
	values := map[string]string{}
	for _, m := range raw.Metrics {
		values[m.Key] = string(m.Value)
	}
	if values["hit_rate"] != `"NaN"` || values["coverage"] != `"Infinity"` || values["loss"] != `"-Infinity"` || values["mrr"] != "0.04" {
		t.Errorf("non-finite metrics: %v", values)
	}
	if len(raw.Tests) != 2 || raw.Tests[1] != (evaluation.Test{Name: "gender_invariance", Passed: false, Message: "3% of pairs changed"}) {
		t.Errorf("tests of the NaN report: %+v", raw.Tests)
	}
	if res := viewer.Get(fmt.Sprintf("%s/%d/raw", evalPath("recs", 2), rn.ID)); !bytes.Equal(res.Body, nan) || res.Header.Get("ETag") != `"`+hexSHA(nan)+`"` {
		t.Errorf("raw NaN report: %d %q", res.Status, res.Body)
	}
	// a RecList report with a NaN result too
	recNaN := bytes.Replace(v2, []byte(`"result": 0.0458`), []byte(`"result": NaN`), 1)
	rr := attachReport(t, c, "recs", 2, "suite=reclist", recNaN)
	if m := reportMetrics(t, viewer, "recs", 2, rr.ID)["MRR"]; !math.IsNaN(float64(m.Value)) {
		t.Errorf("MRR of a RecList report with NaN: %+v", m)
	}
	wantStatus(t, "production policy", putPolicy(e.as(auth.RoleAdmin), "recs", "production", map[string]any{"rules": []any{
		map[string]any{"kind": "threshold", "suite": "offline", "metric": "hit_rate", "op": ">=", "value": 0.1},
		map[string]any{"kind": "threshold", "suite": "offline", "metric": "loss", "op": "<", "value": 1},
		map[string]any{"kind": "threshold", "suite": "reclist", "metric": "MRR", "op": ">=", "value": 0},
		map[string]any{"kind": "tests_passed", "suite": "offline"},
		map[string]any{"kind": "approvals", "count": 0},
	}}, ""), http.StatusOK)
	res = requestPromotion(c, "recs", 2, map[string]any{"stage": "production", "reason": "NaN everywhere"})
	wantStatus(t, "promote the NaN version", res, http.StatusCreated)
	if !bytes.Contains(res.Body, []byte(`"observed":"NaN"`)) || !bytes.Contains(res.Body, []byte(`"observed":"-Infinity"`)) {
		t.Errorf("non-finite observed values are not spelled as strings: %s", res.Body)
	}
	var pn promotion.Promotion
	res.Decode(t, &pn)
	if pn.Decision != "rejected" {
		t.Fatalf("a NaN metric passed a policy: %s", res.Body)
	}
	for _, metric := range []string{"hit_rate", "loss", "MRR"} {
		if r := ruleResult(t, pn, "threshold", metric); r.Passed || !strings.Contains(r.Message, "passes no threshold") {
			t.Errorf("threshold on the non-finite %s: %+v", metric, r)
		}
	}
	if r := ruleResult(t, pn, "tests_passed", ""); r.Passed || len(r.Details) != 1 || r.Details[0] != "gender_invariance" {
		t.Errorf("tests_passed: %+v", r)
	}
	if n := storedReports(t, e); n != 4 {
		t.Errorf("%d raw reports in the bucket, want 4", n)
	}
}

// --- bad inputs -----------------------------------------------------------

// TestPromotionBadInputs sends what clients get wrong: each answer has its
// status and an error body that names the problem, and nothing is kept.
func TestPromotionBadInputs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withMinIO)
	c := e.as(auth.RoleContributor)
	viewer, reviewer, admin := e.as(auth.RoleViewer), e.as(auth.RoleReviewer), e.as(auth.RoleAdmin)
	createDataset(t, c, "sessions-test")
	objectVersion(t, c, "sessions-test", "s3://b/test.parquet", hexSHA([]byte("t")))
	createModel(t, c, map[string]any{"name": "m"})
	wantStatus(t, "register v1", register(c, "m", `{}`, file{"m.bin", strings.NewReader("1")}), http.StatusCreated)
	wantStatus(t, "a draft v2", c.Send("POST", "/api/v1/models/m/versions", map[string]any{
		"artifacts": []map[string]any{{"path": "m.bin", "size": 1, "sha256": hexSHA([]byte("2"))}}}), http.StatusCreated)
	good := recListV2(t, 0.2, -0.006)

	t.Run("reports", func(t *testing.T) {
		for _, tc := range []struct {
			name        string
			client      *apitest.Client
			path, query string
			contentType string
			body        string
			status      int
			field, text string
		}{
			{"not JSON", c, "", "suite=reclist", "", "this is not a report", 422, "", "JSON"},
			{"truncated JSON", c, "", "suite=reclist", "", `{"metrics": {"a": 1}`, 422, "", ""},
			{"empty body", c, "", "suite=reclist", "", "", 422, "", ""},
			{"a JSON array", c, "", "suite=reclist", "", `[{"name": "HIT_RATE", "result": 0.2}]`, 422, "", ""},
			{"a JSON string", c, "", "suite=reclist", "", `"HIT_RATE"`, 422, "", ""},
			{"an unknown shape", c, "", "suite=reclist", "", `{"results": {"HIT_RATE": 0.2}}`, 422, "", ""},
			{"both RecList shapes", c, "", "suite=reclist", "", `{"data": [{"name": "A", "result": 1}, {"test_name": "B", "test_result": 2}]}`, 422, "", ""},
			{"a format it does not have", c, "", "suite=reclist&format=reclist-v0", "", string(good), 422, "", ""},
			{"a bare token other than NaN", c, "", "suite=reclist", "", `{"metrics": {"a": None}}`, 422, "", ""},
			{"missing suite", c, "", "", "", string(good), 400, "suite", "required"},
			{"a bad suite name", c, "", "suite=Rec%20List", "", string(good), 400, "suite", ""},
			{"an unknown parameter", c, "", "suite=reclist&dataset=sessions-test", "", string(good), 400, "dataset", "not a parameter"},
			{"an unknown format", c, "", "suite=reclist&format=csv", "", string(good), 400, "format", ""},
			{"a dataset version without its dataset", c, "", "suite=reclist&evaluation_dataset_version=1", "", string(good), 400, "evaluation_dataset", ""},
			{"a dataset without its version", c, "", "suite=reclist&evaluation_dataset=sessions-test", "", string(good), 400, "evaluation_dataset_version", ""},
			{"a dataset version that is no number", c, "", "suite=reclist&evaluation_dataset=sessions-test&evaluation_dataset_version=one", "", string(good), 400, "evaluation_dataset_version", ""},
			{"text/plain", c, "", "suite=reclist", "text/plain", string(good), 415, "", "application/json"},
			{"form data", c, "", "suite=reclist", "application/x-www-form-urlencoded", "a=b", 415, "", ""},
			{"an unknown evaluation dataset", c, "", "suite=reclist&evaluation_dataset=nope&evaluation_dataset_version=1", "", string(good), 404, "", "nope"},
			{"an unknown evaluation dataset version", c, "", "suite=reclist&evaluation_dataset=sessions-test&evaluation_dataset_version=9", "", string(good), 404, "", ""},
			{"an unknown model", c, evalPath("nope", 1), "suite=reclist", "", string(good), 404, "", ""},
			{"an unknown version", c, evalPath("m", 9), "suite=reclist", "", string(good), 404, "", ""},
			{"a version that is no number", c, "/api/v1/models/m/versions/one/evaluations", "suite=reclist", "", string(good), 400, "version", ""},
			{"a draft", c, evalPath("m", 2), "suite=reclist", "", string(good), 409, "", "draft"},
			{"a viewer", viewer, "", "suite=reclist", "", string(good), 403, "", ""},
		} {
			path := tc.path
			if path == "" {
				path = evalPath("m", 1)
			}
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			res := tc.client.Do(apitest.Request{Method: "POST", Path: path + "?" + tc.query, Body: []byte(tc.body), ContentType: ct})
			wantErr(t, tc.name, res, tc.status, tc.field, tc.text)
		}
		// a report declared larger than 256 MiB is refused before it is read
		u, _ := url.Parse(e.url)
		conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST %s?suite=reclist HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"data\": [",
			evalPath("m", 1), u.Host, e.tokens[auth.RoleContributor], evaluation.MaxReportSize+1)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if res, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil {
			t.Errorf("no answer to a report declared too large while its body was unsent: %v", err)
		} else if body, _ := io.ReadAll(res.Body); res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), `"too_large"`) {
			t.Errorf("a report declared too large: %d %s, want 413", res.StatusCode, body)
		}
		if l := get[listPage[evaluation.Report]](t, viewer, evalPath("m", 1)); len(l.Items) != 0 {
			t.Errorf("refused reports were stored: %+v", l.Items)
		}
		if n := storedReports(t, e); n != 0 {
			t.Errorf("refused reports left %d objects in the bucket", n)
		}
		r := attachReport(t, c, "m", 1, "suite=reclist&evaluation_dataset=sessions-test&evaluation_dataset_version=1", good)
		wantErr(t, "a missing report", viewer.Get(evalPath("m", 1)+"/999999"), 404, "", "")
		wantErr(t, "a report id that is no number", viewer.Get(evalPath("m", 1)+"/x"), 400, "id", "")
		wantErr(t, "the raw of a missing report", viewer.Get(evalPath("m", 1)+"/999999/raw"), 404, "", "")
		wantErr(t, "reports of a missing model", viewer.Get(evalPath("nope", 1)), 404, "", "")
		wantErr(t, "reports, limit 0", viewer.Get(evalPath("m", 1)+"?limit=0"), 400, "limit", "")
		if n := storedReports(t, e); n != 1 || r.ID == 0 {
			t.Errorf("%d objects in the bucket after one report, want 1", n)
		}
	})

	t.Run("stages", func(t *testing.T) {
		wantErr(t, "an unknown stage", viewer.Get("/api/v1/models/m/stages/canary"), 404, "", "canary")
		wantErr(t, "the policy of an unknown stage", viewer.Get("/api/v1/models/m/stages/canary/policy"), 404, "", "")
		wantErr(t, "the revisions of an unknown stage", viewer.Get("/api/v1/models/m/stages/canary/policy/revisions"), 404, "", "")
		wantErr(t, "the history of an unknown stage", viewer.Get("/api/v1/models/m/stages/canary/history"), 404, "", "")
		wantErr(t, "the holder of an unknown stage", viewer.Get("/api/v1/models/m/stages/canary/holder"), 404, "", "")
		wantErr(t, "a promotion to an unknown stage", requestPromotion(c, "m", 1, map[string]any{"stage": "canary", "reason": "try"}), 404, "", "canary")
		wantErr(t, "the stages of an unknown model", viewer.Get("/api/v1/models/nope/stages"), 404, "", "")
		wantErr(t, "a stage of an unknown model", viewer.Get("/api/v1/models/nope/stages/production"), 404, "", "nope")
		wantErr(t, "holder at a date", viewer.Get("/api/v1/models/m/stages/production/holder?at=2026-11-20"), 400, "at", "RFC 3339")
		wantErr(t, "history, limit 500", viewer.Get("/api/v1/models/m/stages/production/history?limit=500"), 400, "limit", "")
		wantErr(t, "policy revision 0", viewer.Get("/api/v1/models/m/stages/production/policy?revision=0"), 400, "revision", "")
		wantErr(t, "a policy revision that does not exist", viewer.Get("/api/v1/models/m/stages/production/policy?revision=5"), 404, "", "")
		for _, tc := range []struct {
			name   string
			client *apitest.Client
			body   any
			status int
			field  string
		}{
			{"a stage name with capitals", admin, map[string]any{"name": "Canary"}, 400, "name"},
			{"a stage name with a space", admin, map[string]any{"name": "can ary"}, 400, "name"},
			{"no stage name", admin, map[string]any{"description": "x"}, 400, "name"},
			{"a stage name that starts with a digit", admin, map[string]any{"name": "1st"}, 400, "name"},
			{"an unknown field", admin, map[string]any{"name": "canary", "policy": "x"}, 400, "policy"},
			{"a description too long", admin, map[string]any{"name": "canary", "description": strings.Repeat("x", 2001)}, 400, "description"},
			{"a contributor", c, map[string]any{"name": "canary"}, 403, ""},
			{"a reviewer", reviewer, map[string]any{"name": "canary"}, 403, ""},
			{"a name that exists", admin, map[string]any{"name": "production"}, 409, ""},
		} {
			wantErr(t, tc.name, tc.client.Send("POST", "/api/v1/models/m/stages", tc.body), tc.status, tc.field, "")
		}
		res := admin.Send("POST", "/api/v1/models/m/stages", map[string]any{"name": "canary", "description": "5% of traffic"})
		wantStatus(t, "create canary", res, http.StatusCreated)
		var st promotion.Stage
		res.Decode(t, &st)
		if st.Name != "canary" || st.Model != "m" || st.Description != "5% of traffic" || st.Version != nil || res.Header.Get("Location") != "/api/v1/models/m/stages/canary" {
			t.Errorf("canary: %s (Location %q)", res.Body, res.Header.Get("Location"))
		}
		wantErr(t, "canary again", admin.Send("POST", "/api/v1/models/m/stages", map[string]any{"name": "canary"}), 409, "", "already")
		wantErr(t, "a stage of an unknown model", admin.Send("POST", "/api/v1/models/nope/stages", map[string]any{"name": "canary"}), 404, "", "")
		if l := get[listPage[promotion.Stage]](t, viewer, "/api/v1/models/m/stages"); len(l.Items) != 3 {
			t.Errorf("stages after canary: %+v", l.Items)
		}

		// the URLs the serving layer follows name each artifact exactly,
		// whatever its path holds
		createModel(t, c, map[string]any{"name": "paths"})
		wantStatus(t, "register paths/1", register(c, "paths", `{}`, file{"a%41.bin", strings.NewReader("percent")}, file{"aA.bin", strings.NewReader("plain")},
			file{"dir/with space #1?.bin", strings.NewReader("odd")}), http.StatusCreated)
		wantStatus(t, "staging policy of paths", putPolicy(admin, "paths", "staging", map[string]any{"rules": []any{}}, ""), http.StatusOK)
		promote(t, c, "paths", 1, "staging", "escaping", false, "promoted")
		arts := stageOf(t, viewer, "paths", "staging").Artifacts
		if len(arts) != 3 {
			t.Fatalf("artifacts of paths/1: %+v", arts)
		}
		for _, a := range arts {
			if res := viewer.Get(a.URL); res.Status != http.StatusOK || hexSHA(res.Body) != a.SHA256 {
				t.Errorf("artifact %q at %q: %d %q", a.Path, a.URL, res.Status, res.Body)
			}
		}
	})

	t.Run("policies", func(t *testing.T) {
		before := get[listPage[promotion.StoredPolicy]](t, viewer, "/api/v1/models/m/stages/production/policy/revisions")
		bad := []any{
			map[string]any{"kind": "magic"},                                                                                                         // 0
			map[string]any{"kind": "threshold", "op": ">=", "value": 0.1},                                                                           // 1: no metric
			map[string]any{"kind": "threshold", "metric": "HIT_RATE", "op": "=>", "value": 0.1},                                                     // 2
			map[string]any{"kind": "threshold", "metric": "HIT_RATE", "op": ">="},                                                                   // 3: no value
			map[string]any{"kind": "champion", "metric": "HIT_RATE"},                                                                                // 4: no direction
			map[string]any{"kind": "champion", "metric": "HIT_RATE", "direction": "higher_is_better", "tolerance": 2, "tolerance_type": "relative"}, // 5
			map[string]any{"kind": "cel", "expression": "candidate.metrics["},                                                                       // 6
			map[string]any{"kind": "cel", "expression": "1 + 1"},                                                                                    // 7: not a bool
			map[string]any{"kind": "required_suite"},                                                                                                // 8: no suite
			map[string]any{"kind": "approvals", "count": 1},                                                                                         // 9
			map[string]any{"kind": "approvals", "count": 2},                                                                                         // 10: a second one
			map[string]any{"kind": "prerequisite_stage", "stage": "Staging"},                                                                        // 11
			map[string]any{"kind": "threshold", "metric": "HIT_RATE", "op": "between", "min": 1, "max": 0},                                          // 12
			map[string]any{"kind": "approvals", "count": 99},                                                                                        // 13
		}
		res := putPolicy(admin, "m", "production", map[string]any{"rules": bad}, "")
		for _, field := range []string{"rules[0].kind", "rules[1].metric", "rules[2].op", "rules[3].value", "rules[4].direction", "rules[5].tolerance",
			"rules[6].expression", "rules[7].expression", "rules[8].suite", "rules[10]", "rules[11].stage", "rules[12].min", "rules[13].count"} {
			wantErr(t, "bad rules: "+field, res, 400, field, "")
		}
		for _, tc := range []struct {
			name   string
			client *apitest.Client
			body   any
			ifm    string
			status int
			field  string
		}{
			{"no rules", admin, map[string]any{"comment": "x"}, "", 400, "rules"},
			{"rules null", admin, map[string]any{"rules": nil}, "", 400, "rules"},
			{"an unknown field of a rule", admin, map[string]any{"rules": []any{map[string]any{"kind": "threshold", "metric": "A", "op": ">=", "threshold": 1}}}, "", 400, "threshold"},
			{"a duration that is not one", admin, map[string]any{"rules": []any{map[string]any{"kind": "prerequisite_stage", "stage": "staging", "min_duration": "a day"}}}, "", 400, ""},
			{"a value that is no number", admin, map[string]any{"rules": []any{map[string]any{"kind": "threshold", "metric": "A", "op": ">=", "value": "0.1"}}}, "", 400, ""},
			{"If-Match that is no revision", admin, map[string]any{"rules": []any{}}, "latest", 400, "If-Match"},
			{"a stale If-Match", admin, map[string]any{"rules": []any{}}, `"7"`, 412, ""},
			{"a contributor", c, map[string]any{"rules": []any{}}, "", 403, ""},
			{"a reviewer", reviewer, map[string]any{"rules": []any{}}, "", 403, ""},
			{"an unknown stage", admin, map[string]any{"rules": []any{}}, "", 404, ""},
		} {
			stage := "production"
			if tc.status == 404 {
				stage = "nope"
			}
			wantErr(t, tc.name, putPolicy(tc.client, "m", stage, tc.body, tc.ifm), tc.status, tc.field, "")
		}
		if after := get[listPage[promotion.StoredPolicy]](t, viewer, "/api/v1/models/m/stages/production/policy/revisions"); len(after.Items) != len(before.Items) {
			t.Errorf("refused policies were written: %d revisions, then %d", len(before.Items), len(after.Items))
		}
		// the ETag read is the If-Match of the write; a second writer with
		// the same ETag is refused
		res = viewer.Get("/api/v1/models/m/stages/staging/policy")
		etag := res.Header.Get("ETag")
		wantStatus(t, "write with the ETag read", putPolicy(admin, "m", "staging", map[string]any{"rules": []any{}, "comment": "first"}, etag), http.StatusOK)
		wantErr(t, "write with the same ETag again", putPolicy(admin, "m", "staging", map[string]any{"rules": []any{}, "comment": "second"}, etag), 412, "", "revision 1")
		res = putPolicy(admin, "m", "staging", map[string]any{"rules": []any{map[string]any{"kind": "approvals", "count": 1}}, "comment": "third"}, "*")
		wantStatus(t, "If-Match: *", res, http.StatusOK)
		if res.Header.Get("ETag") != `"2"` {
			t.Errorf("ETag after a second revision: %q", res.Header.Get("ETag"))
		}
		if p := get[promotion.StoredPolicy](t, viewer, "/api/v1/models/m/stages/staging/policy?revision=1"); p.Revision != 1 || p.Comment != "first" || len(p.Rules) != 0 {
			t.Errorf("revision 1: %+v", p)
		}
	})

	t.Run("promotions", func(t *testing.T) {
		for _, tc := range []struct {
			name        string
			client      *apitest.Client
			model       string
			version     int
			body        any
			status      int
			field, text string
		}{
			{"an empty reason", c, "m", 1, map[string]any{"stage": "production", "reason": ""}, 400, "reason", ""},
			{"a blank reason", c, "m", 1, map[string]any{"stage": "production", "reason": "  \n "}, 400, "reason", ""},
			{"no reason", c, "m", 1, map[string]any{"stage": "production"}, 400, "reason", ""},
			{"no stage", c, "m", 1, map[string]any{"reason": "x"}, 400, "stage", ""},
			{"a bad stage name", c, "m", 1, map[string]any{"stage": "Prod!", "reason": "x"}, 400, "stage", ""},
			{"a reason too long", c, "m", 1, map[string]any{"stage": "production", "reason": strings.Repeat("x", 2001)}, 400, "reason", ""},
			{"an unknown field", c, "m", 1, map[string]any{"stage": "production", "reason": "x", "force": true}, 400, "force", ""},
			{"override as a string", c, "m", 1, map[string]any{"stage": "production", "reason": "x", "override": "yes"}, 400, "override", ""},
			{"an override by a contributor", c, "m", 1, map[string]any{"stage": "production", "reason": "x", "override": true}, 403, "", "admin"},
			{"an override by a reviewer", reviewer, "m", 1, map[string]any{"stage": "production", "reason": "x", "override": true}, 403, "", "admin"},
			{"a viewer", viewer, "m", 1, map[string]any{"stage": "production", "reason": "x"}, 403, "", ""},
			{"a draft", c, "m", 2, map[string]any{"stage": "production", "reason": "x"}, 409, "", "draft"},
			{"an unknown version", c, "m", 9, map[string]any{"stage": "production", "reason": "x"}, 404, "", ""},
			{"an unknown model", c, "nope", 1, map[string]any{"stage": "production", "reason": "x"}, 404, "", ""},
		} {
			wantErr(t, tc.name, requestPromotion(tc.client, tc.model, tc.version, tc.body), tc.status, tc.field, tc.text)
		}
		wantErr(t, "text/plain", c.Do(apitest.Request{Method: "POST", Path: "/api/v1/models/m/versions/1/promotions", Body: "stage=production", ContentType: "text/plain"}), 415, "", "")
		if l := get[listPage[promotion.Promotion]](t, viewer, "/api/v1/promotions?model=m"); len(l.Items) != 0 {
			t.Errorf("refused requests were recorded: %+v", l.Items)
		}
		wantErr(t, "a missing promotion", viewer.Get("/api/v1/promotions/999999"), 404, "", "")
		wantErr(t, "a promotion id that is no number", viewer.Get("/api/v1/promotions/abc"), 400, "id", "")
	})

	t.Run("reviews and cancellations", func(t *testing.T) {
		// production has the default policy: one approval
		open := promote(t, c, "m", 1, "production", "ship it", false, "pending_approval")
		if open.PolicyRevision != 0 || open.ApprovalsRequired != 1 {
			t.Errorf("a request under the default policy: %+v", open)
		}
		for _, tc := range []struct {
			name   string
			client *apitest.Client
			body   any
			status int
			field  string
		}{
			{"a viewer", viewer, map[string]any{"decision": "approve"}, 403, ""},
			{"a contributor", c, map[string]any{"decision": "approve"}, 403, ""},
			{"decision maybe", reviewer, map[string]any{"decision": "maybe"}, 400, "decision"},
			{"no decision", reviewer, map[string]any{"comment": "hmm"}, 400, "decision"},
			{"decision Approve", reviewer, map[string]any{"decision": "Approve"}, 400, "decision"},
			{"an unknown field", reviewer, map[string]any{"decision": "approve", "score": 5}, 400, "score"},
		} {
			wantErr(t, "review by "+tc.name, tc.client.Send("POST", fmt.Sprintf("/api/v1/promotions/%d/reviews", open.ID), tc.body), tc.status, tc.field, "")
		}
		wantErr(t, "review of a missing request", review(reviewer, 999999, "approve", ""), 404, "", "")
		wantErr(t, "review of id x", reviewer.Send("POST", "/api/v1/promotions/x/reviews", map[string]any{"decision": "approve"}), 400, "id", "")

		// cancellation: the requester or an admin
		wantErr(t, "cancel by a reviewer who did not request it", reviewer.Send("POST", fmt.Sprintf("/api/v1/promotions/%d/cancel", open.ID), map[string]any{"reason": "no"}), 403, "", "requester")
		wantErr(t, "cancel by a viewer", viewer.Send("POST", fmt.Sprintf("/api/v1/promotions/%d/cancel", open.ID), map[string]any{}), 403, "", "")
		other := e.user(t, "other-ci", auth.RoleContributor)
		wantErr(t, "cancel by another contributor", other.Send("POST", fmt.Sprintf("/api/v1/promotions/%d/cancel", open.ID), map[string]any{}), 403, "", "")
		wantErr(t, "cancel without a body", c.Do(apitest.Request{Method: "POST", Path: fmt.Sprintf("/api/v1/promotions/%d/cancel", open.ID), Body: "", ContentType: "application/json"}), 400, "body", "")
		wantErr(t, "cancel of a missing request", c.Send("POST", "/api/v1/promotions/999999/cancel", map[string]any{}), 404, "", "")
		res := c.Send("POST", fmt.Sprintf("/api/v1/promotions/%d/cancel", open.ID), map[string]any{"reason": "wrong version"})
		wantStatus(t, "cancel by the requester", res, http.StatusOK)
		var cancelled promotion.Promotion
		res.Decode(t, &cancelled)
		if cancelled.Status != "cancelled" || cancelled.DecidedAt == nil || cancelled.DecidedBy != userOf(auth.RoleContributor) || !strings.Contains(cancelled.Message, "wrong version") {
			t.Errorf("cancelled: %s", res.Body)
		}
		wantErr(t, "cancel twice", c.Send("POST", fmt.Sprintf("/api/v1/promotions/%d/cancel", open.ID), map[string]any{}), 409, "", "cancelled")
		wantErr(t, "review of a cancelled request", review(reviewer, open.ID, "approve", ""), 409, "", "cancelled")
		if holderVersion(stageOf(t, viewer, "m", "production")) != 0 {
			t.Error("a cancelled request moved production")
		}

		// an admin may cancel anyone's request
		open2 := promote(t, c, "m", 1, "production", "ship it again", false, "pending_approval")
		wantStatus(t, "cancel by an admin", admin.Send("POST", fmt.Sprintf("/api/v1/promotions/%d/cancel", open2.ID), map[string]any{}), http.StatusOK)

		// the version's author may not review, even as a reviewer
		wantStatus(t, "a reviewer registers v3", register(reviewer, "m", `{}`, file{"m.bin", strings.NewReader("3")}), http.StatusCreated)
		byAuthor := promote(t, c, "m", 3, "production", "the reviewer's own model", false, "pending_approval")
		if byAuthor.Author != userOf(auth.RoleReviewer) {
			t.Errorf("author of v3: %q", byAuthor.Author)
		}
		wantErr(t, "the author approving", review(reviewer, byAuthor.ID, "approve", "mine is good"), 403, "", "you registered")
		// a reviewer's rejection decides
		res = review(admin, byAuthor.ID, "reject", "not yet")
		wantStatus(t, "an admin rejecting", res, http.StatusOK)
		var rejected promotion.Promotion
		res.Decode(t, &rejected)
		if rejected.Status != "rejected" || rejected.DecidedBy != auth.BootstrapAdminName || len(rejected.Reviews) != 1 || rejected.Reviews[0].Decision != "reject" || !strings.Contains(rejected.Message, "not yet") {
			t.Errorf("rejected by a review: %s", res.Body)
		}
		wantErr(t, "review of a decided request", review(e.user(t, "third-reviewer", auth.RoleReviewer), byAuthor.ID, "approve", ""), 409, "", "rejected")
		wantErr(t, "the same reviewer, the other decision", review(admin, byAuthor.ID, "approve", ""), 409, "", "already")
		wantErr(t, "cancel of a decided request", c.Send("POST", fmt.Sprintf("/api/v1/promotions/%d/cancel", byAuthor.ID), map[string]any{}), 409, "", "")

		// an approval decides; the same approval again counts once
		open3 := promote(t, c, "m", 1, "production", "third time", false, "pending_approval")
		wantStatus(t, "approve", review(reviewer, open3.ID, "approve", "ok"), http.StatusOK)
		res = review(reviewer, open3.ID, "approve", "ok")
		wantStatus(t, "the same approval again", res, http.StatusOK)
		var again promotion.Promotion
		res.Decode(t, &again)
		if again.Status != "promoted" || again.Approvals != 1 || len(again.Reviews) != 1 {
			t.Errorf("the same approval again: %s", res.Body)
		}
		wantErr(t, "another reviewer after the decision", review(admin, open3.ID, "approve", ""), 409, "", "promoted")
	})
}

// --- idempotency ----------------------------------------------------------

// TestPromotionIdempotencyKey retries a promotion request and a report
// upload with their Idempotency-Key: one of each is made, and the retry
// gets the first answer.
func TestPromotionIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withMinIO)
	c := e.as(auth.RoleContributor)
	viewer := e.as(auth.RoleViewer)
	createModel(t, c, map[string]any{"name": "m"})
	wantStatus(t, "register", register(c, "m", `{}`, file{"m.bin", strings.NewReader("1")}), http.StatusCreated)

	// a report: the body streams (no Content-Length), fingerprinted with
	// its description
	report := recListV2(t, 0.2, -0.006)
	send := func(key, query string, body []byte) *apitest.Response {
		return postReport(c, "m", 1, query, io.MultiReader(bytes.NewReader(body)), withKey(key))
	}
	first, again := send("r-1", "suite=reclist", report), send("r-1", "suite=reclist", report)
	if first.Status != 201 || again.Status != 201 || string(first.Body) != string(again.Body) || again.Header.Get("Idempotent-Replayed") != "true" ||
		again.Header.Get("Location") != first.Header.Get("Location") {
		t.Fatalf("report retry: %d %s / %d %s (replayed %q)", first.Status, first.Body, again.Status, again.Body, again.Header.Get("Idempotent-Replayed"))
	}
	wantErr(t, "same key, other report", send("r-1", "suite=reclist", recListV2(t, 0.3, -0.006)), http.StatusUnprocessableEntity, "", "another request")
	wantErr(t, "same key, other suite", send("r-1", "suite=offline", report), http.StatusUnprocessableEntity, "", "another request")
	wantErr(t, "same key, one more byte", send("r-1", "suite=reclist", append(append([]byte{}, report...), '\n')), http.StatusUnprocessableEntity, "", "another request")
	// a refused report is not kept under its key: the retry runs again
	wantErr(t, "a bad report with a key", send("r-2", "suite=reclist", []byte("not json")), http.StatusUnprocessableEntity, "", "")
	wantErr(t, "the bad report again", send("r-2", "suite=reclist", []byte("not json")), http.StatusUnprocessableEntity, "", "")
	if res := send("r-2", "suite=reclist", report); res.Status != 201 || res.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("the key of a refused report, with a good one: %d %s", res.Status, res.Body)
	}
	if l := get[listPage[evaluation.Report]](t, viewer, evalPath("m", 1)); len(l.Items) != 2 {
		t.Errorf("%d reports after retries, want 2", len(l.Items))
	}
	if n := storedReports(t, e); n != 2 {
		t.Errorf("%d raw reports in the bucket, want 2", n)
	}

	// a promotion request
	wantStatus(t, "staging policy", putPolicy(e.as(auth.RoleAdmin), "m", "staging", map[string]any{"rules": []any{}}, ""), http.StatusOK)
	body := map[string]any{"stage": "production", "reason": "ci run 42"}
	post := func(key string, body any) *apitest.Response {
		return c.Do(apitest.Request{Method: "POST", Path: "/api/v1/models/m/versions/1/promotions", Body: body, Header: withKey(key)})
	}
	p1, p2 := post("p-1", body), post("p-1", body)
	if p1.Status != 201 || p2.Status != 201 || string(p1.Body) != string(p2.Body) || p2.Header.Get("Idempotent-Replayed") != "true" || p2.Header.Get("Location") != p1.Header.Get("Location") {
		t.Fatalf("promotion retry: %d %s / %d %s", p1.Status, p1.Body, p2.Status, p2.Body)
	}
	wantErr(t, "same key, other stage", post("p-1", map[string]any{"stage": "staging", "reason": "ci run 42"}), http.StatusUnprocessableEntity, "", "")
	// a promotion that moves the stage, retried, moves it once
	s1, s2 := post("p-2", map[string]any{"stage": "staging", "reason": "ci run 43"}), post("p-2", map[string]any{"stage": "staging", "reason": "ci run 43"})
	if s1.Status != 201 || string(s1.Body) != string(s2.Body) || s2.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("promotion to staging retried: %d / %d", s1.Status, s2.Status)
	}
	if l := get[listPage[promotion.Promotion]](t, viewer, "/api/v1/promotions?model=m"); len(l.Items) != 2 {
		t.Errorf("%d promotions after retries, want 2", len(l.Items))
	}
	if h := get[listPage[promotion.Move]](t, viewer, "/api/v1/models/m/stages/staging/history"); len(h.Items) != 1 {
		t.Errorf("%d staging moves after a retried promotion, want 1", len(h.Items))
	}
	// a review too
	var open promotion.Promotion
	p1.Decode(t, &open)
	rv := func() *apitest.Response {
		return e.as(auth.RoleReviewer).Do(apitest.Request{Method: "POST", Path: fmt.Sprintf("/api/v1/promotions/%d/reviews", open.ID),
			Body: map[string]any{"decision": "approve"}, Header: withKey("rv-1")})
	}
	if a, b := rv(), rv(); a.Status != 200 || string(a.Body) != string(b.Body) || b.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("review retried: %d / %d", a.Status, b.Status)
	}
}

// --- concurrency ----------------------------------------------------------

// TestStageMovesUnderConcurrentRequests sends promotions of one stage at
// the same moment, round after round. They are decided one after the
// other (ADR 0015), so the history must read as one chain in time: each
// move later than the one it replaced, the stage's holder "now" the
// version the stage points to, and "what held the stage at T" right for
// the time of every move.
func TestStageMovesUnderConcurrentRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	viewer := e.as(auth.RoleViewer)
	createModel(t, c, map[string]any{"name": "m"})
	wantStatus(t, "staging policy", putPolicy(e.as(auth.RoleAdmin), "m", "staging", map[string]any{"rules": []any{}}, ""), http.StatusOK)
	const versions, rounds = 6, 20
	for i := range versions {
		wantStatus(t, "register", register(c, "m", `{}`, file{"m.bin", strings.NewReader(fmt.Sprint(i))}), http.StatusCreated)
	}
	holderNow := func() int {
		h := get[map[string]any](t, viewer, "/api/v1/models/m/stages/staging/holder")
		v, _ := h["version"].(float64)
		return int(v)
	}
	var wrongNow []string
	for round := range rounds {
		var wg sync.WaitGroup
		codes := make([]int, versions)
		for v := 1; v <= versions; v++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[v-1] = requestPromotion(c, "m", v, map[string]any{"stage": "staging", "reason": fmt.Sprint("round ", round)}).Status
			}()
		}
		wg.Wait()
		for _, code := range codes {
			if code != http.StatusCreated {
				t.Fatalf("round %d: answers %v", round, codes)
			}
		}
		if got, want := holderNow(), holderVersion(stageOf(t, viewer, "m", "staging")); got != want {
			wrongNow = append(wrongNow, fmt.Sprintf("round %d: the stage points to v%d, holder?at=now answers v%d", round, want, got))
		}
	}
	if len(wrongNow) > 0 {
		t.Errorf("%d of %d rounds: GET …/holder (now) disagrees with GET …/stages/staging:\n%s", len(wrongNow), rounds, strings.Join(wrongNow, "\n"))
	}
	hist := get[listPage[promotion.Move]](t, viewer, "/api/v1/models/m/stages/staging/history?limit=200")
	if len(hist.Items) < rounds {
		t.Fatalf("%d moves in %d rounds", len(hist.Items), rounds)
	}
	var backwards, wrongAt []string
	for i, m := range hist.Items { // newest first
		if i+1 < len(hist.Items) {
			older := hist.Items[i+1]
			if m.PreviousVersion == nil || *m.PreviousVersion != *older.Version {
				t.Errorf("move %d replaced v%v, but the move before it set v%d", m.ID, m.PreviousVersion, *older.Version)
			}
			if m.MovedAt.Before(older.MovedAt) {
				backwards = append(backwards, fmt.Sprintf("move %d (v%d) at %s, after move %d (v%d) at %s",
					m.ID, *m.Version, m.MovedAt.Format(time.RFC3339Nano), older.ID, *older.Version, older.MovedAt.Format(time.RFC3339Nano)))
			}
		}
		var h struct {
			Move *promotion.Move `json:"move"`
		}
		c.Get("/api/v1/models/m/stages/staging/holder?at="+url.QueryEscape(m.MovedAt.Format(time.RFC3339Nano))).Decode(t, &h)
		if h.Move == nil || h.Move.ID != m.ID {
			wrongAt = append(wrongAt, fmt.Sprintf("at %s (move %d, v%d) it answers %+v", m.MovedAt.Format(time.RFC3339Nano), m.ID, *m.Version, h.Move))
		}
	}
	if len(backwards) > 0 {
		t.Errorf("%d of %d moves are dated before the move they replaced (moved_at is the transaction's start, not the move's time):\n%s",
			len(backwards), len(hist.Items), strings.Join(backwards[:min(len(backwards), 5)], "\n"))
	}
	if len(wrongAt) > 0 {
		t.Errorf("%d of %d moves: GET …/holder?at=<its moved_at> answers another move:\n%s", len(wrongAt), len(hist.Items), strings.Join(wrongAt[:min(len(wrongAt), 5)], "\n"))
	}
	if st := stageOf(t, viewer, "m", "staging"); st.Since == nil || !st.Since.Equal(hist.Items[0].MovedAt) {
		t.Errorf("the stage's since %v is not the time of its last move %v", st.Since, hist.Items[0].MovedAt)
	}
}

// --- pages ----------------------------------------------------------------

// TestPromotionPages walks the promotion list a page at a time, with and
// without filters.
func TestPromotionPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	viewer := e.as(auth.RoleViewer)
	for _, name := range []string{"a", "b"} {
		createModel(t, c, map[string]any{"name": name})
		wantStatus(t, "staging policy of "+name, putPolicy(e.as(auth.RoleAdmin), name, "staging", map[string]any{"rules": []any{}}, ""), http.StatusOK)
	}
	for i := range 3 {
		wantStatus(t, "register", register(c, "a", `{}`, file{"m.bin", strings.NewReader(fmt.Sprint(i))}), http.StatusCreated)
	}
	wantStatus(t, "register b/1", register(c, "b", `{}`, file{"m.bin", strings.NewReader("b")}), http.StatusCreated)
	var ids []int64
	for _, r := range []struct {
		model    string
		version  int
		stage    string
		decision string
	}{
		{"a", 1, "staging", "promoted"}, {"a", 2, "staging", "promoted"}, {"a", 1, "production", "pending_approval"},
		{"b", 1, "staging", "promoted"}, {"a", 3, "staging", "promoted"}, {"a", 1, "staging", "promoted"},
	} {
		ids = append(ids, promote(t, c, r.model, r.version, r.stage, "page test", false, r.decision).ID)
	}
	follow := func(query string) (got []int64, pages int) {
		t.Helper()
		cursor := ""
		for pages = 1; ; pages++ {
			p := get[listPage[promotion.Promotion]](t, viewer, "/api/v1/promotions?limit=1&"+query+"&cursor="+url.QueryEscape(cursor))
			if len(p.Items) > 1 {
				t.Fatalf("%s: %d items on a page of 1", query, len(p.Items))
			}
			for _, it := range p.Items {
				got = append(got, it.ID)
			}
			if p.NextCursor == "" || pages > 10 {
				return got, pages
			}
			cursor = p.NextCursor
		}
	}
	pick := func(idx ...int) string {
		var s []string
		for _, i := range idx {
			s = append(s, fmt.Sprint(ids[i]))
		}
		return strings.Join(s, ",")
	}
	str := func(ids []int64) string {
		var s []string
		for _, id := range ids {
			s = append(s, fmt.Sprint(id))
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct {
		query string
		want  string
	}{
		{"", pick(5, 4, 3, 2, 1, 0)},
		{"model=a", pick(5, 4, 2, 1, 0)},
		{"model=a&stage=staging", pick(5, 4, 1, 0)},
		{"model=a&version=1", pick(5, 2, 0)},
		{"status=pending_approval", pick(2)},
		{"status=promoted&model=b", pick(3)},
		{"model=nope", ""},
	} {
		got, pages := follow(tc.query)
		if str(got) != tc.want {
			t.Errorf("promotions?%s page by page: %v, want %s", tc.query, got, tc.want)
		}
		if want := max(len(got), 1); pages != want {
			t.Errorf("promotions?%s: %d pages, want %d", tc.query, pages, want)
		}
	}
	if p := get[listPage[promotion.Promotion]](t, viewer, "/api/v1/promotions"); len(p.Items) != 6 || p.NextCursor != "" || p.Items[0].Reviews != nil {
		t.Errorf("one page of every request: %d items, next %q", len(p.Items), p.NextCursor)
	}
	for _, tc := range []struct{ query, field string }{
		{"status=done", "status"},
		{"version=x", "version"},
		{"version=0", "version"},
		{"stage=Prod!", "stage"},
		{"owner=me", "owner"},
		{"limit=0", "limit"},
		{"limit=201", "limit"},
		{"cursor=garbage", "cursor"},
	} {
		wantErr(t, "promotions?"+tc.query, viewer.Get("/api/v1/promotions?"+tc.query), 400, tc.field, "")
	}
}
