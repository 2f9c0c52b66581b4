// Package events writes the outbox: every change that matters (a version
// registered, a report attached, a promotion requested or decided, a stage
// moved) is recorded in the same transaction as the change, so that nothing
// is announced for a change that rolled back and nothing is lost once it
// committed. Webhook delivery reads from here.
package events

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Event types.
const (
	ModelVersionCreated = "model_version.created"
	EvaluationCreated   = "evaluation.created"
	PromotionRequested  = "promotion.requested"
	PromotionApproved   = "promotion.approved"
	PromotionRejected   = "promotion.rejected"
	PromotionCancelled  = "promotion.cancelled"
	StageMoved          = "stage.moved"
)

// Execer runs a statement: a pgx.Tx.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Event is one recorded change.
type Event struct {
	ID        string          `json:"id"` // evt_…, stable: webhook deliveries carry it
	Type      string          `json:"type"`
	Model     string          `json:"model,omitempty"`
	Seq       int64           `json:"seq,omitempty"` // per model, from 1: receivers drop what is older than what they have
	Payload   json.RawMessage `json:"payload"`
	CreatedAt time.Time       `json:"created_at"`
}

// Emit records an event of a model inside tx and returns its id. It takes
// the model's next sequence number, which locks the model's row until the
// transaction ends: a model's events are numbered in commit order.
func Emit(ctx context.Context, tx Execer, modelID int64, typ string, payload any) (string, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return "", fmt.Errorf("event %s: %w", typ, err)
	}
	id := newID()
	// the event, and a message for each webhook endpoint whose filters
	// match it (a disabled one's wait until it is enabled again); the notification (channel slipway_webhooks, the
	// webhook package's NotifyChannel) wakes delivery at commit
	_, err = tx.Exec(ctx, `
		WITH s AS (UPDATE models SET event_seq = event_seq + 1 WHERE id = $2 RETURNING event_seq),
		e AS (
			INSERT INTO events (event_id, type, model_id, seq, payload) VALUES ($1, $3, $2, (SELECT event_seq FROM s), $4)
			RETURNING id),
		m AS (
			INSERT INTO webhook_messages (msg_id, endpoint_id, event_id, event_type, status, next_attempt_at)
			SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), w.id, e.id, $3, 'pending', now()
			FROM e, webhook_endpoints w
			WHERE (cardinality(w.event_types) = 0 OR $3 = ANY (w.event_types))
			  AND (cardinality(w.model_ids) = 0 OR $2 = ANY (w.model_ids))
			RETURNING 1)
		SELECT pg_notify('slipway_webhooks', '') FROM (SELECT 1 FROM m LIMIT 1) x`,
		id, modelID, typ, body)
	if err != nil {
		return "", fmt.Errorf("record event %s: %w", typ, err)
	}
	return id, nil
}

func newID() string {
	var b [15]byte
	rand.Read(b[:])
	return "evt_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
