package promotion_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/evaluation"
	"github.com/slipway-ml/slipway/internal/lineage"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/internal/promotion"
	"github.com/slipway-ml/slipway/internal/registry"
	"github.com/slipway-ml/slipway/internal/testenv"
)

type env struct {
	t     *testing.T
	db    *testenv.DB
	reg   *registry.Service
	lin   *lineage.Service
	evals *evaluation.Service
	promo *promotion.Service
	users map[string]context.Context // a context acting as each user
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := testenv.NewDB(t)
	store, err := blob.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, reg: registry.NewService(db.Pool, store), lin: lineage.NewService(db.Pool, store),
		evals: evaluation.NewService(db.Pool, store), promo: promotion.NewService(db.Pool, store), users: map[string]context.Context{}}
	authSvc := auth.NewService(db.Pool, auth.Config{})
	for name, role := range map[string]auth.Role{"ci": auth.RoleContributor, "alice": auth.RoleReviewer, "bob": auth.RoleReviewer,
		"admin": auth.RoleAdmin, "viewer": auth.RoleViewer} {
		u, err := authSvc.CreateUser(context.Background(), auth.NewUser{Name: name, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		id := auth.Identity{User: u}
		e.users[name] = audit.WithActor(auth.WithIdentity(context.Background(), id), id.Actor())
	}
	return e
}

func (e *env) as(user string) context.Context { return e.users[user] }

// version registers a version of session-recs as ci, trained on
// sessions-train/1, with a RecList v2 report of the given figures on
// sessions-test/1.
func (e *env) version(hitRate, mred float64) int {
	e.t.Helper()
	ctx := e.as("ci")
	up, err := e.reg.BeginUpload(ctx, "session-recs", registry.NewVersion{
		ModelLineage: lineage.ModelLineage{TrainingData: []lineage.IORef{{Dataset: "sessions-train", Version: 1}}}})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := up.Add(ctx, "model.bin", "", strings.NewReader(fmt.Sprint(hitRate))); err != nil {
		e.t.Fatal(err)
	}
	v, err := up.Commit(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	e.report(v.Version, "sessions-test", recList(hitRate, mred))
	return v.Version
}

func recList(hitRate, mred float64) string {
	return fmt.Sprintf(`{"metadata": {"model_name": "SessionRecs", "reclist": "DFSessionRecList"},
	 "data": [{"name": "HIT_RATE", "description": "", "result": %v, "display_type": "CHART_TYPE.SCALAR"},
	          {"name": "MRED_COUNTRY", "description": "", "result": {"mred": %v, "US": 0.78}, "display_type": "CHART_TYPE.BARS"}]}`, hitRate, mred)
}

func (e *env) report(version int, dataset, body string) evaluation.Report {
	e.t.Helper()
	r, err := e.evals.Attach(e.as("ci"), "session-recs", version,
		evaluation.NewReport{Suite: "reclist", Dataset: dataset, DatasetVersion: 1}, strings.NewReader(body))
	if err != nil {
		e.t.Fatalf("attach report to v%d: %v", version, err)
	}
	return r
}

func (e *env) request(user string, version int, stage string) promotion.Promotion {
	e.t.Helper()
	p, err := e.promo.Request(e.as(user), "session-recs", version, promotion.NewPromotion{Stage: stage, Reason: "nightly retrain"})
	if err != nil {
		e.t.Fatalf("request v%d → %s: %v", version, stage, err)
	}
	return p
}

func (e *env) holder(stage string) *int {
	e.t.Helper()
	st, err := e.promo.GetStage(context.Background(), "session-recs", stage)
	if err != nil {
		e.t.Fatal(err)
	}
	return st.Version
}

func f(v float64) *float64 { return &v }

// setup makes the datasets and the model with the scenario's policies.
func setup(t *testing.T) *env {
	e := newEnv(t)
	ctx := e.as("ci")
	for _, name := range []string{"sessions-train", "sessions-test"} {
		if _, err := e.lin.CreateDataset(ctx, lineage.NewDataset{Name: name}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.lin.CreateDatasetVersion(ctx, name, lineage.NewDatasetVersion{Type: lineage.TypeObject,
			Reference: lineage.Reference{URI: "s3://data/" + name + ".parquet"}, SHA256: strings.Repeat("ab", 32)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.reg.CreateModel(ctx, registry.NewModel{Name: "session-recs"}); err != nil {
		t.Fatal(err)
	}
	floor := promotion.Rule{Kind: promotion.KindThreshold, Suite: "reclist", Metric: "HIT_RATE", Op: ">=", Value: f(0.015)}
	if _, err := e.promo.PutPolicy(e.as("admin"), "session-recs", "staging", promotion.Policy{Rules: []promotion.Rule{
		{Kind: promotion.KindRequiredSuite, Suite: "reclist"}, floor, {Kind: promotion.KindApprovals, Count: 0}}}, "scenario", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.promo.PutPolicy(e.as("admin"), "session-recs", "production", promotion.Policy{Rules: []promotion.Rule{
		{Kind: promotion.KindRequiredSuite, Suite: "reclist"},
		{Kind: promotion.KindNoLeakage, Suite: "reclist"},
		floor,
		{Kind: promotion.KindChampion, Suite: "reclist", Metric: "HIT_RATE", Direction: "higher_is_better", Tolerance: f(0.02), ToleranceType: "relative"},
		{Kind: promotion.KindChampion, Suite: "reclist", Metric: "MRED_COUNTRY.mred", Direction: "higher_is_better", Tolerance: f(0.001)},
		{Kind: promotion.KindApprovals, Count: 1},
	}}, "scenario", nil); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestAcceptanceScenario(t *testing.T) {
	t.Parallel()
	e := setup(t)

	// v1: staging promoted at once; production waits for a reviewer
	v1 := e.version(0.210, -0.0061)
	if p := e.request("ci", v1, "staging"); p.Decision != promotion.DecisionPromoted || p.Status != promotion.StatusPromoted {
		t.Fatalf("v1 → staging: %s (%s)", p.Decision, p.Message)
	}
	p1 := e.request("ci", v1, "production")
	if p1.Decision != promotion.DecisionPendingApproval {
		t.Fatalf("v1 → production: %s (%s)", p1.Decision, p1.Message)
	}
	if h := e.holder("production"); h != nil {
		t.Fatalf("production moved before the approval: v%d", *h)
	}
	// the requester (ci is a contributor: give the same user reviewer
	// rights through another request to check four eyes below)
	if _, err := e.promo.Review(e.as("ci"), p1.ID, promotion.NewReview{Decision: "approve"}); !errors.Is(err, errs.ErrForbidden) {
		t.Fatalf("a contributor approved: %v", err)
	}
	p1, err := e.promo.Review(e.as("alice"), p1.ID, promotion.NewReview{Decision: "approve", Comment: "looks good"})
	if err != nil || p1.Status != promotion.StatusPromoted || p1.Approvals != 1 || len(p1.Evaluations) != 2 {
		t.Fatalf("alice's approval: %+v, %v", p1, err)
	}
	if h := e.holder("production"); h == nil || *h != v1 {
		t.Fatalf("production holds %v after the approval, want v%d", h, v1)
	}
	// a second, identical approval counts once; a reversal is refused
	if again, err := e.promo.Review(e.as("alice"), p1.ID, promotion.NewReview{Decision: "approve"}); err != nil || again.Approvals != 1 {
		t.Errorf("a repeated approval: %d approvals, %v", again.Approvals, err)
	}

	// the requester approving their own request: alice requests, alice reviews
	v9 := e.version(0.22, -0.006)
	p9 := e.request("alice", v9, "production")
	if _, err := e.promo.Review(e.as("alice"), p9.ID, promotion.NewReview{Decision: "approve"}); !errors.Is(err, errs.ErrForbidden) {
		t.Fatalf("the requester approved their own request: %v", err)
	}
	if _, err := e.promo.Cancel(e.as("alice"), p9.ID, "not this one"); err != nil {
		t.Fatal(err)
	}

	// v2: better hit rate, MRED worse by 0.003 → rejected, naming the rule
	v2 := e.version(0.230, -0.0091)
	p2 := e.request("ci", v2, "production")
	if p2.Decision != promotion.DecisionRejected {
		t.Fatalf("v2 → production: %s", p2.Decision)
	}
	var mred *promotion.RuleResult
	for i, r := range p2.Rules {
		if r.Metric == "MRED_COUNTRY.mred" {
			mred = &p2.Rules[i]
		}
	}
	if mred == nil || mred.Passed || mred.ComparedTo == nil || mred.ComparedTo.Version != v1 || mred.Observed == nil || mred.Threshold == nil {
		t.Fatalf("the MRED rule of v2: %+v", mred)
	}
	if h := e.holder("production"); *h != v1 {
		t.Fatalf("a rejected request moved production to v%d", *h)
	}

	// v3: even staging refuses it
	v3 := e.version(0.012, -0.0061)
	if p := e.request("ci", v3, "staging"); p.Decision != promotion.DecisionRejected || !strings.Contains(p.Message, "HIT_RATE") {
		t.Fatalf("v3 → staging: %s (%s)", p.Decision, p.Message)
	}

	// v4 passes and waits; meanwhile v5 is promoted through its own
	// request; approving v4 re-evaluates against v5
	v4 := e.version(0.215, -0.0060)
	p4 := e.request("ci", v4, "production")
	if p4.Decision != promotion.DecisionPendingApproval {
		t.Fatalf("v4 → production: %s (%s)", p4.Decision, p4.Message)
	}
	v5 := e.version(0.260, -0.0050)
	p5 := e.request("ci", v5, "production")
	if _, err := e.promo.Review(e.as("bob"), p5.ID, promotion.NewReview{Decision: "approve"}); err != nil {
		t.Fatal(err)
	}
	if h := e.holder("production"); *h != v5 {
		t.Fatalf("production holds v%d, want v%d", *h, v5)
	}
	p4, err = e.promo.Review(e.as("alice"), p4.ID, promotion.NewReview{Decision: "approve"})
	if err != nil {
		t.Fatal(err)
	}
	// 0.215 < 0.26 × 0.98: worse than the new champion
	if p4.Status != promotion.StatusRejected || p4.Champion == nil || *p4.Champion != v5 {
		t.Fatalf("v4 approved after v5: %s against %v (%s)", p4.Status, p4.Champion, p4.Message)
	}
	if h := e.holder("production"); *h != v5 {
		t.Fatalf("production holds v%d after v4's rejection, want v%d", *h, v5)
	}

	// rollback to v1 by an admin override, recorded with the skipped rules
	rb, err := e.promo.Request(e.as("admin"), "session-recs", v1, promotion.NewPromotion{Stage: "production", Reason: "v5 breaks checkout", Override: true})
	if err != nil || rb.Status != promotion.StatusPromoted || !rb.Override || !strings.Contains(rb.Message, "skipping") {
		t.Fatalf("override rollback: %+v, %v", rb, err)
	}
	if _, err := e.promo.Request(e.as("ci"), "session-recs", v1, promotion.NewPromotion{Stage: "production", Reason: "x", Override: true}); !errors.Is(err, errs.ErrForbidden) {
		t.Fatalf("a contributor's override: %v", err)
	}
	moves, _, err := e.promo.History(context.Background(), "session-recs", "production", pagination.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var seq []int
	for i := len(moves) - 1; i >= 0; i-- {
		seq = append(seq, *moves[i].Version)
	}
	if fmt.Sprint(seq) != fmt.Sprint([]int{v1, v5, v1}) || moves[0].Reason != "v5 breaks checkout" || !moves[0].Override || moves[0].MovedBy != "admin" {
		t.Fatalf("production history %v, newest %+v", seq, moves[0])
	}
	// what held production at a time between the moves
	at, err := e.promo.HolderAt(context.Background(), "session-recs", "production", moves[1].MovedAt.Add(time.Nanosecond))
	if err != nil || at == nil || *at.Version != v5 {
		t.Fatalf("holder between the moves: %+v, %v", at, err)
	}
	if at, err := e.promo.HolderAt(context.Background(), "session-recs", "production", moves[2].MovedAt.Add(-time.Hour)); err != nil || at != nil {
		t.Fatalf("holder before any move: %+v, %v", at, err)
	}

	// the open queue holds nothing now; the outbox has the story
	open, _, err := e.promo.ListPromotions(context.Background(), promotion.Filter{Status: promotion.StatusPendingApproval}, pagination.Page{})
	if err != nil || len(open) != 0 {
		t.Errorf("open requests: %d, %v", len(open), err)
	}
	var moved int
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE type = 'stage.moved'`).Scan(&moved); err != nil || moved != 4 {
		t.Errorf("stage.moved events: %d, %v (staging v1, production v1, v5, v1)", moved, err)
	}
}

func TestMissingEvidenceAndLeakage(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := e.as("ci")
	up, _ := e.reg.BeginUpload(ctx, "session-recs", registry.NewVersion{
		ModelLineage: lineage.ModelLineage{TrainingData: []lineage.IORef{{Dataset: "sessions-train", Version: 1}}}})
	up.Add(ctx, "model.bin", "", strings.NewReader("w"))
	v, err := up.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := e.request("ci", v.Version, "production")
	if p.Decision != promotion.DecisionRejected || !strings.Contains(p.Rules[0].Message, "missing evidence") {
		t.Fatalf("no report: %s %+v", p.Decision, p.Rules[0])
	}
	// evaluated on its own training data
	e.report(v.Version, "sessions-train", recList(0.3, -0.001))
	p = e.request("ci", v.Version, "production")
	if p.Decision != promotion.DecisionRejected || p.Rules[1].Passed || !strings.Contains(p.Rules[1].Message, "leakage") {
		t.Fatalf("leakage: %s %+v", p.Decision, p.Rules[1])
	}
}

// Two requests of one stage decided at the same moment are serialised:
// one holder, a history where each move names the holder before it.
func TestConcurrentPromotions(t *testing.T) {
	t.Parallel()
	e := setup(t)
	if _, err := e.promo.PutPolicy(e.as("admin"), "session-recs", "production", promotion.Policy{Rules: []promotion.Rule{}}, "open", nil); err != nil {
		t.Fatal(err)
	}
	a, b := e.version(0.2, -0.006), e.version(0.21, -0.006)
	rounds := 100
	if testing.Short() {
		rounds = 20
	}
	for round := range rounds {
		var wg sync.WaitGroup
		results := make([]promotion.Promotion, 2)
		errs := make([]error, 2)
		for i, v := range []int{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = e.promo.Request(e.as("ci"), "session-recs", v, promotion.NewPromotion{Stage: "production", Reason: fmt.Sprint("round ", round)})
			}()
		}
		wg.Wait()
		for i := range errs {
			if errs[i] != nil {
				t.Fatalf("round %d: %v", round, errs[i])
			}
		}
	}
	// every move's previous holder is the version the move before set
	rows, err := e.db.Pool.Query(context.Background(), `
		SELECT version_id, previous_version_id FROM stage_moves WHERE stage_id = (
			SELECT s.id FROM stages s JOIN models m ON m.id = s.model_id WHERE m.name = 'session-recs' AND s.name = 'production')
		ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var last *int64
	n := 0
	for rows.Next() {
		var v int64
		var prev *int64
		if err := rows.Scan(&v, &prev); err != nil {
			t.Fatal(err)
		}
		if (last == nil) != (prev == nil) || last != nil && *last != *prev {
			t.Fatalf("move %d replaced %v, but the holder was %v", n, prev, last)
		}
		last = &v
		n++
	}
	if n == 0 {
		t.Fatal("no move recorded")
	}
	var holder int64
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT version_id FROM stages s JOIN models m ON m.id = s.model_id
		WHERE m.name = 'session-recs' AND s.name = 'production'`).Scan(&holder); err != nil || holder != *last {
		t.Fatalf("the stage points to %d, the history ends with %d (%v)", holder, *last, err)
	}
}
