package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/slipway-ml/slipway/internal/api/apitest"
	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/webhook"
)

// The HTTP story of webhooks: endpoints registered by admins, deliveries
// to a receiver that checks every one with the Standard Webhooks library
// (an implementation independent of Slipway's), the delivery log,
// redelivery, rotation, disabling and replay. Every answer of the API is
// checked against the OpenAPI document by apitest, and every body the
// receiver gets against the document's WebhookEnvelope.

// --- helpers ---------------------------------------------------------------

// envelope is the body of a delivery.
type envelope struct {
	Type      string         `json:"type"`
	ID        string         `json:"id"`
	Timestamp time.Time      `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

// delivery is one request a receiver got.
type delivery struct {
	id, timestamp, signature string
	header                   http.Header
	body                     []byte
	env                      envelope
}

// receiver is a webhook receiver: it answers status, keeps what it gets,
// and verifies each request with the Standard Webhooks library against
// every secret the test says must sign it.
type receiver struct {
	t       *testing.T
	e       *env
	url     string
	status  atomic.Int32
	mu      sync.Mutex
	got     []delivery
	secrets []string
}

func newReceiver(t *testing.T, e *env) *receiver {
	r := &receiver{t: t, e: e}
	r.status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/hooks/slipway"
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	d := delivery{id: req.Header.Get("webhook-id"), timestamp: req.Header.Get("webhook-timestamp"),
		signature: req.Header.Get("webhook-signature"), header: req.Header.Clone(), body: body}
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" || req.URL.Path != "/hooks/slipway" {
		r.t.Errorf("delivery: %s %s, Content-Type %q", req.Method, req.URL.Path, req.Header.Get("Content-Type"))
	}
	if err := json.Unmarshal(body, &d.env); err != nil {
		r.t.Errorf("delivery body is not an envelope: %v: %s", err, body)
	}
	var doc any
	json.Unmarshal(body, &doc)
	if err := r.e.doc.Spec.Components.Schemas["WebhookEnvelope"].Value.VisitJSON(doc); err != nil {
		r.t.Errorf("delivery body does not match WebhookEnvelope: %v: %s", err, body)
	}
	r.mu.Lock()
	secrets := slices.Clone(r.secrets)
	r.got = append(r.got, d)
	r.mu.Unlock()
	for _, s := range secrets {
		if err := verify(s, d); err != nil {
			r.t.Errorf("delivery %s (%s): the Standard Webhooks library refuses it with secret %.12s…: %v", d.id, d.env.Type, s, err)
		}
	}
	w.WriteHeader(int(r.status.Load()))
	io.WriteString(w, "answer "+strconv.Itoa(int(r.status.Load())))
}

// verify checks a delivery with the Standard Webhooks library, timestamp
// tolerance included.
func verify(secret string, d delivery) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	return wh.Verify(d.body, d.header)
}

// expect sets the secrets every delivery from now on must verify with.
func (r *receiver) expect(secrets ...string) {
	r.mu.Lock()
	r.secrets = secrets
	r.mu.Unlock()
}

// deliveries returns what the receiver got, of type typ ("" for all).
func (r *receiver) deliveries(typ string) []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []delivery
	for _, d := range r.got {
		if typ == "" || d.env.Type == typ {
			out = append(out, d)
		}
	}
	return out
}

// wait polls until the receiver holds n deliveries of type typ, and
// returns them.
func (r *receiver) wait(typ string, n int) []delivery {
	r.t.Helper()
	var got []delivery
	eventually(r.t, 10*time.Second, fmt.Sprintf("%d %s deliveries", n, typ), func() bool {
		got = r.deliveries(typ)
		return len(got) >= n
	})
	return got
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			t.Errorf("waited %s for %s", timeout, what)
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// createdEndpoint is the answer of create and rotate.
type createdEndpoint struct {
	webhook.Endpoint
	Secret string `json:"secret"`
}

func createWebhook(t *testing.T, c *apitest.Client, body map[string]any) createdEndpoint {
	t.Helper()
	res := c.Send("POST", "/api/v1/webhooks", body)
	wantStatus(t, "create webhook", res, http.StatusCreated)
	var ep createdEndpoint
	res.Decode(t, &ep)
	if !strings.HasPrefix(ep.Secret, webhook.SecretPrefix) {
		t.Errorf("create webhook: secret %q does not start with whsec_", ep.Secret)
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("create webhook: Cache-Control %q, want no-store", res.Header.Get("Cache-Control"))
	}
	if want := fmt.Sprintf("/api/v1/webhooks/%d", ep.ID); res.Header.Get("Location") != want {
		t.Errorf("create webhook: Location %q, want %q", res.Header.Get("Location"), want)
	}
	return ep
}

func hookPath(id int64, rest ...string) string {
	return fmt.Sprintf("/api/v1/webhooks/%d", id) + strings.Join(rest, "")
}

func rotate(t *testing.T, c *apitest.Client, id int64, window string) createdEndpoint {
	t.Helper()
	res := c.Send("POST", hookPath(id, "/rotate"), map[string]any{"window": window})
	wantStatus(t, "rotate "+window, res, http.StatusOK)
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("rotate: Cache-Control %q, want no-store", res.Header.Get("Cache-Control"))
	}
	var ep createdEndpoint
	res.Decode(t, &ep)
	if !strings.HasPrefix(ep.Secret, webhook.SecretPrefix) {
		t.Errorf("rotate: secret %q", ep.Secret)
	}
	return ep
}

func sendTest(t *testing.T, c *apitest.Client, id int64) webhook.Message {
	t.Helper()
	res := c.Send("POST", hookPath(id, "/test"), nil)
	wantStatus(t, "test message", res, http.StatusAccepted)
	var m webhook.Message
	res.Decode(t, &m)
	if m.EventType != webhook.TypeTest || m.Status != webhook.StatusPending || !strings.HasPrefix(m.MsgID, "msg_") || m.EndpointID != id {
		t.Errorf("test message: %+v", m)
	}
	return m
}

func messagesOf(t *testing.T, c *apitest.Client, id int64, query string) []webhook.Message {
	t.Helper()
	return get[listPage[webhook.Message]](t, c, hookPath(id, "/deliveries?"+query)).Items
}

func messageOf(t *testing.T, c *apitest.Client, id, mid int64) webhook.Message {
	t.Helper()
	return get[webhook.Message](t, c, hookPath(id, fmt.Sprintf("/deliveries/%d", mid)))
}

// waitMessage polls one message until cond holds.
func waitMessage(t *testing.T, c *apitest.Client, id, mid int64, what string, cond func(webhook.Message) bool) webhook.Message {
	t.Helper()
	var m webhook.Message
	eventually(t, 10*time.Second, "message "+what, func() bool {
		m = messageOf(t, c, id, mid)
		return cond(m)
	})
	return m
}

func signatures(d delivery) []string { return strings.Fields(d.signature) }

// registerVersion registers a version of model with one artifact,
// weights/model.bin, holding content.
func registerVersion(t *testing.T, c *apitest.Client, model, content string) {
	t.Helper()
	wantStatus(t, "register "+model, register(c, model, `{}`, file{"weights/model.bin", strings.NewReader(content)}), http.StatusCreated)
}

// --- stories ---------------------------------------------------------------

// TestWebhookEndToEnd: an endpoint for stage.moved, a promotion, one signed
// message with presigned artifact URLs, and the delivery log of it.
func TestWebhookEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookDelivery, withMinIO)
	admin := e.as(auth.RoleAdmin)
	rc := newReceiver(t, e)

	ep := createWebhook(t, admin, map[string]any{"url": rc.url, "description": "serving layer", "event_types": []string{"stage.moved"}})
	rc.expect(ep.Secret)
	if ep.URL != rc.url || !ep.Enabled || !slices.Equal(ep.EventTypes, []string{"stage.moved"}) || len(ep.Models) != 0 || ep.CreatedBy != "admin" ||
		ep.RotatingUntil != nil || ep.FailingSince != nil || ep.DisabledAt != nil {
		t.Errorf("created endpoint: %+v", ep.Endpoint)
	}
	// The secret is in that answer only.
	res := admin.Get(hookPath(ep.ID))
	wantStatus(t, "GET endpoint", res, http.StatusOK)
	var raw map[string]any
	res.Decode(t, &raw)
	if _, ok := raw["secret"]; ok || strings.Contains(string(res.Body), ep.Secret) {
		t.Errorf("GET endpoint shows the secret: %s", res.Body)
	}
	list := get[listPage[json.RawMessage]](t, admin, "/api/v1/webhooks")
	if len(list.Items) != 1 || strings.Contains(string(list.Items[0]), ep.Secret) || strings.Contains(string(list.Items[0]), `"secret"`) {
		t.Errorf("the list shows the secret or not the endpoint: %s", list.Items)
	}
	audit := admin.Get("/api/v1/audit?action=webhook.create")
	if !strings.Contains(string(audit.Body), rc.url) || strings.Contains(string(audit.Body), ep.Secret) {
		t.Errorf("audit of webhook.create: %s", audit.Body)
	}

	// A model, a version, a promotion: only stage.moved goes out.
	createModel(t, admin, map[string]any{"name": "ranker"})
	const weights = "the weights of ranker v1"
	registerVersion(t, admin, "ranker", weights)
	promote(t, admin, "ranker", 1, "production", "r", true, "promoted")

	got := rc.wait("stage.moved", 1)
	time.Sleep(300 * time.Millisecond) // anything more would come now
	if all := rc.deliveries(""); len(all) != 1 || len(got) != 1 {
		t.Fatalf("the receiver got %d deliveries, want exactly one stage.moved", len(all))
	}
	d := got[0]
	if !strings.HasPrefix(d.id, "msg_") || !strings.HasPrefix(d.env.ID, "evt_") || len(signatures(d)) != 1 || !strings.HasPrefix(d.signature, "v1,") {
		t.Errorf("delivery headers: id %q, signature %q, envelope id %q", d.id, d.signature, d.env.ID)
	}
	if ts, _ := strconv.ParseInt(d.timestamp, 10, 64); time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Errorf("webhook-timestamp %q is not now", d.timestamp)
	}
	if d.header.Get("User-Agent") != "Slipway-Webhooks/1" {
		t.Errorf("User-Agent %q", d.header.Get("User-Agent"))
	}
	data := d.env.Data
	if data["model"] != "ranker" || data["version"] != float64(1) || data["stage"] != "production" || data["override"] != true ||
		data["reason"] != "r" || data["moved_by"] != "admin" || data["version_url"] != "http://slipway.test/models/ranker/versions/1" {
		t.Errorf("stage.moved data: %v", data)
	}
	if prev, ok := data["previous_version"]; !ok || prev != nil {
		t.Errorf("previous_version = %v (present %v), want null", prev, ok)
	}
	if seq, _ := data["seq"].(float64); seq < 1 {
		t.Errorf("seq = %v, want ≥ 1", data["seq"])
	}
	if time.Since(d.env.Timestamp).Abs() > time.Minute {
		t.Errorf("envelope timestamp %v", d.env.Timestamp)
	}
	arts, _ := data["artifacts"].([]any)
	if len(arts) != 1 {
		t.Fatalf("artifacts: %v", data["artifacts"])
	}
	art := arts[0].(map[string]any)
	sum := sha256.Sum256([]byte(weights))
	if art["path"] != "weights/model.bin" || art["sha256"] != hex.EncodeToString(sum[:]) || art["size"] != float64(len(weights)) {
		t.Errorf("artifact: %v", art)
	}
	if exp, err := time.Parse(time.RFC3339, fmt.Sprint(art["url_expires_at"])); err != nil || exp.Before(time.Now().Add(30*time.Minute)) {
		t.Errorf("url_expires_at = %v", art["url_expires_at"])
	}
	// The presigned URL gives the artifact, without Slipway's token.
	if u, _ := art["url"].(string); !strings.Contains(u, "X-Amz-Signature") {
		t.Errorf("artifact url is not presigned: %q", u)
	} else if res, err := http.Get(u); err != nil {
		t.Errorf("GET presigned url: %v", err)
	} else {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(b) != weights {
			t.Errorf("GET presigned url: %d %q", res.StatusCode, b)
		}
	}

	// The delivery log.
	msgs := messagesOf(t, admin, ep.ID, "")
	if len(msgs) != 1 {
		t.Fatalf("deliveries: %+v", msgs)
	}
	m := waitMessage(t, admin, ep.ID, msgs[0].ID, "delivered", func(m webhook.Message) bool { return m.Status == webhook.StatusDelivered })
	if m.MsgID != d.id || m.EventID != d.env.ID || m.EventType != "stage.moved" || m.Model != "ranker" || m.Attempts != 1 ||
		m.DeliveredAt == nil || m.NextAttemptAt != nil || m.LastStatus == nil || *m.LastStatus != 200 || m.LastError != "" {
		t.Errorf("delivered message: %+v", m)
	}
	if len(m.Log) != 1 {
		t.Fatalf("attempts: %+v", m.Log)
	}
	a := m.Log[0]
	if a.Attempt != 1 || !a.Delivered || a.ResponseStatus == nil || *a.ResponseStatus != 200 || a.URL != rc.url || a.Error != "" ||
		a.RequestBody != string(d.body) || a.ResponseBody != "answer 200" {
		t.Errorf("attempt: %+v", a)
	}
	if a.RequestHeaders["webhook-id"] != d.id || a.RequestHeaders["webhook-timestamp"] != d.timestamp || a.RequestHeaders["webhook-signature"] != d.signature {
		t.Errorf("attempt headers %v differ from what was received", a.RequestHeaders)
	}
	key := strings.TrimPrefix(ep.Secret, webhook.SecretPrefix)
	for k, v := range a.RequestHeaders {
		if strings.Contains(v, key) || strings.Contains(v, ep.Secret) {
			t.Errorf("attempt header %s holds the secret", k)
		}
	}
	if raw, _ := base64.StdEncoding.DecodeString(key); strings.Contains(a.RequestBody, string(raw)) {
		t.Error("the attempt's body holds the secret")
	}
	for _, q := range []string{"status=delivered", "event_type=stage.moved", "status=delivered&event_type=stage.moved"} {
		if got := messagesOf(t, admin, ep.ID, q); len(got) != 1 {
			t.Errorf("deliveries?%s: %d", q, len(got))
		}
	}
	for _, q := range []string{"status=pending", "status=failed", "event_type=model_version.created"} {
		if got := messagesOf(t, admin, ep.ID, q); len(got) != 0 {
			t.Errorf("deliveries?%s: %d, want 0", q, len(got))
		}
	}
	if ep := get[webhook.Endpoint](t, admin, hookPath(ep.ID)); ep.Pending != 0 || ep.Failed != 0 || ep.FailingSince != nil {
		t.Errorf("endpoint after delivery: %+v", ep)
	}
}

// TestWebhookTestMessage: POST …/test sends webhook.test, whatever the
// filters.
func TestWebhookTestMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookDelivery)
	admin := e.as(auth.RoleAdmin)
	rc := newReceiver(t, e)
	ep := createWebhook(t, admin, map[string]any{"url": rc.url, "event_types": []string{"stage.moved"}})
	rc.expect(ep.Secret)
	m := sendTest(t, admin, ep.ID)
	if m.EventID != "" || m.Model != "" || m.Attempts != 0 || m.NextAttemptAt == nil {
		t.Errorf("queued test message: %+v", m)
	}
	d := rc.wait(webhook.TypeTest, 1)[0]
	if d.id != m.MsgID || d.env.ID != m.MsgID || d.env.Data["endpoint_id"] != float64(ep.ID) || d.env.Data["requested_by"] != "admin" {
		t.Errorf("test delivery: id %s, envelope %+v", d.id, d.env)
	}
	if _, ok := d.env.Data["seq"]; ok {
		t.Errorf("a test message has a seq: %v", d.env.Data)
	}
	got := waitMessage(t, admin, ep.ID, m.ID, "delivered", func(m webhook.Message) bool { return m.Status == webhook.StatusDelivered })
	if got.Attempts != 1 || len(got.Log) != 1 {
		t.Errorf("test message after delivery: %+v", got)
	}
	// A retried POST with its Idempotency-Key queues nothing more.
	req := apitest.Request{Method: "POST", Path: hookPath(ep.ID, "/test"), Header: withKey("test-once")}
	first, again := admin.Do(req), admin.Do(req)
	wantStatus(t, "test with a key", first, http.StatusAccepted)
	wantStatus(t, "test with the key again", again, http.StatusAccepted)
	if string(first.Body) != string(again.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replayed test: %s then %s", first.Body, again.Body)
	}
	if n := len(messagesOf(t, admin, ep.ID, "event_type=webhook.test")); n != 2 {
		t.Errorf("%d test messages, want 2", n)
	}
}

// TestWebhookFailureAndRedelivery: a receiver that answers 500 makes the
// message pending with a retry ahead; a redelivery sends it again at once
// with the same webhook-id and a new timestamp.
func TestWebhookFailureAndRedelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookDelivery)
	admin := e.as(auth.RoleAdmin)
	rc := newReceiver(t, e)
	rc.status.Store(http.StatusInternalServerError)
	createModel(t, admin, map[string]any{"name": "ranker"})
	ep := createWebhook(t, admin, map[string]any{"url": rc.url, "event_types": []string{"model_version.created"}, "models": []string{"ranker"}})
	rc.expect(ep.Secret)
	registerVersion(t, admin, "ranker", "v1")

	msgs := messagesOf(t, admin, ep.ID, "")
	if len(msgs) != 1 || msgs[0].EventType != "model_version.created" {
		t.Fatalf("deliveries: %+v", msgs)
	}
	mid := msgs[0].ID
	m := waitMessage(t, admin, ep.ID, mid, "attempted", func(m webhook.Message) bool { return m.Attempts >= 1 })
	if m.Status != webhook.StatusPending || m.NextAttemptAt == nil || !m.NextAttemptAt.After(time.Now()) ||
		m.LastStatus == nil || *m.LastStatus != 500 || m.LastError != "answered 500" || m.DeliveredAt != nil {
		t.Errorf("failed message: %+v", m)
	}
	if len(m.Log) < 1 || m.Log[0].Delivered || m.Log[0].ResponseStatus == nil || *m.Log[0].ResponseStatus != 500 || m.Log[0].ResponseBody != "answer 500" {
		t.Errorf("failed attempt: %+v", m.Log)
	}
	if ep := get[webhook.Endpoint](t, admin, hookPath(ep.ID)); ep.FailingSince == nil || ep.Pending != 1 || !ep.Enabled {
		t.Errorf("endpoint failing: %+v", ep)
	}
	failed := rc.deliveries("")[0]

	// The receiver recovers; redeliver in a later second than the failed
	// attempt, so that the timestamps differ.
	rc.status.Store(http.StatusOK)
	ts, _ := strconv.ParseInt(failed.timestamp, 10, 64)
	time.Sleep(time.Until(time.Unix(ts+1, 0)))
	res := admin.Send("POST", hookPath(ep.ID, fmt.Sprintf("/deliveries/%d/redeliver", mid)), nil)
	wantStatus(t, "redeliver", res, http.StatusAccepted)
	var queued webhook.Message
	res.Decode(t, &queued)
	if queued.ID != mid || queued.MsgID != failed.id {
		t.Errorf("redeliver answered %+v", queued)
	}
	m = waitMessage(t, admin, ep.ID, mid, "delivered", func(m webhook.Message) bool { return m.Status == webhook.StatusDelivered })
	last := rc.deliveries("")[len(rc.deliveries(""))-1]
	if last.id != failed.id || last.timestamp == failed.timestamp || last.env.ID != failed.env.ID {
		t.Errorf("redelivery: webhook-id %s timestamp %s (failed attempt: %s at %s)", last.id, last.timestamp, failed.id, failed.timestamp)
	}
	if last.signature == failed.signature {
		t.Error("the redelivery carries the failed attempt's signature")
	}
	if n := len(m.Log); n < 2 || !m.Log[n-1].Delivered || m.Log[n-1].Attempt != n || m.Attempts != n || m.NextAttemptAt != nil || m.LastError != "" {
		t.Errorf("message after redelivery: %+v", m)
	}
	if ep := get[webhook.Endpoint](t, admin, hookPath(ep.ID)); ep.FailingSince != nil || ep.Pending != 0 {
		t.Errorf("endpoint after redelivery: %+v", ep)
	}
	// Another endpoint's message, or none, is not redelivered here.
	other := createWebhook(t, admin, map[string]any{"url": rc.url})
	wantErr(t, "redeliver another endpoint's message", admin.Send("POST", hookPath(other.ID, fmt.Sprintf("/deliveries/%d/redeliver", mid)), nil), 404, "", "")
	wantErr(t, "read another endpoint's message", admin.Get(hookPath(other.ID, fmt.Sprintf("/deliveries/%d", mid))), 404, "", "")
	wantErr(t, "redeliver no message", admin.Send("POST", hookPath(ep.ID, "/deliveries/999999/redeliver"), nil), 404, "", "")
}

// TestWebhookSecretRotation: during a rotation window both secrets sign;
// a window of 0s leaves the new one alone.
func TestWebhookSecretRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookDelivery)
	admin := e.as(auth.RoleAdmin)
	rc := newReceiver(t, e)
	ep := createWebhook(t, admin, map[string]any{"url": rc.url})
	old := ep.Secret
	rc.expect(old)
	sendTest(t, admin, ep.ID)
	if d := rc.wait("", 1)[0]; len(signatures(d)) != 1 {
		t.Errorf("before rotation: %d signatures", len(signatures(d)))
	}

	r1 := rotate(t, admin, ep.ID, "1h")
	if r1.Secret == old || r1.RotatingUntil == nil || r1.RotatingUntil.Sub(time.Now().Add(time.Hour)).Abs() > time.Minute {
		t.Errorf("rotation of 1h: %+v", r1.Endpoint)
	}
	if got := get[webhook.Endpoint](t, admin, hookPath(ep.ID)); got.RotatingUntil == nil {
		t.Errorf("endpoint during rotation: %+v", got)
	}
	rc.expect(old, r1.Secret) // each alone must verify
	sendTest(t, admin, ep.ID)
	d := rc.wait("", 2)[1]
	if sigs := signatures(d); len(sigs) != 2 || !strings.HasPrefix(sigs[0], "v1,") || !strings.HasPrefix(sigs[1], "v1,") || sigs[0] == sigs[1] {
		t.Errorf("during rotation: signature header %q, want two v1 signatures", d.signature)
	}
	for name, s := range map[string]string{"old": old, "new": r1.Secret} {
		if err := verify(s, d); err != nil {
			t.Errorf("during rotation, the %s secret does not verify: %v", name, err)
		}
	}

	r2 := rotate(t, admin, ep.ID, "0s")
	if r2.Secret == r1.Secret || r2.RotatingUntil != nil {
		t.Errorf("rotation of 0s: %+v", r2.Endpoint)
	}
	rc.expect(r2.Secret)
	sendTest(t, admin, ep.ID)
	d = rc.wait("", 3)[2]
	if len(signatures(d)) != 1 {
		t.Errorf("after a rotation of 0s: signature header %q, want one", d.signature)
	}
	for name, s := range map[string]string{"first": old, "second": r1.Secret} {
		if verify(s, d) == nil {
			t.Errorf("the %s secret still verifies after a rotation of 0s", name)
		}
	}
}

// TestWebhookDisableEnableAndReplay: nothing goes to a disabled endpoint;
// enabled again, what waited is sent; replay sends what an endpoint
// missed, once.
func TestWebhookDisableEnableAndReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookDelivery)
	admin := e.as(auth.RoleAdmin)
	rc := newReceiver(t, e)
	createModel(t, admin, map[string]any{"name": "ranker"})
	for i := range 3 {
		registerVersion(t, admin, "ranker", fmt.Sprint("v", i+1))
	}
	t0 := time.Now().Add(-time.Second)
	ep := createWebhook(t, admin, map[string]any{"url": rc.url, "event_types": []string{"stage.moved"}})
	rc.expect(ep.Secret)
	promote(t, admin, "ranker", 1, "production", "first", true, "promoted")
	first := rc.wait("stage.moved", 1)[0]

	res := admin.Send("PATCH", hookPath(ep.ID), map[string]any{"enabled": false})
	wantStatus(t, "disable", res, http.StatusOK)
	var off webhook.Endpoint
	res.Decode(t, &off)
	if off.Enabled || off.DisabledAt == nil || !strings.Contains(off.DisabledReason, "admin") {
		t.Errorf("disabled endpoint: %+v", off)
	}
	wantErr(t, "test to a disabled endpoint", admin.Send("POST", hookPath(ep.ID, "/test"), nil), 409, "", "disabled")
	wantErr(t, "replay to a disabled endpoint", admin.Send("POST", hookPath(ep.ID, "/replay"), map[string]any{"since": t0.Format(time.RFC3339)}), 409, "", "disabled")

	promote(t, admin, "ranker", 2, "production", "second", true, "promoted")
	time.Sleep(1500 * time.Millisecond)
	if n := len(rc.deliveries("")); n != 1 {
		t.Errorf("a disabled endpoint got %d deliveries", n-1)
	}

	res = admin.Send("PATCH", hookPath(ep.ID), map[string]any{"enabled": true})
	wantStatus(t, "enable", res, http.StatusOK)
	var on webhook.Endpoint
	res.Decode(t, &on)
	if !on.Enabled || on.DisabledAt != nil || on.DisabledReason != "" || on.FailingSince != nil {
		t.Errorf("enabled endpoint: %+v", on)
	}
	// The move made while it was disabled waited for it.
	isV2 := func(d delivery) bool { return d.env.Data["version"] == float64(2) }
	eventually(t, 5*time.Second, "the stage.moved of version 2, which waited while the endpoint was disabled",
		func() bool { return slices.ContainsFunc(rc.deliveries("stage.moved"), isV2) })

	// Replay sends what the endpoint did not get (and nothing twice).
	res = admin.Send("POST", hookPath(ep.ID, "/replay"), map[string]any{"since": t0.Format(time.RFC3339Nano)})
	wantStatus(t, "replay", res, http.StatusAccepted)
	var replay struct {
		Queued int `json:"queued"`
	}
	res.Decode(t, &replay)
	t.Logf("replay queued %d", replay.Queued)
	eventually(t, 10*time.Second, "version 2's stage.moved after the replay",
		func() bool { return slices.ContainsFunc(rc.deliveries("stage.moved"), isV2) })
	eventually(t, 10*time.Second, "nothing pending", func() bool { return len(messagesOf(t, admin, ep.ID, "status=pending")) == 0 })
	res = admin.Send("POST", hookPath(ep.ID, "/replay"), map[string]any{"since": t0.Format(time.RFC3339)})
	wantStatus(t, "replay again", res, http.StatusAccepted)
	if res.Decode(t, &replay); replay.Queued != 0 {
		t.Errorf("a second replay queued %d, want 0", replay.Queued)
	}
	moved := rc.deliveries("stage.moved")
	var second delivery
	for _, d := range moved {
		if isV2(d) {
			second = d
		}
	}
	if len(moved) != 2 || second.env.Data["seq"].(float64) <= first.env.Data["seq"].(float64) || second.env.Data["previous_version"] != float64(1) {
		t.Errorf("stage.moved deliveries after the replays: %d; v1 %v, v2 %v", len(moved), first.env.Data, second.env.Data)
	}

	// An endpoint registered later gets the earlier events by replay: the
	// same events (ids), in messages of its own.
	rc2 := newReceiver(t, e)
	late := createWebhook(t, admin, map[string]any{"url": rc2.url, "event_types": []string{"stage.moved"}, "models": []string{"ranker"}})
	rc2.expect(late.Secret)
	res = admin.Send("POST", hookPath(late.ID, "/replay"), map[string]any{"since": t0.Format(time.RFC3339)})
	wantStatus(t, "replay to a new endpoint", res, http.StatusAccepted)
	if res.Decode(t, &replay); replay.Queued != 2 {
		t.Errorf("replay to a new endpoint queued %d, want 2", replay.Queued)
	}
	got := rc2.wait("stage.moved", 2)
	ids := map[string]bool{first.env.ID: true, second.env.ID: true}
	for _, d := range got {
		if !ids[d.env.ID] || d.id == first.id || d.id == second.id {
			t.Errorf("replayed to the new endpoint: event %s message %s", d.env.ID, d.id)
		}
	}
	res = admin.Send("POST", hookPath(late.ID, "/replay"), map[string]any{"since": time.Now().Add(time.Hour).Format(time.RFC3339)})
	wantStatus(t, "replay from the future", res, http.StatusAccepted)
	if res.Decode(t, &replay); replay.Queued != 0 {
		t.Errorf("replay from the future queued %d", replay.Queued)
	}
}

// TestWebhookWorkersIdleWhileADisabledEndpointWaits: a message that is due
// for a disabled endpoint cannot be claimed; the workers must not poll
// the database for it in a tight loop.
func TestWebhookWorkersIdleWhileADisabledEndpointWaits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookDelivery)
	admin := e.as(auth.RoleAdmin)
	rc := newReceiver(t, e)
	ep := createWebhook(t, admin, map[string]any{"url": rc.url})
	rc.expect(ep.Secret)
	m := sendTest(t, admin, ep.ID)
	rc.wait(webhook.TypeTest, 1)
	waitMessage(t, admin, ep.ID, m.ID, "delivered", func(m webhook.Message) bool { return m.Status == webhook.StatusDelivered })
	wantStatus(t, "disable", admin.Send("PATCH", hookPath(ep.ID), map[string]any{"enabled": false}), http.StatusOK)
	wantStatus(t, "redeliver while disabled", admin.Send("POST", hookPath(ep.ID, fmt.Sprintf("/deliveries/%d/redeliver", m.ID)), nil), http.StatusAccepted)
	time.Sleep(500 * time.Millisecond)
	before := e.db.Pool.Stat().AcquireCount()
	time.Sleep(2 * time.Second)
	if n := e.db.Pool.Stat().AcquireCount() - before; n > 50 {
		t.Errorf("idle delivery workers took %d database connections in 2 s while a disabled endpoint had a due message (want a few)", n)
	}
	if n := len(rc.deliveries("")); n != 1 {
		t.Errorf("a disabled endpoint got a redelivery")
	}
	wantStatus(t, "enable", admin.Send("PATCH", hookPath(ep.ID), map[string]any{"enabled": true}), http.StatusOK)
	rc.wait(webhook.TypeTest, 2)
}

// TestWebhookBadInputs: what the API refuses, and to whom.
func TestWebhookBadInputs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.as(auth.RoleAdmin)
	createModel(t, admin, map[string]any{"name": "ranker"})
	ep := createWebhook(t, admin, map[string]any{"url": "http://127.0.0.1:1/hook", "models": []string{"ranker"}})
	m := sendTest(t, admin, ep.ID)

	for _, tc := range []struct {
		what  string
		body  any
		field string
		text  string
	}{
		{"metadata address", map[string]any{"url": "http://169.254.169.254/latest/meta-data"}, "url", "link-local"},
		{"metadata address v6", map[string]any{"url": "http://[fd00:ec2::254]/"}, "url", "metadata"},
		{"unspecified address", map[string]any{"url": "http://0.0.0.0:8080/"}, "url", ""},
		{"ftp", map[string]any{"url": "ftp://x"}, "url", "http"},
		{"credentials", map[string]any{"url": "https://user:secret@example.com/hook"}, "url", "credentials"},
		{"fragment", map[string]any{"url": "https://example.com/hook#x"}, "url", ""},
		{"no host", map[string]any{"url": "https:///hook"}, "url", ""},
		{"no url", map[string]any{"description": "x"}, "url", ""},
		{"too long", map[string]any{"url": "https://example.com/" + strings.Repeat("a", 2048)}, "url", ""},
		{"unknown event type", map[string]any{"url": "https://example.com/", "event_types": []string{"model.deleted"}}, "event_types[0]", "stage.moved"},
		{"second event type", map[string]any{"url": "https://example.com/", "event_types": []string{"stage.moved", "webhook.test"}}, "event_types[1]", ""},
		{"unknown model", map[string]any{"url": "https://example.com/", "models": []string{"ranker", "ghost"}}, "models[1]", "ghost"},
		{"control characters", map[string]any{"url": "https://example.com/", "description": "a\x00b"}, "description", ""},
		{"own secret", map[string]any{"url": "https://example.com/", "secret": "whsec_AAAA"}, "secret", ""},
		{"url not a string", map[string]any{"url": 42}, "url", ""},
		{"not an object", []string{"https://example.com/"}, "body", ""},
	} {
		wantErr(t, "create: "+tc.what, admin.Send("POST", "/api/v1/webhooks", tc.body), 400, tc.field, tc.text)
	}
	// Every problem at once.
	res := admin.Send("POST", "/api/v1/webhooks", map[string]any{"url": "ftp://x", "event_types": []string{"nope"}, "models": []string{"ghost"}})
	for _, f := range []string{"url", "event_types[0]", "models[0]"} {
		wantErr(t, "create with three problems", res, 400, f, "")
	}
	wantErr(t, "create as text", admin.Do(apitest.Request{Method: "POST", Path: "/api/v1/webhooks", Body: `{"url":"https://example.com/"}`, ContentType: "text/plain"}),
		415, "", "")
	wantErr(t, "create without a body", admin.Do(apitest.Request{Method: "POST", Path: "/api/v1/webhooks"}), 415, "", "")
	// The answer holds a secret: an Idempotency-Key cannot replay it.
	for _, p := range []string{"/api/v1/webhooks", hookPath(ep.ID, "/rotate")} {
		body := map[string]any{"url": "https://example.com/"}
		if strings.HasSuffix(p, "/rotate") {
			body = map[string]any{"window": "1h"}
		}
		res := admin.Do(apitest.Request{Method: "POST", Path: p, Body: body, Header: withKey("k-" + p)})
		wantErr(t, "Idempotency-Key on "+p, res, 400, "Idempotency-Key", "secret")
		if strings.Contains(string(res.Body), "whsec_") {
			t.Errorf("%s with an Idempotency-Key answered a secret", p)
		}
	}
	var kept int
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM idempotency_keys WHERE position('whsec_'::bytea in body) > 0`).Scan(&kept); err != nil {
		t.Fatalf("count kept answers: %v", err)
	} else if kept != 0 {
		t.Errorf("%d kept answers hold a webhook secret", kept)
	}

	// PATCH
	for _, tc := range []struct {
		what  string
		body  any
		field string
	}{
		{"nothing", map[string]any{}, "body"},
		{"only nulls", map[string]any{"url": nil, "models": nil}, "body"},
		{"bad url", map[string]any{"url": "ftp://x"}, "url"},
		{"metadata url", map[string]any{"url": "http://169.254.169.254/"}, "url"},
		{"unknown event type", map[string]any{"event_types": []string{"nope"}}, "event_types[0]"},
		{"unknown model", map[string]any{"models": []string{"ghost"}}, "models[0]"},
		{"enabled not a boolean", map[string]any{"enabled": "yes"}, "enabled"},
		{"unknown field", map[string]any{"secret": "x"}, "secret"},
	} {
		wantErr(t, "patch: "+tc.what, admin.Send("PATCH", hookPath(ep.ID), tc.body), 400, tc.field, "")
	}
	wantErr(t, "patch with an empty body", admin.Do(apitest.Request{Method: "PATCH", Path: hookPath(ep.ID), Body: "", ContentType: "application/json"}), 400, "body", "")
	wantErr(t, "patch without a body", admin.Do(apitest.Request{Method: "PATCH", Path: hookPath(ep.ID)}), 415, "", "")
	if got := get[webhook.Endpoint](t, admin, hookPath(ep.ID)); got.URL != ep.URL || !got.Enabled || !slices.Equal(got.Models, []string{"ranker"}) {
		t.Errorf("refused patches changed the endpoint: %+v", got)
	}
	// A good one, for contrast: filters cleared with [].
	res = admin.Send("PATCH", hookPath(ep.ID), map[string]any{"models": []string{}, "event_types": []string{"stage.moved", "evaluation.created"}, "description": "d"})
	wantStatus(t, "patch", res, http.StatusOK)
	var patched webhook.Endpoint
	res.Decode(t, &patched)
	if len(patched.Models) != 0 || len(patched.EventTypes) != 2 || patched.Description != "d" || patched.URL != ep.URL || !patched.UpdatedAt.After(ep.UpdatedAt) {
		t.Errorf("patched: %+v", patched)
	}

	// rotate, replay
	for _, w := range []string{"forever", "-1h", "169h", "1"} {
		wantErr(t, "rotate window "+w, admin.Send("POST", hookPath(ep.ID, "/rotate"), map[string]any{"window": w}), 400, "window", "")
	}
	wantErr(t, "rotate: unknown field", admin.Send("POST", hookPath(ep.ID, "/rotate"), map[string]any{"grace": "1h"}), 400, "grace", "")
	for _, tc := range []struct {
		what string
		body any
	}{
		{"no since", map[string]any{}},
		{"null since", map[string]any{"since": nil}},
		{"since not a time", map[string]any{"since": "yesterday"}},
		{"since a date", map[string]any{"since": "2026-01-02"}},
	} {
		wantErr(t, "replay: "+tc.what, admin.Send("POST", hookPath(ep.ID, "/replay"), tc.body), 400, "since", "RFC 3339")
	}
	wantErr(t, "replay: unknown field", admin.Send("POST", hookPath(ep.ID, "/replay"), map[string]any{"since": "2026-01-02T00:00:00Z", "until": "x"}), 400, "until", "")

	// deliveries
	for _, tc := range []struct{ query, field string }{
		{"status=bogus", "status"},
		{"model=ranker", "model"},
		{"status=pending&page=2", "page"},
		{"limit=0", "limit"},
		{"limit=201", "limit"},
		{"cursor=garbage", "cursor"},
	} {
		wantErr(t, "deliveries?"+tc.query, admin.Get(hookPath(ep.ID, "/deliveries?"+tc.query)), 400, tc.field, "")
	}
	wantErr(t, "webhooks?limit=0", admin.Get("/api/v1/webhooks?limit=0"), 400, "limit", "")
	wantErr(t, "webhooks?cursor=garbage", admin.Get("/api/v1/webhooks?cursor=garbage"), 400, "cursor", "")

	// Ids that are not ids; ids of nothing.
	routes := []struct{ method, path string }{
		{"GET", "%s"}, {"PATCH", "%s"}, {"POST", "%s/rotate"}, {"POST", "%s/test"}, {"POST", "%s/replay"}, {"GET", "%s/deliveries"},
		{"GET", "%s/deliveries/%d"}, {"POST", "%s/deliveries/%d/redeliver"},
	}
	bodyOf := func(method, path string) any {
		switch {
		case method == "PATCH":
			return map[string]any{"enabled": true}
		case strings.HasSuffix(path, "/rotate"):
			return map[string]any{"window": "0s"}
		case strings.HasSuffix(path, "/replay"):
			return map[string]any{"since": "2026-01-02T00:00:00Z"}
		}
		return nil
	}
	fill := func(pattern, id string, mid int64) string {
		p := strings.Replace(pattern, "%s", "/api/v1/webhooks/"+id, 1)
		if strings.Contains(p, "%d") {
			p = fmt.Sprintf(p, mid)
		}
		return p
	}
	for _, r := range routes {
		for _, id := range []string{"abc", "0", "-1"} {
			p := fill(r.path, id, m.ID)
			wantErr(t, r.method+" "+p, admin.Send(r.method, p, bodyOf(r.method, p)), 400, "id", "")
		}
		p := fill(r.path, "999999", m.ID)
		wantErr(t, r.method+" "+p, admin.Send(r.method, p, bodyOf(r.method, p)), 404, "", "")
	}
	for _, mid := range []string{"x", "0"} {
		wantErr(t, "delivery "+mid, admin.Get(hookPath(ep.ID, "/deliveries/"+mid)), 400, "message", "")
		wantErr(t, "redeliver "+mid, admin.Send("POST", hookPath(ep.ID, "/deliveries/"+mid+"/redeliver"), nil), 400, "message", "")
	}
	wantErr(t, "delivery 999999", admin.Get(hookPath(ep.ID, "/deliveries/999999")), 404, "", "")

	// Admins only, on every route.
	for _, role := range []auth.Role{auth.RoleViewer, auth.RoleContributor, auth.RoleReviewer} {
		c := e.as(role)
		wantErr(t, string(role)+" lists webhooks", c.Get("/api/v1/webhooks"), 403, "", "")
		wantErr(t, string(role)+" creates a webhook", c.Send("POST", "/api/v1/webhooks", map[string]any{"url": "https://example.com/"}), 403, "", "")
		for _, r := range routes {
			p := fill(r.path, strconvFormat(ep.ID), m.ID)
			wantErr(t, string(role)+" "+r.method+" "+p, c.Send(r.method, p, bodyOf(r.method, p)), 403, "", "")
		}
	}
	if n := len(get[listPage[webhook.Endpoint]](t, admin, "/api/v1/webhooks").Items); n != 1 {
		t.Errorf("%d endpoints after the refusals, want 1", n)
	}
	if got := get[webhook.Endpoint](t, admin, hookPath(ep.ID)); got.RotatingUntil != nil || !got.Enabled {
		t.Errorf("refused requests changed the endpoint: %+v", got)
	}
}

// TestWebhookWithoutKey: without SLIPWAY_WEBHOOK_KEY no secret can be
// sealed: creating and rotating are 503, reading works.
func TestWebhookWithoutKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutWebhookKey)
	admin := e.as(auth.RoleAdmin)
	// The message names the setting: retrying would not help.
	wantErr(t, "create without a key", admin.Send("POST", "/api/v1/webhooks", map[string]any{"url": "https://example.com/"}), 503, "", "SLIPWAY_WEBHOOK_KEY")
	wantErr(t, "rotate without a key", admin.Send("POST", "/api/v1/webhooks/1/rotate", map[string]any{"window": "0s"}), 503, "", "SLIPWAY_WEBHOOK_KEY")
	if p := get[listPage[webhook.Endpoint]](t, admin, "/api/v1/webhooks"); len(p.Items) != 0 || p.NextCursor != "" {
		t.Errorf("list without a key: %+v", p)
	}
}

// TestWebhookPages: endpoints oldest first and deliveries newest first,
// one at a time.
func TestWebhookPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.as(auth.RoleAdmin)
	var ids []int64
	for i := range 3 {
		ids = append(ids, createWebhook(t, admin, map[string]any{"url": fmt.Sprintf("http://127.0.0.1:1/hook%d", i)}).ID)
	}
	walk := func(path string) (got []int64, pages int) {
		t.Helper()
		cursor := ""
		for pages = 1; ; pages++ {
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			p := get[listPage[struct {
				ID int64 `json:"id"`
			}]](t, admin, path+sep+"limit=1&cursor="+url.QueryEscape(cursor))
			if len(p.Items) > 1 {
				t.Fatalf("%s: %d items on a page of 1", path, len(p.Items))
			}
			for _, it := range p.Items {
				got = append(got, it.ID)
			}
			if p.NextCursor == "" || pages > 20 {
				return got, pages
			}
			cursor = p.NextCursor
		}
	}
	if got, pages := walk("/api/v1/webhooks"); !slices.Equal(got, ids) || pages != 3 {
		t.Errorf("endpoints page by page: %v in %d pages, want %v in 3", got, pages, ids)
	}

	var msgs []int64
	for range 3 {
		msgs = append(msgs, sendTest(t, admin, ids[0]).ID)
	}
	sendTest(t, admin, ids[1]) // another endpoint's
	slices.Reverse(msgs)
	for _, tc := range []struct {
		query string
		want  []int64
	}{
		{"", msgs},
		{"status=pending", msgs},
		{"event_type=webhook.test", msgs},
		{"status=pending&event_type=webhook.test", msgs},
		{"status=delivered", nil},
		{"status=failed", nil},
		{"event_type=stage.moved", nil},
	} {
		got, pages := walk(hookPath(ids[0], "/deliveries?"+tc.query))
		if !slices.Equal(got, tc.want) || pages != max(len(tc.want), 1) {
			t.Errorf("deliveries?%s page by page: %v in %d pages, want %v", tc.query, got, pages, tc.want)
		}
	}
	if got, _ := walk(hookPath(ids[2], "/deliveries")); len(got) != 0 {
		t.Errorf("deliveries of an endpoint without messages: %v", got)
	}
	// A message not yet attempted has an empty log, not a missing one.
	res := admin.Get(hookPath(ids[0], fmt.Sprintf("/deliveries/%d", msgs[0])))
	wantStatus(t, "one message", res, http.StatusOK)
	if !strings.Contains(string(res.Body), `"log":[]`) {
		t.Errorf("message without attempts: %s", res.Body)
	}
	if ep := get[webhook.Endpoint](t, admin, hookPath(ids[0])); ep.Pending != 3 || ep.Failed != 0 {
		t.Errorf("endpoint with 3 messages waiting: pending %d failed %d", ep.Pending, ep.Failed)
	}
}

// TestWebhookAttemptWhoseBodyCannotBeMadeIsLogged: when the body of a
// message cannot be made (here a payload that is not a JSON object, as a
// stand-in for any failure of Dispatcher.body: reading the event,
// presigning an artifact), the attempt is still a failed attempt: logged,
// counted, retried on the schedule. It must not leave the message leased
// and unlogged, claimed again at every lease expiry.
func TestWebhookAttemptWhoseBodyCannotBeMadeIsLogged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookDelivery)
	admin := e.as(auth.RoleAdmin)
	rc := newReceiver(t, e)
	ep := createWebhook(t, admin, map[string]any{"url": rc.url})
	ctx := context.Background()
	var mid int64
	if err := e.db.Pool.QueryRow(ctx, `
		INSERT INTO webhook_messages (msg_id, endpoint_id, event_type, payload, status, next_attempt_at)
		VALUES ('msg_0bad0b0d', $1, 'webhook.test', '[]', 'pending', now()) RETURNING id`, ep.ID).Scan(&mid); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(ctx, `SELECT pg_notify('slipway_webhooks', '')`); err != nil {
		t.Fatal(err)
	}
	m := waitMessage(t, admin, ep.ID, mid, "attempted", func(m webhook.Message) bool { return m.Attempts >= 1 })
	if len(m.Log) != 1 || m.Log[0].Delivered || !strings.Contains(m.Log[0].Error, "could not build the message") ||
		m.Status != webhook.StatusPending || m.NextAttemptAt == nil {
		t.Errorf("a message whose body cannot be made: %+v", m)
	}
	if n := len(rc.deliveries("")); n != 0 {
		t.Errorf("the receiver got %d requests", n)
	}
}
