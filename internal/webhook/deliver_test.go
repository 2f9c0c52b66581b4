package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/events"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/internal/registry"
	"github.com/slipway-ml/slipway/internal/testenv"
	"github.com/slipway-ml/slipway/internal/webhook"
)

// clock is the real time moved forward by the test.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.offset) }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.offset += d; c.mu.Unlock() }

type env struct {
	t      *testing.T
	ctx    context.Context
	db     *testenv.DB
	svc    *webhook.Service
	sealer *webhook.Sealer
	store  blob.Store
	clock  *clock
	model  int64
}

// received is one request a test receiver got.
type received struct {
	id, timestamp, signature string
	body                     []byte
	at                       time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := testenv.NewDB(t)
	store, err := blob.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sealer, _ := webhook.NewSealer([]byte(strings.Repeat("k", 32)))
	e := &env{t: t, ctx: audit.WithActor(context.Background(), audit.Actor{Name: "test"}), db: db, store: store, sealer: sealer,
		svc: webhook.NewService(db.Pool, sealer, webhook.AddressPolicy{AllowPrivate: true}), clock: &clock{}}
	reg := registry.NewService(db.Pool, store)
	if _, err := reg.CreateModel(e.ctx, registry.NewModel{Name: "session-recs"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(e.ctx, `SELECT id FROM models WHERE name = 'session-recs'`).Scan(&e.model); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) dispatcher(policy webhook.AddressPolicy, schedule ...time.Duration) *webhook.Dispatcher {
	cfg := webhook.DispatchConfig{Workers: 4, Timeout: 2 * time.Second, Now: e.clock.Now, PublicURL: "https://slipway.example.com",
		DisableAfter: 5 * 24 * time.Hour}
	if schedule != nil {
		cfg.Schedule = schedule
	}
	return webhook.NewDispatcher(e.db.Pool, e.svc, e.store, policy, cfg, slog.New(slog.DiscardHandler))
}

func (e *env) endpoint(url string, types ...string) (webhook.Endpoint, string) {
	e.t.Helper()
	ep, secret, err := e.svc.Create(e.ctx, webhook.NewEndpoint{URL: url, EventTypes: types, Description: "test receiver"})
	if err != nil {
		e.t.Fatal(err)
	}
	return ep, secret
}

func (e *env) emit(typ string, payload map[string]any) {
	e.t.Helper()
	if err := pgx.BeginTxFunc(e.ctx, e.db.Pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		_, err := events.Emit(e.ctx, tx, e.model, typ, payload)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
}

// drain delivers until nothing is due.
func drain(t *testing.T, ctx context.Context, d *webhook.Dispatcher) int {
	t.Helper()
	n := 0
	for {
		ok, err := d.DeliverOne(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return n
		}
		n++
	}
}

// receiver answers with the statuses given in turn (then 200), and
// verifies every request with the Standard Webhooks library.
func receiver(t *testing.T, secret *string, statuses ...int) (*httptest.Server, func() []received) {
	var mu sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		n := len(got)
		got = append(got, received{id: r.Header.Get("webhook-id"), timestamp: r.Header.Get("webhook-timestamp"),
			signature: r.Header.Get("webhook-signature"), body: body, at: time.Now()})
		mu.Unlock()
		wh, err := standardwebhooks.NewWebhook(*secret)
		if err != nil {
			t.Errorf("secret: %v", err)
		} else if err := wh.VerifyIgnoringTimestamp(body, r.Header); err != nil {
			t.Errorf("the Standard Webhooks library refuses a delivery: %v", err)
		}
		status := 200
		if n < len(statuses) {
			status = statuses[n]
		}
		w.WriteHeader(status)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, func() []received { mu.Lock(); defer mu.Unlock(); return append([]received(nil), got...) }
}

func TestRetriesThenDelivered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var secret string
	srv, got := receiver(t, &secret, 500, 500)
	ep, s := e.endpoint(srv.URL + "/hooks")
	secret = s
	d := e.dispatcher(webhook.AddressPolicy{AllowPrivate: true}, 5*time.Second, 5*time.Minute, 30*time.Minute)
	e.emit(events.StageMoved, map[string]any{"stage": "production", "version": 3, "previous_version": 2})

	if n := drain(t, e.ctx, d); n != 1 {
		t.Fatalf("first pass: %d attempts, want 1", n)
	}
	if n := drain(t, e.ctx, d); n != 0 {
		t.Fatalf("the retry ran before its time: %d", n)
	}
	e.clock.Add(7 * time.Second) // past the 5 s (±20%) of the first retry
	drain(t, e.ctx, d)
	e.clock.Add(7 * time.Minute)
	drain(t, e.ctx, d)
	reqs := got()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3 (500, 500, 200)", len(reqs))
	}
	for _, r := range reqs[1:] {
		if r.id != reqs[0].id {
			t.Errorf("webhook-id changed across retries: %s then %s", reqs[0].id, r.id)
		}
	}
	if reqs[0].timestamp == reqs[2].timestamp {
		t.Error("the timestamp did not change across attempts")
	}
	var env webhook.Envelope
	if err := json.Unmarshal(reqs[2].body, &env); err != nil || env.Type != events.StageMoved || env.Data["model"] != "session-recs" ||
		env.Data["seq"].(float64) < 1 || env.Data["version_url"] != "https://slipway.example.com/models/session-recs/versions/3" {
		t.Fatalf("payload: %s (%v)", reqs[2].body, err)
	}
	msgs, _, err := e.svc.Messages(e.ctx, webhook.MessageFilter{EndpointID: ep.ID}, pagination.Page{})
	if err != nil || len(msgs) != 1 || msgs[0].Status != webhook.StatusDelivered || msgs[0].Attempts != 3 {
		t.Fatalf("messages: %+v, %v", msgs, err)
	}
	m, err := e.svc.Message(e.ctx, ep.ID, msgs[0].ID)
	if err != nil || len(m.Log) != 3 || *m.Log[0].ResponseStatus != 500 || !m.Log[2].Delivered || m.Log[0].RequestHeaders["webhook-id"] != reqs[0].id {
		t.Fatalf("the log: %+v, %v", m.Log, err)
	}
	for _, a := range m.Log {
		if strings.Contains(string(mustJSON(a.RequestHeaders)), strings.TrimPrefix(secret, webhook.SecretPrefix)) {
			t.Fatal("the log holds the secret")
		}
	}
	// delivered: never again, unless redelivered by hand
	e.clock.Add(24 * time.Hour)
	if n := drain(t, e.ctx, d); n != 0 {
		t.Fatalf("a delivered message was sent again: %d", n)
	}
	if _, err := e.svc.Redeliver(e.ctx, ep.ID, msgs[0].ID); err != nil {
		t.Fatal(err)
	}
	drain(t, e.ctx, d)
	reqs = got()
	if len(reqs) != 4 || reqs[3].id != reqs[0].id || reqs[3].signature == reqs[2].signature {
		t.Fatalf("redelivery: %d requests, id %s", len(reqs), reqs[len(reqs)-1].id)
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// The schedule is spent: the message fails and waits for a hand; an
// endpoint failing for DisableAfter is disabled, and so is one that
// answers 410.
func TestGivingUpAndDisabling(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var secret string
	srv, _ := receiver(t, &secret, 503, 503, 503, 503, 503, 503)
	ep, s := e.endpoint(srv.URL)
	secret = s
	d := e.dispatcher(webhook.AddressPolicy{AllowPrivate: true}, time.Second, time.Second)
	e.emit(events.ModelVersionCreated, map[string]any{"version": 1})
	for range 3 {
		drain(t, e.ctx, d)
		e.clock.Add(2 * time.Second)
	}
	msgs, _, _ := e.svc.Messages(e.ctx, webhook.MessageFilter{EndpointID: ep.ID}, pagination.Page{})
	if len(msgs) != 1 || msgs[0].Status != webhook.StatusFailed || msgs[0].Attempts != 3 {
		t.Fatalf("after the schedule: %+v", msgs)
	}
	// five days of failure disable it
	e.clock.Add(5 * 24 * time.Hour)
	e.emit(events.ModelVersionCreated, map[string]any{"version": 2})
	drain(t, e.ctx, d)
	got, _ := e.svc.Get(e.ctx, ep.ID)
	if got.Enabled || !strings.Contains(got.DisabledReason, "failed since") {
		t.Fatalf("after 5 days of failures: enabled %v, %q", got.Enabled, got.DisabledReason)
	}

	srv410 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) }))
	defer srv410.Close()
	gone, _ := e.endpoint(srv410.URL)
	e.emit(events.ModelVersionCreated, map[string]any{"version": 3})
	drain(t, e.ctx, d)
	if got, _ := e.svc.Get(e.ctx, gone.ID); got.Enabled || !strings.Contains(got.DisabledReason, "410") {
		t.Fatalf("after a 410: enabled %v, %q", got.Enabled, got.DisabledReason)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	ep, _ := e.endpoint(srv.URL)
	d := e.dispatcher(webhook.AddressPolicy{AllowPrivate: true}, 5*time.Second)
	e.emit(events.StageMoved, map[string]any{"version": 1})
	drain(t, e.ctx, d)
	msgs, _, _ := e.svc.Messages(e.ctx, webhook.MessageFilter{EndpointID: ep.ID}, pagination.Page{})
	if len(msgs) != 1 || msgs[0].NextAttemptAt == nil || msgs[0].NextAttemptAt.Sub(e.clock.Now()) < 59*time.Minute {
		t.Fatalf("next attempt %v, want an hour from now (Retry-After)", msgs[0].NextAttemptAt)
	}
}

// Addresses are checked when the connection is made: a name that resolves
// to loopback is refused when private addresses are not allowed, and a
// redirect is never followed.
func TestOutboundSafety(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	named, _ := e.endpoint("http://localhost" + port + "/hooks")
	e.emit(events.StageMoved, map[string]any{"version": 1})
	drain(t, e.ctx, e.dispatcher(webhook.AddressPolicy{}, time.Hour))
	if hits.Load() != 0 {
		t.Fatal("a name resolving to loopback was contacted with private addresses refused")
	}
	msgs, _, _ := e.svc.Messages(e.ctx, webhook.MessageFilter{EndpointID: named.ID}, pagination.Page{})
	if len(msgs) != 1 || !strings.Contains(msgs[0].LastError, "refused by the webhook address policy") {
		t.Fatalf("messages: %+v", msgs)
	}
	// allowed to reach the receiver, which redirects to the metadata
	// service: the redirect is not followed, and counts as a failure
	e.clock.Add(2 * time.Hour)
	drain(t, e.ctx, e.dispatcher(webhook.AddressPolicy{AllowPrivate: true}, time.Hour))
	msgs, _, _ = e.svc.Messages(e.ctx, webhook.MessageFilter{EndpointID: named.ID}, pagination.Page{})
	if hits.Load() != 1 || msgs[0].Status != webhook.StatusFailed || !strings.Contains(msgs[0].LastError, "redirects are not followed") {
		t.Fatalf("after the redirect: hits %d, %+v", hits.Load(), msgs[0])
	}
}

// Two dispatchers on one database share the work: every message
// delivered, none twice.
func TestTwoDispatchersDeliverEachOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var secret string
	srv, got := receiver(t, &secret)
	_, s := e.endpoint(srv.URL, events.StageMoved)
	secret = s
	const n = 1000
	ctx, cancel := context.WithCancel(e.ctx)
	// two processes: each its own connections and workers; stopped before
	// their pools close
	var running sync.WaitGroup
	for range 2 {
		pool, err := pgxpool.New(ctx, e.db.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		svc := webhook.NewService(pool, e.sealer, webhook.AddressPolicy{AllowPrivate: true})
		d := webhook.NewDispatcher(pool, svc, e.store, webhook.AddressPolicy{AllowPrivate: true},
			webhook.DispatchConfig{Workers: 4, Timeout: 2 * time.Second, Now: e.clock.Now}, slog.New(slog.DiscardHandler))
		running.Add(1)
		go func() { defer running.Done(); d.Run(ctx) }()
	}
	defer running.Wait()
	defer cancel()
	for i := range n {
		e.emit(events.StageMoved, map[string]any{"version": i + 1})
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(got()) < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // any duplicate would land now
	seen := map[string]int{}
	for _, r := range got() {
		seen[r.id]++
	}
	if len(seen) != n {
		t.Fatalf("%d distinct messages delivered, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s delivered %d times", id, c)
		}
	}
}

// Filters: an endpoint gets the event types and models it asked for; a
// test message reaches it whatever they are.
func TestFiltersAndTestMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var secret string
	srv, got := receiver(t, &secret)
	ep, s := e.endpoint(srv.URL, events.StageMoved)
	secret = s
	e.emit(events.EvaluationCreated, map[string]any{"version": 1})
	e.emit(events.StageMoved, map[string]any{"version": 1})
	if _, err := e.svc.SendTest(e.ctx, ep.ID); err != nil {
		t.Fatal(err)
	}
	drain(t, e.ctx, e.dispatcher(webhook.AddressPolicy{AllowPrivate: true}))
	var types []string
	for _, r := range got() {
		var env webhook.Envelope
		json.Unmarshal(r.body, &env)
		types = append(types, env.Type)
	}
	if strings.Join(types, ",") != "stage.moved,webhook.test" {
		t.Fatalf("delivered %v, want stage.moved then webhook.test", types)
	}
}

// Messages queued while the receiver was down are sent when it is back;
// a replay since a time sends what it missed while disabled.
func TestDisabledThenReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var secret string
	srv, got := receiver(t, &secret)
	ep, s := e.endpoint(srv.URL)
	secret = s
	since := time.Now().Add(-time.Minute)
	off := false
	if _, err := e.svc.Update(e.ctx, ep.ID, webhook.EndpointUpdate{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	e.emit(events.StageMoved, map[string]any{"version": 1})
	e.emit(events.StageMoved, map[string]any{"version": 2})
	d := e.dispatcher(webhook.AddressPolicy{AllowPrivate: true})
	if n := drain(t, e.ctx, d); n != 0 || len(got()) != 0 {
		t.Fatal("a disabled endpoint got messages")
	}
	on := true
	if _, err := e.svc.Update(e.ctx, ep.ID, webhook.EndpointUpdate{Enabled: &on}); err != nil {
		t.Fatal(err)
	}
	n, err := e.svc.ReplaySince(e.ctx, ep.ID, since)
	if err != nil || n != 2 {
		t.Fatalf("replay queued %d, %v; want 2", n, err)
	}
	drain(t, e.ctx, d)
	if len(got()) != 2 {
		t.Fatalf("%d delivered after the replay, want 2", len(got()))
	}
	// a second replay sends nothing delivered again
	if n, err := e.svc.ReplaySince(e.ctx, ep.ID, since); err != nil || n != 0 {
		t.Fatalf("second replay queued %d, %v", n, err)
	}
}

// TestKeyRotation: with the new key current and the old one previous,
// secrets sealed under either open and deliveries are signed; a reseal
// moves every secret (and a previous secret still in its window) to the
// new key in one transaction, after which the old key can go. A key that
// opens nothing changes nothing.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	oldKey, newKey := []byte(strings.Repeat("k", 32)), []byte(strings.Repeat("n", 32)) // e.sealer is under oldKey
	var secret string
	srv, got := receiver(t, &secret)
	ep, first := e.endpoint(srv.URL + "/hooks")
	_, rotated, err := e.svc.RotateSecret(e.ctx, ep.ID, time.Hour) // the first secret keeps signing for an hour
	if err != nil {
		t.Fatal(err)
	}
	other, _ := e.endpoint(srv.URL+"/other", events.EvaluationCreated) // hears none of the stage moves below
	sealedBytes := func() string {
		var s string
		if err := e.db.Pool.QueryRow(e.ctx, `SELECT string_agg(encode(secret, 'hex') || ':' || coalesce(encode(previous_secret, 'hex'), ''), ',' ORDER BY id) FROM webhook_endpoints`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	service := func(key []byte, previous ...[]byte) *webhook.Service {
		s, err := webhook.NewSealer(key, previous...)
		if err != nil {
			t.Fatal(err)
		}
		return webhook.NewService(e.db.Pool, s, webhook.AddressPolicy{AllowPrivate: true})
	}
	deliver := func(svc *webhook.Service, version int) []received {
		t.Helper()
		d := webhook.NewDispatcher(e.db.Pool, svc, e.store, webhook.AddressPolicy{AllowPrivate: true},
			webhook.DispatchConfig{Workers: 1, Timeout: 2 * time.Second, DisableAfter: time.Hour}, slog.New(slog.DiscardHandler))
		before := len(got())
		e.emit(events.StageMoved, map[string]any{"stage": "production", "version": version})
		drain(t, e.ctx, d)
		return got()[before:]
	}

	// During the rotation: the new key seals, the old one still opens.
	both := service(newKey, oldKey)
	secret = rotated
	if r := deliver(both, 1); len(r) != 1 || strings.Count(r[0].signature, "v1,") != 2 {
		t.Fatalf("delivery with both keys: %+v, want one request signed by both secrets", r)
	}

	// A key that opens nothing: refused, nothing changed.
	before := sealedBytes()
	if _, _, err := service([]byte(strings.Repeat("x", 32))).ResealSecrets(e.ctx); err == nil || !strings.Contains(err.Error(), "opens with neither") {
		t.Fatalf("reseal with an unrelated key: %v", err)
	}
	if sealedBytes() != before {
		t.Fatal("a failed reseal changed the stored secrets")
	}

	if n, total, err := both.ResealSecrets(e.ctx); err != nil || n != 2 || total != 2 {
		t.Fatalf("reseal: %d of %d, %v; want 2 of 2", n, total, err)
	}
	if sealedBytes() == before {
		t.Fatal("the reseal stored nothing new")
	}
	if n, total, err := both.ResealSecrets(e.ctx); err != nil || n != 0 || total != 2 {
		t.Errorf("a second reseal: %d of %d, %v; want 0 of 2 (already under the new key)", n, total, err)
	}

	// The new key alone: the current and the previous secret both sign.
	newOnly := service(newKey)
	r := deliver(newOnly, 2)
	if len(r) != 1 || strings.Count(r[0].signature, "v1,") != 2 {
		t.Fatalf("delivery with the new key alone: %+v", r)
	}
	for _, s := range []string{rotated, first} {
		wh, _ := standardwebhooks.NewWebhook(s)
		h := http.Header{}
		h.Set("webhook-id", r[0].id)
		h.Set("webhook-timestamp", r[0].timestamp)
		h.Set("webhook-signature", r[0].signature)
		if err := wh.VerifyIgnoringTimestamp(r[0].body, h); err != nil {
			t.Errorf("a secret resealed under the new key no longer signs: %v", err)
		}
	}
	// The old key alone no longer opens anything.
	if _, _, err := service(oldKey).ResealSecrets(e.ctx); err == nil {
		t.Error("the old key still opens the resealed secrets")
	}
	var entries int
	if err := e.db.Pool.QueryRow(e.ctx, `SELECT count(*) FROM audit_log WHERE action = 'webhook.reseal_secrets' AND after->'endpoints' = $1::jsonb`,
		fmt.Sprintf("[%d, %d]", ep.ID, other.ID)).Scan(&entries); err != nil || entries != 1 {
		t.Errorf("audit entries of the reseal: %d, %v; want 1 naming both endpoints", entries, err)
	}
	if _, err := webhook.NewSealer(newKey, newKey); err == nil {
		t.Error("a previous key equal to the current one was accepted")
	}
}
