package demo_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/demo"
	"github.com/slipway-ml/slipway/internal/evaluation"
	"github.com/slipway-ml/slipway/internal/lineage"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/internal/promotion"
	"github.com/slipway-ml/slipway/internal/registry"
	"github.com/slipway-ml/slipway/internal/testenv"
	"github.com/slipway-ml/slipway/internal/webhook"
)

func services(t *testing.T) (demo.Services, *testenv.DB) {
	t.Helper()
	db := testenv.NewDB(t)
	s3 := testenv.NewS3(t)
	ctx := context.Background()
	store, err := blob.NewS3(ctx, blob.S3Config{Endpoint: s3.Endpoint, Bucket: s3.Bucket, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, CreateBucket: true})
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	sealer, err := webhook.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	a := auth.NewService(db.Pool, auth.Config{})
	if _, err := a.CreateUser(ctx, auth.NewUser{Name: "admin", Role: auth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	return demo.Services{
		Auth: a, Registry: registry.NewService(db.Pool, store), Lineage: lineage.NewService(db.Pool, store),
		Evaluations: evaluation.NewService(db.Pool, store), Promotions: promotion.NewService(db.Pool, store),
		Webhooks: webhook.NewService(db.Pool, sealer, webhook.AddressPolicy{AllowPrivate: true}),
	}, db
}

// The story holds together: what the dashboard and the review page show
// is there, decided by the policies as the story says.
func TestSeedTellsTheStory(t *testing.T) {
	s, db := services(t)
	ctx := context.Background()
	res, err := demo.Seed(ctx, s, demo.Options{WebhookURL: "http://127.0.0.1:8091/hooks"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped || res.Pending == 0 || res.WebhookEndpoint == 0 || len(res.WebhookSecret) < 20 {
		t.Fatalf("result %+v", res)
	}

	prod, err := s.Promotions.Holdings(ctx, "production", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(prod) != 2 || prod[0].Model != demo.BatchModel || prod[0].Kind != "batch_predictions" ||
		prod[1].Model != demo.Recommender || prod[1].Version != 2 || prod[1].KeyMetric != "HIT_RATE" || prod[1].Value == nil || *prod[1].Value != 0.231 {
		t.Fatalf("production holdings %+v", prod)
	}
	staging, err := s.Promotions.GetStage(ctx, demo.Recommender, "staging")
	if err != nil || staging.Version == nil || *staging.Version != 4 {
		t.Fatalf("staging %+v %v", staging, err)
	}

	// v3 was turned down by the staging policy, with the failing rules said
	rejected, _, err := s.Promotions.ListPromotions(ctx, promotion.Filter{Status: promotion.StatusRejected}, pagination.Page{})
	if err != nil || len(rejected) != 1 || rejected[0].Version != 3 {
		t.Fatalf("rejected %+v %v", rejected, err)
	}
	failing := map[string]bool{}
	for _, r := range rejected[0].Rules {
		if !r.Passed {
			failing[r.Rule] = true
		}
	}
	if !failing[promotion.KindThreshold] || !failing[promotion.KindTestsPassed] || len(failing) != 2 {
		t.Fatalf("v3's failing rules %v", failing)
	}

	// the waiting request: v4 against v2, better overall, worse for DE
	p, err := s.Promotions.GetPromotion(ctx, res.Pending)
	if err != nil || p.Status != promotion.StatusPendingApproval || p.Version != 4 || p.Champion == nil || *p.Champion != 2 || p.RequestedBy != demo.CIUser {
		t.Fatalf("pending %+v %v", p, err)
	}
	c, err := s.Promotions.Compare(ctx, res.Pending)
	if err != nil {
		t.Fatal(err)
	}
	verdicts := map[string]string{}
	for _, m := range c.Metrics {
		verdicts[m.Key] = m.Verdict
	}
	if verdicts["HIT_RATE"] != "better" {
		t.Fatalf("HIT_RATE verdict %q (%v)", verdicts["HIT_RATE"], verdicts)
	}
	var country *promotion.SliceGroup
	for i := range c.Slices {
		if c.Slices[i].Test == "HIT_RATE_BY_COUNTRY" {
			country = &c.Slices[i]
		}
	}
	if country == nil || country.Regressed != 1 {
		t.Fatalf("country slices %+v", c.Slices)
	}
	for _, r := range country.Rows {
		if (r.Verdict == "worse") != (r.Key == "HIT_RATE_BY_COUNTRY.DE") {
			t.Fatalf("slice %s: %s", r.Key, r.Verdict)
		}
	}

	// the late drift check fails upstream of the production champion only
	fails, err := s.Lineage.UpstreamQualityFailures(ctx, []lineage.VersionRef{{Model: demo.Recommender, Version: 2}, {Model: demo.Recommender, Version: 4}, {Model: demo.BatchModel, Version: 1}}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(fails) != 1 || fails[0].Version != 2 || fails[0].Dataset != demo.TrainData || fails[0].DatasetVersion != 1 || fails[0].Suite != "sessions_drift" || fails[0].FailedChecks != 2 {
		t.Fatalf("upstream quality failures %+v", fails)
	}

	// v4 comes from the Metaflow run's train step
	prov, err := s.Lineage.Provenance(ctx, demo.Recommender, 4)
	if err != nil {
		t.Fatal(err)
	}
	var step bool
	for _, r := range prov.Runs {
		step = step || r.ExternalID == "SessionRecsFlow/1842/train/9301"
	}
	if !step || len(prov.DatasetVersions) != 1 || prov.DatasetVersions[0].Dataset != demo.TrainData || prov.DatasetVersions[0].Version != 2 {
		t.Fatalf("provenance of v4: runs %+v datasets %+v", prov.Runs, prov.DatasetVersions)
	}

	moves, err := s.Promotions.RecentMoves(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	// staging v1, production v1, staging v2, production v2, churn, staging v4
	if len(moves) != 6 || moves[0].Model != demo.Recommender || moves[0].Stage != "staging" || *moves[0].Version != 4 || moves[0].MovedBy != demo.CIUser {
		t.Fatalf("moves %+v", moves)
	}

	// the serving layer is told of every move of the demo models
	var queued int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM webhook_messages WHERE endpoint_id = $1 AND event_type = 'stage.moved'`, res.WebhookEndpoint).Scan(&queued); err != nil {
		t.Fatal(err)
	}
	if queued != len(moves) {
		t.Fatalf("%d webhook messages for %d moves", queued, len(moves))
	}

	// a second run leaves a registry that is not empty alone
	again, err := demo.Seed(ctx, s, demo.Options{})
	if err != nil || !again.Skipped {
		t.Fatalf("second seed: %+v %v", again, err)
	}
	if n, _ := s.Registry.CountModels(ctx); n != 2 {
		t.Fatalf("%d models after the second seed", n)
	}
}

// With no admin, nothing is made and the error says what to do.
func TestSeedNeedsAnAdmin(t *testing.T) {
	db := testenv.NewDB(t)
	store, err := blob.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := demo.Services{Auth: auth.NewService(db.Pool, auth.Config{}), Registry: registry.NewService(db.Pool, store)}
	_, err = demo.Seed(context.Background(), s, demo.Options{})
	if err == nil || !strings.Contains(err.Error(), "SLIPWAY_BOOTSTRAP_TOKEN") {
		t.Fatalf("seed without an admin: %v", err)
	}
	if n, _ := s.Registry.CountModels(context.Background()); n != 0 {
		t.Fatalf("%d models", n)
	}
	var users int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM users`).Scan(&users); err != nil || users != 0 {
		t.Fatalf("%d users %v", users, err)
	}
}

// Without a webhook key there is no endpoint, and the rest of the story
// is told.
func TestSeedWithoutWebhooks(t *testing.T) {
	s, _ := services(t)
	s.Webhooks = nil
	res, err := demo.Seed(context.Background(), s, demo.Options{WebhookURL: "http://127.0.0.1:8091/hooks"})
	if err != nil || res.WebhookEndpoint != 0 || res.Pending == 0 {
		t.Fatalf("%+v %v", res, err)
	}
}
