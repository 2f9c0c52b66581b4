package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/events"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/internal/validate"
)

// TypeTest is the event type of a test message.
const TypeTest = "webhook.test"

// EventTypes lists what an endpoint may subscribe to.
var EventTypes = []string{events.ModelVersionCreated, events.EvaluationCreated, events.PromotionRequested, events.PromotionApproved,
	events.PromotionRejected, events.PromotionCancelled, events.StageMoved}

// NotifyChannel is the PostgreSQL channel that wakes delivery workers.
const NotifyChannel = "slipway_webhooks"

// Service holds endpoints and their messages.
type Service struct {
	db     *pgxpool.Pool
	sealer *Sealer // nil: no key configured, endpoints cannot be created
	policy AddressPolicy
	now    func() time.Time
}

// NewService returns the webhook service. sealer may be nil when
// SLIPWAY_WEBHOOK_KEY is not set: then no endpoint can be created.
func NewService(db *pgxpool.Pool, sealer *Sealer, policy AddressPolicy) *Service {
	return &Service{db: db, sealer: sealer, policy: policy, now: time.Now}
}

// Endpoint is a registered receiver.
type Endpoint struct {
	ID             int64      `json:"id"`
	URL            string     `json:"url"`
	Description    string     `json:"description"`
	EventTypes     []string   `json:"event_types"` // empty: all
	Models         []string   `json:"models"`      // empty: all
	Enabled        bool       `json:"enabled"`
	DisabledReason string     `json:"disabled_reason"`
	DisabledAt     *time.Time `json:"disabled_at"`
	FailingSince   *time.Time `json:"failing_since"`
	// RotatingUntil is when the previous secret stops signing, during a
	// rotation.
	RotatingUntil *time.Time `json:"rotating_until"`
	Pending       int        `json:"pending"` // messages waiting for delivery
	Failed        int        `json:"failed"`  // messages given up
	CreatedBy     string     `json:"created_by"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

const endpointColumns = `e.id, e.url, e.description, e.event_types,
	coalesce((SELECT array_agg(m.name ORDER BY m.name) FROM models m WHERE m.id = ANY (e.model_ids)), '{}'),
	e.enabled, e.disabled_reason, e.disabled_at, e.failing_since, e.previous_until,
	(SELECT count(*) FROM webhook_messages w WHERE w.endpoint_id = e.id AND w.status = 'pending'),
	(SELECT count(*) FROM webhook_messages w WHERE w.endpoint_id = e.id AND w.status = 'failed'),
	coalesce(u.name, ''), e.created_at, e.updated_at`

const endpointFrom = ` FROM webhook_endpoints e LEFT JOIN users u ON u.id = e.created_by `

func scanEndpoint(r pgx.Row) (Endpoint, error) {
	var e Endpoint
	err := r.Scan(&e.ID, &e.URL, &e.Description, &e.EventTypes, &e.Models, &e.Enabled, &e.DisabledReason, &e.DisabledAt, &e.FailingSince,
		&e.RotatingUntil, &e.Pending, &e.Failed, &e.CreatedBy, &e.CreatedAt, &e.UpdatedAt)
	return e, err
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func getEndpoint(ctx context.Context, q querier, id int64) (Endpoint, error) {
	e, err := scanEndpoint(q.QueryRow(ctx, `SELECT `+endpointColumns+endpointFrom+`WHERE e.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Endpoint{}, fmt.Errorf("webhook endpoint %d: %w", id, errs.ErrNotFound)
	}
	if err != nil {
		return Endpoint{}, fmt.Errorf("read webhook endpoint: %w", err)
	}
	return e, nil
}

func (e Endpoint) auditView() map[string]any {
	return map[string]any{"url": e.URL, "description": e.Description, "event_types": e.EventTypes, "models": e.Models, "enabled": e.Enabled}
}

// NewEndpoint is the input of Create.
type NewEndpoint struct {
	URL         string   `json:"url"`
	Description string   `json:"description"`
	EventTypes  []string `json:"event_types"`
	Models      []string `json:"models"`
}

func (s *Service) checkFilters(ctx context.Context, q querier, types, models []string, fe *errs.FieldErrors) []int64 {
	for i, t := range types {
		if !slices.Contains(EventTypes, t) {
			fe.Add(fmt.Sprintf("event_types[%d]", i), "must be one of %v", EventTypes)
		}
	}
	ids := []int64{}
	for i, m := range models {
		var id int64
		err := q.QueryRow(ctx, `SELECT id FROM models WHERE name = $1`, m).Scan(&id)
		if err != nil {
			fe.Add(fmt.Sprintf("models[%d]", i), "is not a model: %q", m)
			continue
		}
		ids = append(ids, id)
	}
	return ids
}

// Create registers an endpoint and returns it with its signing secret,
// which is shown this once: Slipway keeps it sealed.
func (s *Service) Create(ctx context.Context, in NewEndpoint) (Endpoint, string, error) {
	if s.sealer == nil {
		return Endpoint{}, "", fmt.Errorf("webhooks need SLIPWAY_WEBHOOK_KEY (32 random bytes, base64) to keep signing secrets sealed: %w", errs.ErrUnavailable)
	}
	var fe errs.FieldErrors
	if err := s.policy.ValidateURL(in.URL); err != nil {
		fe = append(fe, validate.Flatten(err)...)
	}
	validate.Text("description", in.Description, 2000, true, &fe)
	if in.EventTypes == nil {
		in.EventTypes = []string{}
	}
	if in.Models == nil {
		in.Models = []string{}
	}
	ids := s.checkFilters(ctx, s.db, in.EventTypes, in.Models, &fe)
	if err := fe.Err(); err != nil {
		return Endpoint{}, "", err
	}
	secret := NewSecret()
	var e Endpoint
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var id int64
		if err := tx.QueryRow(ctx, `
			INSERT INTO webhook_endpoints (url, description, event_types, model_ids, secret, created_by)
			VALUES ($1, $2, $3, $4, $5, nullif($6, 0)) RETURNING id`,
			in.URL, in.Description, in.EventTypes, ids, s.sealer.Seal(secret), audit.ActorFrom(ctx).UserID).Scan(&id); err != nil {
			return fmt.Errorf("create webhook endpoint: %w", err)
		}
		var err error
		if e, err = getEndpoint(ctx, tx, id); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "webhook.create", TargetType: "webhook", TargetID: fmt.Sprint(id), After: e.auditView()})
	})
	return e, secret, err
}

// List returns the endpoints, oldest first.
func (s *Service) List(ctx context.Context, p pagination.Page) ([]Endpoint, string, error) {
	var after int64
	if _, err := p.Decode(&after); err != nil {
		return nil, "", err
	}
	rows, err := s.db.Query(ctx, `SELECT `+endpointColumns+endpointFrom+`WHERE e.id > $1 ORDER BY e.id LIMIT $2`, after, p.Size()+1)
	if err != nil {
		return nil, "", fmt.Errorf("list webhook endpoints: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Endpoint, error) { return scanEndpoint(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list webhook endpoints: %w", err)
	}
	items, next := pagination.Trim(items, p, func(e Endpoint) any { return e.ID })
	return items, next, nil
}

// Unhealthy lists endpoints that need an admin's eye: disabled, failing
// since their last delivery, or with messages given up on; at most limit,
// the longest failing first.
func (s *Service) Unhealthy(ctx context.Context, limit int) ([]Endpoint, error) {
	rows, err := s.db.Query(ctx, `SELECT `+endpointColumns+endpointFrom+`
		WHERE NOT e.enabled OR e.failing_since IS NOT NULL
			OR EXISTS (SELECT 1 FROM webhook_messages w WHERE w.endpoint_id = e.id AND w.status = 'failed')
		ORDER BY coalesce(e.failing_since, e.disabled_at, e.updated_at), e.id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("unhealthy webhook endpoints: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Endpoint, error) { return scanEndpoint(r) })
	if err != nil {
		return nil, fmt.Errorf("unhealthy webhook endpoints: %w", err)
	}
	return items, nil
}

// Get returns one endpoint.
func (s *Service) Get(ctx context.Context, id int64) (Endpoint, error) {
	return getEndpoint(ctx, s.db, id)
}

// EndpointUpdate changes what is set.
type EndpointUpdate struct {
	URL         *string   `json:"url"`
	Description *string   `json:"description"`
	EventTypes  *[]string `json:"event_types"`
	Models      *[]string `json:"models"`
	// Enabled turns delivery off or back on; back on clears the failure
	// streak, and messages that waited are sent.
	Enabled *bool `json:"enabled"`
}

// Update changes an endpoint.
func (s *Service) Update(ctx context.Context, id int64, in EndpointUpdate) (Endpoint, error) {
	var fe errs.FieldErrors
	if in.URL != nil {
		if err := s.policy.ValidateURL(*in.URL); err != nil {
			fe = append(fe, validate.Flatten(err)...)
		}
	}
	if in.Description != nil {
		validate.Text("description", *in.Description, 2000, true, &fe)
	}
	var types, models []string
	if in.EventTypes != nil {
		types = *in.EventTypes
	}
	if in.Models != nil {
		models = *in.Models
	}
	ids := s.checkFilters(ctx, s.db, types, models, &fe)
	if err := fe.Err(); err != nil {
		return Endpoint{}, err
	}
	var after Endpoint
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		before, err := getEndpoint(ctx, tx, id)
		if err != nil {
			return err
		}
		var idsArg any
		if in.Models != nil {
			idsArg = ids
		}
		var typesArg any
		if in.EventTypes != nil {
			typesArg = types
		}
		reason := "disabled by " + audit.ActorFrom(ctx).Name
		if _, err := tx.Exec(ctx, `
			UPDATE webhook_endpoints SET
				url = coalesce($2, url), description = coalesce($3, description),
				event_types = coalesce($4::text[], event_types), model_ids = coalesce($5::bigint[], model_ids),
				enabled = coalesce($6, enabled),
				disabled_at = CASE WHEN $6 IS NULL THEN disabled_at WHEN $6 THEN NULL ELSE coalesce(disabled_at, now()) END,
				disabled_reason = CASE WHEN $6 IS NULL THEN disabled_reason WHEN $6 THEN '' WHEN enabled THEN $7 ELSE disabled_reason END,
				failing_since = CASE WHEN $6 THEN NULL ELSE failing_since END,
				updated_at = now()
			WHERE id = $1`, id, in.URL, in.Description, typesArg, idsArg, in.Enabled, reason); err != nil {
			return fmt.Errorf("update webhook endpoint: %w", err)
		}
		if in.Enabled != nil && *in.Enabled && !before.Enabled {
			// back on: what waited is due now
			if _, err := tx.Exec(ctx, `UPDATE webhook_messages SET next_attempt_at = now() WHERE endpoint_id = $1 AND status = 'pending'`, id); err != nil {
				return err
			}
			if err := notify(ctx, tx); err != nil {
				return err
			}
		}
		if after, err = getEndpoint(ctx, tx, id); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "webhook.update", TargetType: "webhook", TargetID: fmt.Sprint(id),
			Before: before.auditView(), After: after.auditView()})
	})
	return after, err
}

func notify(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, NotifyChannel)
	return err
}

// MaxRotationWindow bounds how long an old secret may keep signing.
const MaxRotationWindow = 7 * 24 * time.Hour

// RotateSecret gives an endpoint a new secret, shown this once. The old
// one keeps signing next to it (two v1 signatures) for window, so that
// receivers can switch without losing a message.
func (s *Service) RotateSecret(ctx context.Context, id int64, window time.Duration) (Endpoint, string, error) {
	if s.sealer == nil {
		return Endpoint{}, "", fmt.Errorf("webhooks need SLIPWAY_WEBHOOK_KEY: %w", errs.ErrUnavailable)
	}
	if window < 0 || window > MaxRotationWindow {
		return Endpoint{}, "", errs.Invalid("window", "must be between 0 and %s", MaxRotationWindow)
	}
	secret := NewSecret()
	var e Endpoint
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE webhook_endpoints SET previous_secret = CASE WHEN $3 > 0 THEN secret END,
				previous_until = CASE WHEN $3 > 0 THEN now() + make_interval(secs => $3) END,
				secret = $2, updated_at = now()
			WHERE id = $1`, id, s.sealer.Seal(secret), window.Seconds())
		if err != nil {
			return fmt.Errorf("rotate secret: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("webhook endpoint %d: %w", id, errs.ErrNotFound)
		}
		if e, err = getEndpoint(ctx, tx, id); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "webhook.rotate_secret", TargetType: "webhook", TargetID: fmt.Sprint(id),
			After: map[string]any{"window_seconds": window.Seconds()}})
	})
	return e, secret, err
}

// ResealSecrets seals every endpoint's signing secrets (the current one
// and a previous one still in its rotation window) under the current
// webhook key: the step of a key rotation between deploying the new key
// with the old one as SLIPWAY_WEBHOOK_KEY_PREVIOUS and dropping the old
// one. It runs in one transaction and changes nothing if any secret opens
// with neither key. It returns how many endpoints were resealed (those
// whose secrets were under a previous key) of how many there are, and is
// audited as webhook.reseal_secrets when it resealed any.
func (s *Service) ResealSecrets(ctx context.Context) (resealed, total int, err error) {
	if s.sealer == nil {
		return 0, 0, fmt.Errorf("webhooks need SLIPWAY_WEBHOOK_KEY: %w", errs.ErrUnavailable)
	}
	err = pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		type sealed struct {
			id           int64
			secret, prev []byte
		}
		rows, err := tx.Query(ctx, `SELECT id, secret, previous_secret FROM webhook_endpoints ORDER BY id FOR UPDATE`)
		if err != nil {
			return fmt.Errorf("reseal: %w", err)
		}
		all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (sealed, error) {
			var e sealed
			return e, r.Scan(&e.id, &e.secret, &e.prev)
		})
		if err != nil {
			return fmt.Errorf("reseal: %w", err)
		}
		total = len(all)
		var ids []int64
		for _, e := range all {
			cur, curOK, err := s.sealer.open(e.secret)
			if err != nil {
				return fmt.Errorf("webhook endpoint %d: %w", e.id, err)
			}
			var prev []byte
			prevOK := true
			if e.prev != nil {
				var p string
				if p, prevOK, err = s.sealer.open(e.prev); err != nil {
					return fmt.Errorf("webhook endpoint %d, previous secret: %w", e.id, err)
				}
				prev = s.sealer.Seal(p)
			}
			if curOK && prevOK {
				continue // already under the current key
			}
			if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET secret = $2, previous_secret = $3 WHERE id = $1`,
				e.id, s.sealer.Seal(cur), prev); err != nil {
				return fmt.Errorf("reseal: %w", err)
			}
			ids = append(ids, e.id)
		}
		resealed = len(ids)
		if resealed == 0 {
			return nil
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "webhook.reseal_secrets", TargetType: "webhook", TargetID: "all",
			After: map[string]any{"endpoints": ids}})
	})
	if err != nil {
		return 0, 0, err
	}
	return resealed, total, nil
}

// secrets opens the secrets that sign for an endpoint now.
func (s *Service) secrets(current, previous []byte, previousUntil *time.Time) ([]string, error) {
	if s.sealer == nil {
		return nil, errors.New("SLIPWAY_WEBHOOK_KEY is not set: secrets cannot be opened")
	}
	cur, err := s.sealer.Open(current)
	if err != nil {
		return nil, err
	}
	out := []string{cur}
	if previous != nil && previousUntil != nil && s.now().Before(*previousUntil) {
		prev, err := s.sealer.Open(previous)
		if err != nil {
			return nil, err
		}
		out = append(out, prev)
	}
	return out, nil
}

// SendTest queues a test message to an endpoint, whatever its filters.
func (s *Service) SendTest(ctx context.Context, id int64) (Message, error) {
	var msg Message
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		e, err := getEndpoint(ctx, tx, id)
		if err != nil {
			return err
		}
		if !e.Enabled {
			return fmt.Errorf("webhook endpoint %d is disabled: enable it to send: %w", id, errs.ErrConflict)
		}
		payload, _ := json.Marshal(map[string]any{"message": "a test from Slipway", "endpoint_id": id, "requested_by": audit.ActorFrom(ctx).Name})
		var mid int64
		if err := tx.QueryRow(ctx, `
			INSERT INTO webhook_messages (msg_id, endpoint_id, event_type, payload, status, next_attempt_at)
			VALUES ($1, $2, $3, $4, 'pending', now()) RETURNING id`, newMsgID(), id, TypeTest, payload).Scan(&mid); err != nil {
			return fmt.Errorf("queue the test message: %w", err)
		}
		if err := notify(ctx, tx); err != nil {
			return err
		}
		if msg, err = getMessage(ctx, tx, mid); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "webhook.test", TargetType: "webhook", TargetID: fmt.Sprint(id),
			After: map[string]any{"message": msg.MsgID}})
	})
	return msg, err
}
