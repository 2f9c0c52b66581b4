// Package demo loads a small, realistic story into an empty Slipway, so
// that a first start shows the product at work: a recommender's training
// data from the warehouse and its held-out test set with data-quality
// results, a Metaflow run, model versions with RecList reports (one better
// overall but worse for one country), promotion policies, a production
// champion, a request waiting for review, a batch-predictions model and a
// webhook endpoint for a serving layer.
//
// Everything goes through the domain services the API uses, as the users
// the story names, so the demo is audited, evented and validated like any
// other data; nothing is written to the database directly.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/evaluation"
	"github.com/slipway-ml/slipway/internal/lineage"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/internal/promotion"
	"github.com/slipway-ml/slipway/internal/registry"
	"github.com/slipway-ml/slipway/internal/webhook"
)

// Services are the domain services the story is told through.
type Services struct {
	Auth        *auth.Service
	Registry    *registry.Service
	Lineage     *lineage.Service
	Evaluations *evaluation.Service
	Promotions  *promotion.Service
	// Webhooks may be nil (no SLIPWAY_WEBHOOK_KEY): no endpoint is made.
	Webhooks *webhook.Service
}

// Options say where the serving layer listens.
type Options struct {
	// WebhookURL, when set, gets an endpoint for stage moves of the demo
	// models (e.g. the example receiver, http://127.0.0.1:8091/hooks).
	WebhookURL string
}

// Result is what was made.
type Result struct {
	// Skipped says the registry was not empty: nothing was loaded.
	Skipped bool
	Models  []string
	// Pending is the promotion request left waiting for a review.
	Pending int64
	// WebhookEndpoint and WebhookSecret are the endpoint made for
	// Options.WebhookURL; the secret is shown once, as in the UI.
	WebhookEndpoint int64
	WebhookSecret   string
}

// Names of what the story makes.
const (
	Recommender   = "session-recs"
	BatchModel    = "churn-scores"
	TrainData     = "warehouse.analytics.sessions_train"
	HoldoutData   = "warehouse.analytics.sessions_holdout"
	CustomersData = "warehouse.analytics.customer_features"
	Suite         = "reclist"
	BehaviourSuit = "behaviour"
	// users of the story (token-only: none can sign in with a password): a
	// CI pipeline, a data scientist who reviews, and the data platform's
	// dbt job; an existing admin writes the policies and the endpoint
	CIUser       = "ci-pipeline"
	ReviewerUser = "maria"
	DataUser     = "dbt-cloud"
)

// Seed loads the story when no model is registered yet; otherwise it does
// nothing and says so (Result.Skipped). It is not atomic across services:
// a failure part-way leaves what was made so far, each piece whole, and a
// second run then skips; start from an empty database to try again.
func Seed(ctx context.Context, s Services, opt Options) (Result, error) {
	n, err := s.Registry.CountModels(ctx)
	if err != nil {
		return Result{}, err
	}
	if n > 0 {
		return Result{Skipped: true}, nil
	}
	st := &story{Services: s, opt: opt}
	if err := st.run(ctx); err != nil {
		return Result{}, fmt.Errorf("demo: %w", err)
	}
	return st.res, nil
}

type story struct {
	Services
	opt   Options
	res   Result
	ci    context.Context
	rev   context.Context
	data  context.Context
	admin context.Context
}

func (st *story) run(ctx context.Context) error {
	var err error
	if st.admin, err = st.anAdmin(ctx); err != nil {
		return err
	}
	if st.ci, err = st.as(ctx, CIUser, auth.RoleContributor); err != nil {
		return err
	}
	if st.rev, err = st.as(ctx, ReviewerUser, auth.RoleReviewer); err != nil {
		return err
	}
	if st.data, err = st.as(ctx, DataUser, auth.RoleContributor); err != nil {
		return err
	}
	steps := []struct {
		what string
		fn   func() error
	}{
		{"datasets", st.datasets},
		{"models", st.models},
		{"webhook endpoint", st.webhook},
		{"policies", st.policies},
		{"the recommender's history", st.recommenderHistory},
		{"the batch model", st.batchModel},
		{"the waiting request", st.challenger},
		{"a late quality check", st.lateQualityCheck},
	}
	for _, step := range steps {
		if err := step.fn(); err != nil {
			return fmt.Errorf("%s: %w", step.what, err)
		}
	}
	st.res.Models = []string{Recommender, BatchModel}
	return nil
}

// anAdmin returns ctx acting as the first admin. The story makes no admin
// of its own: the first admin of an installation is the bootstrap admin,
// made only when no admin exists.
func (st *story) anAdmin(ctx context.Context) (context.Context, error) {
	p := pagination.Page{Limit: pagination.MaxLimit}
	for {
		users, next, err := st.Auth.ListUsers(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			if u.Role == auth.RoleAdmin && !u.Disabled {
				id := auth.Identity{User: u}
				return audit.WithActor(auth.WithIdentity(ctx, id), id.Actor()), nil
			}
		}
		if next == "" {
			return nil, errors.New("no admin to write the policies: set SLIPWAY_BOOTSTRAP_TOKEN, or create one with `slipway users create --role admin`")
		}
		p.Cursor = next
	}
}

// as returns ctx acting as the named user, creating a token-only user of
// role when there is none.
func (st *story) as(ctx context.Context, name string, role auth.Role) (context.Context, error) {
	u, err := st.Auth.GetUser(ctx, name)
	if errors.Is(err, errs.ErrNotFound) {
		u, err = st.Auth.CreateUser(audit.WithActor(ctx, audit.Actor{Name: "slipway demo"}), auth.NewUser{Name: name, Role: role})
	}
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", name, err)
	}
	id := auth.Identity{User: u}
	return audit.WithActor(auth.WithIdentity(ctx, id), id.Actor()), nil
}

func ptr[T any](v T) *T { return &v }

func raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// trainSQL is the query the training snapshots are read with.
const trainSQL = `SELECT session_id, user_id, country, item_ids, event_ts
FROM analytics.sessions
WHERE event_ts >= :from AND event_ts < :to AND NOT is_bot`

var sessionColumns = []lineage.Column{
	{Name: "session_id", Type: "string", Nullable: ptr(false)},
	{Name: "user_id", Type: "string", Nullable: ptr(false)},
	{Name: "country", Type: "string", Nullable: ptr(true)},
	{Name: "item_ids", Type: "array<string>", Nullable: ptr(false)},
	{Name: "event_ts", Type: "timestamp", Nullable: ptr(false)},
}

func (st *story) datasets() error {
	for _, d := range []lineage.NewDataset{
		{Name: TrainData, Owner: "data-platform", Description: "Browsing sessions for training the session recommender: a dbt model of the warehouse, snapshotted monthly.", Tags: map[string]string{"team": "recs", "source": "snowflake"}},
		{Name: HoldoutData, Owner: "data-platform", Description: "Held-out sessions, never used for training: the offline evaluation set.", Tags: map[string]string{"team": "recs", "split": "test"}},
		{Name: CustomersData, Owner: "growth", Description: "Customer features for churn scoring, refreshed nightly by dbt.", Tags: map[string]string{"team": "growth"}},
	} {
		if _, err := st.Lineage.CreateDataset(st.data, d); err != nil {
			return err
		}
	}
	month := func(m time.Month) time.Time { return time.Date(2026, m, 1, 0, 0, 0, 0, time.UTC) }
	for i, m := range []time.Month{time.September, time.October} {
		v, err := st.Lineage.CreateDatasetVersion(st.data, TrainData, lineage.NewDatasetVersion{
			Type: lineage.TypeWarehouseQuery,
			Reference: lineage.Reference{Warehouse: "snowflake://acme/ANALYTICS", SQL: trainSQL, AsOf: ptr(month(m + 1)),
				Parameters: raw(map[string]string{"from": month(m - 2).Format("2006-01-02"), "to": month(m + 1).Format("2006-01-02")})},
			Schema: sessionColumns, RowCount: ptr(int64(41_800_000 + 2_300_000*i)),
			Statistics:  lineage.Statistics{"country": {"null_fraction": 0.004 - 0.003*float64(i), "distinct": 4.0}},
			Split:       lineage.Split{Role: "train", Strategy: "time", Boundaries: raw(map[string]string{"from": month(m - 2).Format("2006-01-02"), "to": month(m + 1).Format("2006-01-02")})},
			Description: fmt.Sprintf("Three months of sessions up to %s.", month(m+1).Format("2 January 2006")),
		})
		if err != nil {
			return err
		}
		if _, err := st.Lineage.AddQualityResult(st.data, TrainData, v.Version, lineage.NewQualityResult{
			Suite: "dbt tests", Producer: "dbt-core 1.9", Passed: ptr(true),
			Statistics: raw(map[string]int{"tests": 14, "passed": 14}),
		}); err != nil {
			return err
		}
	}
	v, err := st.Lineage.CreateDatasetVersion(st.data, HoldoutData, lineage.NewDatasetVersion{
		Type: lineage.TypeWarehouseQuery,
		Reference: lineage.Reference{Warehouse: "snowflake://acme/ANALYTICS", SQL: strings.Replace(trainSQL, "NOT is_bot", "NOT is_bot AND holdout", 1),
			AsOf: ptr(month(time.August)), Parameters: raw(map[string]string{"from": "2026-07-01", "to": "2026-08-01"})},
		Schema: sessionColumns, RowCount: ptr(int64(1_250_000)),
		Split: lineage.Split{Role: "test", Strategy: "group", Description: "5% of users, held out by user id hash"},
	})
	if err != nil {
		return err
	}
	if _, err := st.Lineage.AddQualityResult(st.data, HoldoutData, v.Version, lineage.NewQualityResult{
		Suite: "holdout_expectations", Producer: "great_expectations 1.3", Passed: ptr(true),
		Statistics: raw(map[string]int{"evaluated_expectations": 9, "successful_expectations": 9}),
	}); err != nil {
		return err
	}
	cv, err := st.Lineage.CreateDatasetVersion(st.data, CustomersData, lineage.NewDatasetVersion{
		Type:      lineage.TypeDBTRun,
		Reference: lineage.Reference{Project: "growth_models", JobID: "70412", RunID: "318877402", Target: "prod", ManifestSHA256: strings.Repeat("3f", 32)},
		RowCount:  ptr(int64(2_140_000)),
	})
	if err != nil {
		return err
	}
	_, err = st.Lineage.AddQualityResult(st.data, CustomersData, cv.Version, lineage.NewQualityResult{
		Suite: "dbt tests", Producer: "dbt-core 1.9", Passed: ptr(true), Statistics: raw(map[string]int{"tests": 22, "passed": 22}),
	})
	return err
}

func (st *story) models() error {
	for _, m := range []registry.NewModel{
		{Name: Recommender, Owner: "recs-team", Description: "Next-item recommendations for the storefront's session carousel: a two-tower model over the last 20 items viewed.", Tags: registry.Tags{"team": "recs", "serving": "realtime"}},
		{Name: BatchModel, Owner: "growth", Description: "Nightly churn probability for every active customer, written to the warehouse for the CRM.", Tags: registry.Tags{"team": "growth", "serving": "batch"}},
	} {
		if _, err := st.Registry.CreateModel(st.ci, m); err != nil {
			return err
		}
	}
	return nil
}

func (st *story) webhook() error {
	if st.opt.WebhookURL == "" || st.Webhooks == nil {
		return nil
	}
	ep, secret, err := st.Webhooks.Create(st.admin, webhook.NewEndpoint{
		URL:         st.opt.WebhookURL,
		Description: "the serving layer's receiver (examples/serving-receiver): loads what production holds",
		EventTypes:  []string{"stage.moved"},
		Models:      []string{Recommender, BatchModel},
	})
	if err != nil {
		return err
	}
	st.res.WebhookEndpoint, st.res.WebhookSecret = ep.ID, secret
	return nil
}

func (st *story) policies() error {
	staging := promotion.Policy{Rules: []promotion.Rule{
		{Kind: promotion.KindRequiredSuite, Suite: Suite, Dataset: HoldoutData},
		{Kind: promotion.KindNoLeakage, Suite: Suite},
		{Kind: promotion.KindThreshold, Suite: Suite, Metric: "HIT_RATE", Op: ">=", Value: ptr(0.20)},
		{Kind: promotion.KindTestsPassed, Suite: BehaviourSuit},
	}, Directions: map[string]string{
		"HIT_RATE_BY_COUNTRY": "higher_is_better", "MRR": "higher_is_better", "POPULARITY_BIAS": "lower_is_better",
		// RecList's MRED_COUNTRY holds miss rates per country (lower is
		// better) and their equality difference, mred (closer to 0 is better)
		"MRED_COUNTRY": "lower_is_better", "MRED_COUNTRY.mred": "higher_is_better",
	}}
	production := promotion.Policy{Rules: []promotion.Rule{
		{Kind: promotion.KindChampion, Suite: Suite, Metric: "HIT_RATE", Direction: "higher_is_better", Tolerance: ptr(0.01), ToleranceType: "relative"},
		{Kind: promotion.KindThreshold, Suite: Suite, Metric: "MRR", Op: ">=", Value: ptr(0.10)},
		{Kind: promotion.KindPrerequisite, Stage: "staging"},
		{Kind: promotion.KindTrainingQuality},
		{Kind: promotion.KindApprovals, Count: 1},
	}, Directions: staging.Directions}
	if _, err := st.Promotions.PutPolicy(st.admin, Recommender, "staging", staging, "offline checks before any traffic", nil); err != nil {
		return err
	}
	if _, err := st.Promotions.PutPolicy(st.admin, Recommender, "production", production, "no regression beyond 1% of hit rate; a reviewer signs off", nil); err != nil {
		return err
	}
	_, err := st.Promotions.PutPolicy(st.admin, BatchModel, "production", promotion.Policy{Rules: []promotion.Rule{
		{Kind: promotion.KindTrainingQuality},
		{Kind: promotion.KindApprovals, Count: 1},
	}}, "clean inputs and a reviewer", nil)
	return err
}

// a version of the recommender in the story
type recVersion struct {
	trainedOn int // version of TrainData
	note      string
	commit    string
	hitRate   float64
	mrr       float64
	countries map[string]float64 // hit rate by country
	popBias   float64
	tests     map[string]bool
	run       *lineage.RunKey
}

var countries = []string{"US", "DE", "UK", "IT"}

// reclistReport writes a RecList 2.x report of v.
func reclistReport(v recVersion) []byte {
	byCountry := map[string]float64{}
	var sum float64
	for _, c := range countries {
		byCountry[c] = v.countries[c]
		sum += v.countries[c]
	}
	mean := sum / float64(len(countries))
	// miss rate equality difference: minus the mean distance of each
	// country's miss rate from the overall one
	mred := map[string]float64{"mr": round(1-mean, 4)}
	var dev float64
	for _, c := range countries {
		mred[c] = round(1-v.countries[c], 4)
		dev += abs(v.countries[c] - mean)
	}
	mred["mred"] = round(-dev/float64(len(countries)), 4)
	return raw(map[string]any{
		"metadata": map[string]any{
			"finish_time": "2026-11-20 03:12:45", "model_name": "SessionRecsTwoTower", "reclist": "SessionRecsRecList",
			"tests": []string{"hit_rate_at_20", "mrr_at_20", "hit_rate_by_country", "mred_country", "popularity_bias"},
		},
		"data": []map[string]any{
			{"name": "HIT_RATE", "description": "Hit rate at 20", "result": v.hitRate, "display_type": "CHART_TYPE.SCALAR"},
			{"name": "MRR", "description": "Mean reciprocal rank at 20", "result": v.mrr, "display_type": "CHART_TYPE.SCALAR"},
			{"name": "HIT_RATE_BY_COUNTRY", "description": "Hit rate at 20 by the user's country", "result": byCountry, "display_type": "CHART_TYPE.BARS"},
			{"name": "MRED_COUNTRY", "description": "Miss rate equality difference across countries", "result": mred, "display_type": "CHART_TYPE.BARS"},
			{"name": "POPULARITY_BIAS", "description": "Share of recommendations from the top 1% of items", "result": v.popBias, "display_type": "CHART_TYPE.SCALAR"},
		},
	})
}

func behaviourReport(v recVersion) []byte {
	var tests []map[string]any
	for _, name := range []string{"no_empty_recommendations", "no_blocked_items", "no_repeat_of_last_item"} {
		t := map[string]any{"name": name, "passed": v.tests[name]}
		if !v.tests[name] {
			t["message"] = "0.7% of sessions failed"
		}
		tests = append(tests, t)
	}
	return raw(map[string]any{"format": "slipway/v1", "metrics": map[string]any{}, "tests": tests, "suite": BehaviourSuit})
}

func round(x float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(x*p+0.5*sign(x))) / p
}

func sign(x float64) float64 {
	if x < 0 {
		return -1
	}
	return 1
}

func abs(x float64) float64 { return x * sign(x) }

var allPass = map[string]bool{"no_empty_recommendations": true, "no_blocked_items": true, "no_repeat_of_last_item": true}

// register registers version v of the recommender with its files and its
// reports, and returns its number.
func (st *story) register(v recVersion) (int, error) {
	nv := registry.NewVersion{
		Kind: "model", Framework: "pytorch", Flavor: "torchscript", Description: v.note,
		Params: raw(map[string]any{"embedding_dim": 128, "history_length": 20, "negatives": 100, "epochs": 8, "lr": 0.0005}),
		Tags:   registry.Tags{"architecture": "two-tower"},
		Source: registry.Source{GitRepo: "https://github.com/acme/recs", GitCommit: v.commit, GitDirty: ptr(false), Image: "registry.acme.internal/recs/train@sha256:" + strings.Repeat("a1", 32)},
	}
	if v.run != nil {
		nv.ModelLineage.Run = v.run
		nv.Source.Orchestrator, nv.Source.RunID = v.run.Orchestrator, v.run.ExternalID
	} else {
		nv.ModelLineage.TrainingData = []lineage.IORef{{Dataset: TrainData, Version: v.trainedOn}}
	}
	up, err := st.Registry.BeginUpload(st.ci, Recommender, nv)
	if err != nil {
		return 0, err
	}
	files := []struct{ path, ctype, body string }{
		{"model.pt", "application/octet-stream", weights(v.commit, 48<<10)},
		{"config.json", "application/json", string(raw(map[string]any{"embedding_dim": 128, "history_length": 20, "top_k": 20, "item_vocab": "items-2026-11.txt"}))},
		{"requirements.txt", "text/plain", "torch==2.5.1\nnumpy==2.1.3\n"},
	}
	for _, f := range files {
		if _, err := up.Add(st.ci, f.path, f.ctype, strings.NewReader(f.body)); err != nil {
			up.Abort(st.ci)
			return 0, err
		}
	}
	ver, err := up.Commit(st.ci)
	if err != nil {
		return 0, err
	}
	if _, err := st.Evaluations.Attach(st.ci, Recommender, ver.Version, evaluation.NewReport{
		Suite: Suite, Producer: "reclist 2.1", Dataset: HoldoutData, DatasetVersion: 1,
	}, strings.NewReader(string(reclistReport(v)))); err != nil {
		return 0, err
	}
	if _, err := st.Evaluations.Attach(st.ci, Recommender, ver.Version, evaluation.NewReport{
		Suite: BehaviourSuit, Producer: "acme behavioural checks", Dataset: HoldoutData, DatasetVersion: 1,
	}, strings.NewReader(string(behaviourReport(v)))); err != nil {
		return 0, err
	}
	return ver.Version, nil
}

// weights makes n bytes that stand for a model's weights, the same for the
// same seed.
func weights(seed string, n int) string {
	var b strings.Builder
	b.Grow(n)
	x := uint64(1469598103934665603)
	for _, c := range seed {
		x = (x ^ uint64(c)) * 1099511628211
	}
	for b.Len() < n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b.WriteByte(byte(x))
	}
	return b.String()
}

// promote asks for stage as the CI pipeline, and has the reviewer approve
// when the policy waits for a review.
func (st *story) promote(model string, version int, stage, reason, review string) (promotion.Promotion, error) {
	p, err := st.Promotions.Request(st.ci, model, version, promotion.NewPromotion{Stage: stage, Reason: reason})
	if err != nil || p.Status != promotion.StatusPendingApproval || review == "" {
		return p, err
	}
	return st.Promotions.Review(st.rev, p.ID, promotion.NewReview{Decision: "approve", Comment: review})
}

func (st *story) expect(p promotion.Promotion, status string) error {
	if p.Status != status {
		return fmt.Errorf("%s v%d to %s: %s, not %s: %s", p.Model, p.Version, p.Stage, p.Status, status, p.Message)
	}
	return nil
}

func (st *story) recommenderHistory() error {
	history := []struct {
		v      recVersion
		stages []string // promoted in order; the last may be rejected
		want   string
		review string
	}{
		{recVersion{trainedOn: 1, commit: "4c1d9e0b7a2f3c5d6e8f9a0b1c2d3e4f5a6b7c8d", note: "Two-tower baseline: item and session towers, in-batch negatives.",
			hitRate: 0.214, mrr: 0.118, countries: map[string]float64{"US": 0.221, "DE": 0.204, "UK": 0.215, "IT": 0.198}, popBias: 0.012, tests: allPass},
			[]string{"staging", "production"}, promotion.StatusPromoted, "First launch; A/B test in staging matched the offline numbers."},
		{recVersion{trainedOn: 1, commit: "9e2f4a61c0d3b5e7f9a1c3e5b7d9f1a3c5e7b9d1", note: "Sampled softmax with 100 popularity-corrected negatives.",
			hitRate: 0.231, mrr: 0.127, countries: map[string]float64{"US": 0.238, "DE": 0.226, "UK": 0.229, "IT": 0.214}, popBias: 0.009, tests: allPass},
			[]string{"staging", "production"}, promotion.StatusPromoted, "Better everywhere, less popularity bias. Ship it."},
		{recVersion{trainedOn: 2, commit: "b7a05d3e1f9c8b6a4d2e0f1c3b5a7d9e2f4c6b8a", note: "Longer history (50 items). The item tower's feature join dropped categories: to be fixed.",
			hitRate: 0.192, mrr: 0.104, countries: map[string]float64{"US": 0.199, "DE": 0.185, "UK": 0.193, "IT": 0.181}, popBias: 0.015,
			tests: map[string]bool{"no_empty_recommendations": true, "no_blocked_items": true, "no_repeat_of_last_item": false}},
			[]string{"staging"}, promotion.StatusRejected, ""},
	}
	for _, h := range history {
		n, err := st.register(h.v)
		if err != nil {
			return err
		}
		for i, stage := range h.stages {
			want := promotion.StatusPromoted
			if i == len(h.stages)-1 {
				want = h.want
			}
			p, err := st.promote(Recommender, n, stage, fmt.Sprintf("nightly training %s: offline metrics attached", h.v.commit[:7]), h.review)
			if err != nil {
				return err
			}
			if err := st.expect(p, want); err != nil {
				return err
			}
		}
	}
	return nil
}

// challenger is a Metaflow run whose model is better overall and worse for
// German users: staging takes it, production waits for a reviewer.
func (st *story) challenger() error {
	start := time.Date(2026, 11, 20, 2, 4, 0, 0, time.UTC)
	flow := lineage.RunKey{Orchestrator: "metaflow", ExternalID: "SessionRecsFlow/1842"}
	trainStep := lineage.RunKey{Orchestrator: "metaflow", ExternalID: "SessionRecsFlow/1842/train/9301"}
	git := lineage.Git{Repo: "https://github.com/acme/recs", Commit: "e5c3a1f9d7b5e3c1a9f7d5b3e1c9a7f5d3b1e9c7", Dirty: ptr(false)}
	params := raw(map[string]any{"embedding_dim": 192, "history_length": 20, "negatives": 200, "epochs": 10, "lr": 0.0004})
	ui := []lineage.Link{{Name: "Metaflow UI", URL: "https://metaflow.acme.internal/SessionRecsFlow/1842"}}
	if _, _, err := st.Lineage.ReportRun(st.ci, lineage.NewRun{
		Orchestrator: flow.Orchestrator, ExternalID: flow.ExternalID, Name: "SessionRecsFlow", Status: lineage.RunRunning,
		Git: git, Parameters: params, Links: ui, StartedAt: &start,
	}); err != nil {
		return err
	}
	trainEnd := start.Add(47 * time.Minute)
	if _, _, err := st.Lineage.ReportRun(st.ci, lineage.NewRun{
		Orchestrator: trainStep.Orchestrator, ExternalID: trainStep.ExternalID, Name: "train", Status: lineage.RunCompleted,
		Git: git, Image: "registry.acme.internal/recs/train@sha256:" + strings.Repeat("b2", 32), Parameters: params,
		Parent: &flow, StartedAt: ptr(start.Add(2 * time.Minute)), EndedAt: &trainEnd,
		Inputs: []lineage.IORef{{Dataset: TrainData, Version: 2}},
	}); err != nil {
		return err
	}
	v := recVersion{trainedOn: 2, commit: git.Commit, run: &trainStep,
		note:    "Wider embeddings (192) and 200 negatives, trained on the October snapshot by SessionRecsFlow/1842.",
		hitRate: 0.247, mrr: 0.133, countries: map[string]float64{"US": 0.262, "DE": 0.197, "UK": 0.244, "IT": 0.221}, popBias: 0.010, tests: allPass}
	n, err := st.register(v)
	if err != nil {
		return err
	}
	evalEnd := trainEnd.Add(9 * time.Minute)
	if _, _, err := st.Lineage.ReportRun(st.ci, lineage.NewRun{
		Orchestrator: "metaflow", ExternalID: "SessionRecsFlow/1842/evaluate/9302", Name: "evaluate", Status: lineage.RunCompleted,
		Git: git, Parent: &flow, StartedAt: &trainEnd, EndedAt: &evalEnd,
		Inputs: []lineage.IORef{{Dataset: HoldoutData, Version: 1}, {Model: Recommender, Version: n}},
	}); err != nil {
		return err
	}
	if _, _, err := st.Lineage.ReportRun(st.ci, lineage.NewRun{
		Orchestrator: flow.Orchestrator, ExternalID: flow.ExternalID, Name: "SessionRecsFlow", Status: lineage.RunCompleted,
		StartedAt: &start, EndedAt: ptr(evalEnd.Add(time.Minute)),
	}); err != nil {
		return err
	}
	p, err := st.promote(Recommender, n, "staging", "SessionRecsFlow/1842: offline metrics attached", "")
	if err != nil {
		return err
	}
	if err := st.expect(p, promotion.StatusPromoted); err != nil {
		return err
	}
	p, err = st.promote(Recommender, n, "production", "SessionRecsFlow/1842: +7% hit rate over v2 offline; please check the DE slice", "")
	if err != nil {
		return err
	}
	if err := st.expect(p, promotion.StatusPendingApproval); err != nil {
		return err
	}
	st.res.Pending = p.ID
	return nil
}

// batchModel is a batch-predictions model in production.
func (st *story) batchModel() error {
	up, err := st.Registry.BeginUpload(st.ci, BatchModel, registry.NewVersion{
		Kind: "batch_predictions", Framework: "xgboost", Description: "Churn probabilities for 2,140,000 customers, scored on 2026-11-22.",
		Params:       raw(map[string]any{"max_depth": 6, "eta": 0.1, "rounds": 400}),
		Source:       registry.Source{GitRepo: "https://github.com/acme/growth-models", GitCommit: "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", Orchestrator: "airflow", RunID: "churn_scoring/2026-11-22"},
		ModelLineage: lineage.ModelLineage{TrainingData: []lineage.IORef{{Dataset: CustomersData, Version: 1}}},
	})
	if err != nil {
		return err
	}
	var csv strings.Builder
	csv.WriteString("customer_id,churn_probability,scored_at\n")
	for i := range 500 {
		fmt.Fprintf(&csv, "C%07d,%.4f,2026-11-22\n", 100000+i*37, float64((i*7919)%1000)/1000)
	}
	if _, err := up.Add(st.ci, "scores.csv", "text/csv", strings.NewReader(csv.String())); err != nil {
		up.Abort(st.ci)
		return err
	}
	v, err := up.Commit(st.ci)
	if err != nil {
		return err
	}
	p, err := st.promote(BatchModel, v.Version, "production", "nightly scores for the CRM", "Distribution matches last week's; fine to publish.")
	if err != nil {
		return err
	}
	return st.expect(p, promotion.StatusPromoted)
}

// lateQualityCheck: a drift suite run after the fact fails on the snapshot
// the production champion was trained on, which the dashboard points out.
func (st *story) lateQualityCheck() error {
	_, err := st.Lineage.AddQualityResult(st.data, TrainData, 1, lineage.NewQualityResult{
		Suite: "sessions_drift", Producer: "great_expectations 1.3", Passed: ptr(false),
		FailedChecks: []lineage.FailedCheck{
			{Name: "expect_column_values_to_be_in_set", Column: "country", Message: "0.4% of rows have country XX (unknown): a tracking outage on 2026-09-14"},
			{Name: "expect_column_proportion_of_unique_values_to_be_between", Column: "session_id", Message: "1.2% duplicate sessions from a retried load"},
		},
		Statistics: raw(map[string]int{"evaluated_expectations": 12, "successful_expectations": 10}),
		URL:        "https://ge.acme.internal/docs/sessions_drift/2026-11-21",
	})
	return err
}
