package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/blob"
)

// DispatchConfig tunes delivery.
type DispatchConfig struct {
	// Workers deliver at once, each one message at a time (default 4).
	Workers int
	// Timeout bounds one attempt (default 15 s).
	Timeout time.Duration
	// Lease is how long a claimed message is a worker's: longer than an
	// attempt, so that no two workers send it at once (default 2 min).
	Lease time.Duration
	// Schedule is the wait before each retry (default DefaultSchedule).
	Schedule []time.Duration
	// DisableAfter disables an endpoint that fails continuously this long
	// (default 5 days).
	DisableAfter time.Duration
	// PublicURL is where Slipway's pages are (links in payloads).
	PublicURL string
	// PresignTTL is how long artifact URLs in payloads work (default 1 h).
	PresignTTL time.Duration
	// Now is the clock (tests move it).
	Now func() time.Time
}

func (c *DispatchConfig) defaults() {
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Timeout <= 0 {
		c.Timeout = 15 * time.Second
	}
	if c.Lease <= 0 {
		c.Lease = max(2*time.Minute, 2*c.Timeout)
	}
	if c.Schedule == nil {
		c.Schedule = DefaultSchedule
	}
	if c.DisableAfter <= 0 {
		c.DisableAfter = 5 * 24 * time.Hour
	}
	if c.PresignTTL <= 0 {
		c.PresignTTL = time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Dispatcher delivers pending messages. Several processes may run one on
// the same database: a message is claimed with FOR UPDATE SKIP LOCKED and
// leased to one worker.
type Dispatcher struct {
	db     *pgxpool.Pool
	svc    *Service
	store  blob.Store
	client *http.Client
	cfg    DispatchConfig
	log    *slog.Logger
	mu     sync.Mutex
	rng    *rand.Rand
}

// NewDispatcher returns a dispatcher over db; store presigns artifact URLs
// when it can.
func NewDispatcher(db *pgxpool.Pool, svc *Service, store blob.Store, policy AddressPolicy, cfg DispatchConfig, log *slog.Logger) *Dispatcher {
	cfg.defaults()
	return &Dispatcher{db: db, svc: svc, store: store, client: policy.Client(cfg.Timeout), cfg: cfg, log: log,
		rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 42))}
}

// Run delivers until ctx ends: woken at once by LISTEN/NOTIFY when a
// message is queued, and by a timer for retries that fall due.
func (d *Dispatcher) Run(ctx context.Context) {
	ctx = audit.WithActor(ctx, audit.System)
	wake := make(chan struct{}, d.cfg.Workers)
	go d.listen(ctx, wake)
	var wg sync.WaitGroup
	for range d.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.work(ctx, wake)
		}()
	}
	wg.Wait()
}

// listen turns notifications into wake-ups, on a connection of its own;
// it reconnects when the connection drops.
func (d *Dispatcher) listen(ctx context.Context, wake chan<- struct{}) {
	for ctx.Err() == nil {
		err := func() error {
			conn, err := d.db.Acquire(ctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
				return err
			}
			defer conn.Exec(context.WithoutCancel(ctx), "UNLISTEN "+NotifyChannel)
			for {
				if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
					return err
				}
				for range cap(wake) {
					select {
					case wake <- struct{}{}:
					default:
					}
				}
			}
		}()
		if ctx.Err() != nil {
			return
		}
		d.log.Warn("webhook notifications lost; listening again", "error", err)
		sleep(ctx, time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// work claims and delivers messages one at a time; idle, it waits for a
// notification or for the next retry to fall due (at most 5 s: a missed
// notification costs that much).
func (d *Dispatcher) work(ctx context.Context, wake <-chan struct{}) {
	for ctx.Err() == nil {
		ok, err := d.DeliverOne(ctx)
		if err != nil && ctx.Err() == nil {
			d.log.Warn("webhook delivery", "error", err)
			sleep(ctx, time.Second)
			continue
		}
		if ok {
			continue
		}
		wait := 5 * time.Second
		var next *time.Time
		// the next message this worker could claim: of an enabled endpoint,
		// not leased
		if d.db.QueryRow(ctx, `
			SELECT min(m.next_attempt_at) FROM webhook_messages m JOIN webhook_endpoints x ON x.id = m.endpoint_id
			WHERE m.status = 'pending' AND x.enabled AND (m.lease_until IS NULL OR m.lease_until < $1)`, d.cfg.Now()).Scan(&next) == nil && next != nil {
			wait = min(wait, max(10*time.Millisecond, next.Sub(d.cfg.Now())))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// claimed is a message leased for one attempt.
type claimed struct {
	id, endpointID   int64
	msgID, eventType string
	eventID          *int64
	payload          json.RawMessage
	attempts         int
	url              string
	secret, previous []byte
	previousUntil    *time.Time
}

// claim leases the message due first, of an enabled endpoint; nil when
// none is due.
func (d *Dispatcher) claim(ctx context.Context) (*claimed, error) {
	now := d.cfg.Now()
	var c claimed
	err := d.db.QueryRow(ctx, `
		UPDATE webhook_messages w SET lease_until = $1::timestamptz + make_interval(secs => $2)
		FROM webhook_endpoints e
		WHERE w.id = (
			SELECT m.id FROM webhook_messages m JOIN webhook_endpoints x ON x.id = m.endpoint_id
			WHERE m.status = 'pending' AND m.next_attempt_at <= $1 AND (m.lease_until IS NULL OR m.lease_until < $1) AND x.enabled
			ORDER BY m.next_attempt_at, m.id LIMIT 1 FOR UPDATE OF m SKIP LOCKED)
		  AND e.id = w.endpoint_id
		RETURNING w.id, w.endpoint_id, w.msg_id, w.event_type, w.event_id, w.payload, w.attempts, e.url, e.secret, e.previous_secret, e.previous_until`,
		now, d.cfg.Lease.Seconds()).Scan(&c.id, &c.endpointID, &c.msgID, &c.eventType, &c.eventID, &c.payload, &c.attempts, &c.url,
		&c.secret, &c.previous, &c.previousUntil)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim a webhook message: %w", err)
	}
	return &c, nil
}

// DeliverOne claims one due message and makes one attempt; false when
// nothing was due.
func (d *Dispatcher) DeliverOne(ctx context.Context) (bool, error) {
	c, err := d.claim(ctx)
	if err != nil || c == nil {
		return false, err
	}
	return true, d.attempt(ctx, c)
}

// Envelope is the JSON body of every message.
type Envelope struct {
	Type      string         `json:"type"`
	ID        string         `json:"id"` // the event's id (evt_…); the message's for a test
	Timestamp time.Time      `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

// body makes a message's bytes: the event's payload, its model and
// sequence number, a link to the version's page and fresh presigned URLs
// to its artifacts (made at each attempt: they are short-lived).
func (d *Dispatcher) body(ctx context.Context, c *claimed) ([]byte, error) {
	env := Envelope{Type: c.eventType, ID: c.msgID, Timestamp: d.cfg.Now().UTC(), Data: map[string]any{}}
	if c.eventID == nil {
		if err := json.Unmarshal(c.payload, &env.Data); err != nil {
			return nil, err
		}
		return json.Marshal(env)
	}
	var payload []byte
	var model string
	var seq int64
	if err := d.db.QueryRow(ctx, `
		SELECT e.event_id, e.created_at, e.payload, coalesce(m.name, ''), coalesce(e.seq, 0)
		FROM events e LEFT JOIN models m ON m.id = e.model_id WHERE e.id = $1`, *c.eventID).
		Scan(&env.ID, &env.Timestamp, &payload, &model, &seq); err != nil {
		return nil, fmt.Errorf("read event: %w", err)
	}
	if err := json.Unmarshal(payload, &env.Data); err != nil {
		return nil, err
	}
	env.Timestamp = env.Timestamp.UTC()
	env.Data["model"], env.Data["seq"] = model, seq
	version, _ := env.Data["version"].(float64)
	if model != "" && version > 0 {
		v := int(version)
		env.Data["version_url"] = strings.TrimRight(d.cfg.PublicURL, "/") + fmt.Sprintf("/models/%s/versions/%d", url.PathEscape(model), v)
		if arts, ok := env.Data["artifacts"].([]any); ok && len(arts) > 0 {
			if err := d.artifactURLs(ctx, model, v, arts); err != nil {
				return nil, err
			}
		}
	}
	return json.Marshal(env)
}

type presigner interface {
	PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error)
}

func (d *Dispatcher) artifactURLs(ctx context.Context, model string, version int, arts []any) error {
	rows, err := d.db.Query(ctx, `
		SELECT a.path, a.object_key FROM model_artifacts a JOIN model_versions v ON v.id = a.version_id JOIN models m ON m.id = v.model_id
		WHERE m.name = $1 AND v.version = $2`, model, version)
	if err != nil {
		return fmt.Errorf("read artifacts: %w", err)
	}
	keys := map[string]string{}
	var p, k string
	if _, err := pgx.ForEachRow(rows, []any{&p, &k}, func() error { keys[p] = k; return nil }); err != nil {
		return fmt.Errorf("read artifacts: %w", err)
	}
	ps, canPresign := d.store.(presigner)
	for _, a := range arts {
		m, ok := a.(map[string]any)
		if !ok {
			continue
		}
		path, _ := m["path"].(string)
		key, ok := keys[path]
		if !ok {
			continue
		}
		if canPresign {
			u, err := ps.PresignGet(ctx, key, d.cfg.PresignTTL)
			if err != nil {
				return fmt.Errorf("presign %s: %w", path, err)
			}
			m["url"] = u
			m["url_expires_at"] = d.cfg.Now().Add(d.cfg.PresignTTL).UTC()
		} else {
			// a store without presigned URLs: Slipway's API (a token is needed)
			m["url"] = strings.TrimRight(d.cfg.PublicURL, "/") + fmt.Sprintf("/api/v1/models/%s/versions/%d/artifacts/%s",
				url.PathEscape(model), version, (&url.URL{Path: path}).EscapedPath())
		}
	}
	return nil
}

const maxResponseBody = 4 << 10

// outcome is what one attempt sent and got.
type outcome struct {
	body       []byte
	headers    map[string]string
	status     int // 0: no answer
	response   string
	err        string
	start      time.Time
	latency    time.Duration
	retryAfter string
}

// attempt sends a claimed message once and records what happened.
func (d *Dispatcher) attempt(ctx context.Context, c *claimed) error {
	o := outcome{start: d.cfg.Now()}
	var err error
	if o.body, err = d.body(ctx, c); err != nil {
		o.err = fmt.Sprintf("could not build the message: %v", err)
		return d.record(ctx, c, o)
	}
	secrets, err := d.svc.secrets(c.secret, c.previous, c.previousUntil)
	if err != nil {
		o.err = err.Error()
		return d.record(ctx, c, o)
	}
	ts := o.start.Unix()
	sig, err := Sign(c.msgID, ts, o.body, secrets...)
	if err != nil {
		o.err = err.Error()
		return d.record(ctx, c, o)
	}
	o.headers = map[string]string{
		"Content-Type":      "application/json",
		"User-Agent":        "Slipway-Webhooks/1",
		"webhook-id":        c.msgID,
		"webhook-timestamp": strconv.FormatInt(ts, 10),
		"webhook-signature": sig,
	}
	actx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.url, bytes.NewReader(o.body))
	if err != nil {
		o.err = err.Error()
		return d.record(ctx, c, o)
	}
	for k, v := range o.headers {
		req.Header[k] = []string{v}
	}
	t0 := time.Now()
	res, err := d.client.Do(req)
	o.latency = time.Since(t0)
	if err != nil {
		o.err = describe(err, d.cfg.Timeout)
		return d.record(ctx, c, o)
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(res.Body, maxResponseBody))
	io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20)) // let the connection be reused
	o.status, o.response, o.retryAfter = res.StatusCode, strings.ToValidUTF8(string(rb), "?"), res.Header.Get("Retry-After")
	if res.StatusCode >= 300 && res.StatusCode < 400 {
		o.err = "redirects are not followed: " + res.Header.Get("Location")
	}
	return d.record(ctx, c, o)
}

// describe says why an attempt got no answer, without Go's wrapping.
func describe(err error, timeout time.Duration) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, ErrAddressRefused):
		return err.Error()
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout"):
		return fmt.Sprintf("no answer within %s", timeout)
	}
	return err.Error()
}

// record writes an attempt, and moves its message and endpoint on: a 2xx
// delivers; anything else schedules the next retry (not before a
// Retry-After on 429 and 503), or gives up when the schedule is spent. A
// 410 disables the endpoint, and so does failing continuously for
// DisableAfter.
func (d *Dispatcher) record(ctx context.Context, c *claimed, o outcome) error {
	now := d.cfg.Now()
	if o.start.IsZero() {
		o.start = now
	}
	if o.body == nil {
		o.body = []byte{} // nothing was sent: the log says why
	}
	delivered := o.status >= 200 && o.status < 300
	n := c.attempts + 1
	headers, _ := json.Marshal(o.headers)
	if o.headers == nil {
		headers = []byte("{}")
	}
	var status *int
	if o.status != 0 {
		status = &o.status
	}
	lastError := o.err
	if lastError == "" && !delivered {
		lastError = fmt.Sprintf("answered %d", o.status)
	}
	d.mu.Lock()
	wait, retry := backoff(d.cfg.Schedule, n, d.rng)
	d.mu.Unlock()
	if o.status == http.StatusTooManyRequests || o.status == http.StatusServiceUnavailable {
		wait = max(wait, retryAfter(o.retryAfter, now))
	}
	return pgx.BeginTxFunc(ctx, d.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO webhook_attempts (message_id, endpoint_id, attempt, url, request_headers, request_body, response_status,
			                              response_body, error, delivered, latency_ms, started_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			c.id, c.endpointID, n, c.url, headers, o.body, status, strings.ReplaceAll(o.response, "\x00", ""), o.err, delivered,
			o.latency.Milliseconds(), o.start); err != nil {
			return fmt.Errorf("record the attempt: %w", err)
		}
		if delivered {
			if _, err := tx.Exec(ctx, `
				UPDATE webhook_messages SET status = 'delivered', attempts = $2, delivered_at = $3, next_attempt_at = NULL, lease_until = NULL,
				                            last_status = $4, last_error = '' WHERE id = $1`, c.id, n, now, status); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL`, c.endpointID)
			return err
		}
		var next *time.Time
		if retry {
			t := now.Add(wait)
			next = &t
		}
		if _, err := tx.Exec(ctx, `
			UPDATE webhook_messages SET status = CASE WHEN $3::timestamptz IS NULL THEN 'failed' ELSE 'pending' END, attempts = $2,
			       next_attempt_at = $3, lease_until = NULL, last_status = $4, last_error = $5 WHERE id = $1`,
			c.id, n, next, status, lastError); err != nil {
			return err
		}
		reason := ""
		if o.status == http.StatusGone {
			reason = "the receiver answered 410 Gone"
		}
		var since time.Time
		if err := tx.QueryRow(ctx, `
			UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, $2) WHERE id = $1 RETURNING failing_since`,
			c.endpointID, o.start).Scan(&since); err != nil {
			return err
		}
		if reason == "" && now.Sub(since) >= d.cfg.DisableAfter {
			reason = fmt.Sprintf("every attempt failed since %s", since.UTC().Format(time.RFC3339))
		}
		if reason == "" {
			return nil
		}
		tag, err := tx.Exec(ctx, `
			UPDATE webhook_endpoints SET enabled = false, disabled_at = $2, disabled_reason = $3, updated_at = $2
			WHERE id = $1 AND enabled`, c.endpointID, now, reason)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		d.log.Warn("webhook endpoint disabled", "endpoint", c.endpointID, "reason", reason)
		return audit.Record(ctx, tx, audit.Entry{Action: "webhook.disable", TargetType: "webhook", TargetID: fmt.Sprint(c.endpointID),
			After: map[string]any{"reason": reason}})
	})
}
