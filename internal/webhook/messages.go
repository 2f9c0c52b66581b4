package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/pagination"
)

// Message statuses.
const (
	StatusPending   = "pending"   // waiting for its next attempt
	StatusDelivered = "delivered" // a 2xx came back
	StatusFailed    = "failed"    // the retry schedule is spent (redeliver by hand)
)

// Message is one event for one endpoint.
type Message struct {
	ID            int64      `json:"id"`
	MsgID         string     `json:"webhook_id"` // the webhook-id header: stable across attempts
	EndpointID    int64      `json:"endpoint_id"`
	EventID       string     `json:"event_id"` // evt_…, "" for a test message
	EventType     string     `json:"event_type"`
	Model         string     `json:"model"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	LastStatus    *int       `json:"last_status"`
	LastError     string     `json:"last_error"`
	CreatedAt     time.Time  `json:"created_at"`
	DeliveredAt   *time.Time `json:"delivered_at"`
	// Attempts, oldest first, when one message is read.
	Log []Attempt `json:"log,omitempty"`
}

// Attempt is one delivery attempt as sent and as answered.
type Attempt struct {
	Attempt        int               `json:"attempt"`
	URL            string            `json:"url"`
	RequestHeaders map[string]string `json:"request_headers"`
	RequestBody    string            `json:"request_body"`
	ResponseStatus *int              `json:"response_status"`
	ResponseBody   string            `json:"response_body"`
	Error          string            `json:"error"`
	Delivered      bool              `json:"delivered"`
	LatencyMS      int               `json:"latency_ms"`
	StartedAt      time.Time         `json:"started_at"`
}

func newMsgID() string {
	b := make([]byte, 15)
	rand.Read(b)
	return "msg_" + hex.EncodeToString(b)
}

const messageColumns = `w.id, w.msg_id, w.endpoint_id, coalesce(ev.event_id, ''), w.event_type, coalesce(m.name, ''), w.status, w.attempts,
	w.next_attempt_at, w.last_status, w.last_error, w.created_at, w.delivered_at`

const messageFrom = ` FROM webhook_messages w LEFT JOIN events ev ON ev.id = w.event_id LEFT JOIN models m ON m.id = ev.model_id `

func scanMessage(r pgx.Row) (Message, error) {
	var m Message
	err := r.Scan(&m.ID, &m.MsgID, &m.EndpointID, &m.EventID, &m.EventType, &m.Model, &m.Status, &m.Attempts, &m.NextAttemptAt,
		&m.LastStatus, &m.LastError, &m.CreatedAt, &m.DeliveredAt)
	return m, err
}

func getMessage(ctx context.Context, q querier, id int64) (Message, error) {
	m, err := scanMessage(q.QueryRow(ctx, `SELECT `+messageColumns+messageFrom+`WHERE w.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Message{}, fmt.Errorf("webhook message %d: %w", id, errs.ErrNotFound)
	}
	return m, err
}

// MessageFilter narrows Messages; zero fields match all.
type MessageFilter struct {
	EndpointID int64
	Status     string
	EventType  string
}

// Messages lists messages, newest first, a page at a time: the delivery
// log by endpoint, event type and status.
func (s *Service) Messages(ctx context.Context, f MessageFilter, p pagination.Page) ([]Message, string, error) {
	switch f.Status {
	case "", StatusPending, StatusDelivered, StatusFailed:
	default:
		return nil, "", errs.Invalid("status", "must be pending, delivered or failed")
	}
	if f.EndpointID != 0 {
		if _, err := s.Get(ctx, f.EndpointID); err != nil {
			return nil, "", err
		}
	}
	before := int64(1<<63 - 1)
	if _, err := p.Decode(&before); err != nil {
		return nil, "", err
	}
	rows, err := s.db.Query(ctx, `SELECT `+messageColumns+messageFrom+`
		WHERE w.id < $1 AND ($2 = 0 OR w.endpoint_id = $2) AND ($3 = '' OR w.status = $3) AND ($4 = '' OR w.event_type = $4)
		ORDER BY w.id DESC LIMIT $5`, before, f.EndpointID, f.Status, f.EventType, p.Size()+1)
	if err != nil {
		return nil, "", fmt.Errorf("list webhook messages: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) { return scanMessage(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list webhook messages: %w", err)
	}
	items, next := pagination.Trim(items, p, func(m Message) any { return m.ID })
	return items, next, nil
}

// Message returns one message of an endpoint with its attempts.
func (s *Service) Message(ctx context.Context, endpointID, id int64) (Message, error) {
	m, err := getMessage(ctx, s.db, id)
	if err != nil {
		return Message{}, err
	}
	if m.EndpointID != endpointID {
		return Message{}, fmt.Errorf("webhook endpoint %d has no message %d: %w", endpointID, id, errs.ErrNotFound)
	}
	rows, err := s.db.Query(ctx, `
		SELECT attempt, url, request_headers, convert_from(request_body, 'UTF8'), response_status, response_body, error, delivered, latency_ms, started_at
		FROM webhook_attempts WHERE message_id = $1 ORDER BY id`, id)
	if err != nil {
		return Message{}, fmt.Errorf("read attempts: %w", err)
	}
	m.Log, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Attempt])
	if err != nil {
		return Message{}, fmt.Errorf("read attempts: %w", err)
	}
	return m, nil
}

// Redeliver sends a message again now, whatever became of it: same
// webhook-id, a new timestamp and signature.
func (s *Service) Redeliver(ctx context.Context, endpointID, id int64) (Message, error) {
	var m Message
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE webhook_messages SET status = 'pending', next_attempt_at = now(), lease_until = NULL, delivered_at = NULL
			WHERE id = $1 AND endpoint_id = $2`, id, endpointID)
		if err != nil {
			return fmt.Errorf("redeliver: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("webhook endpoint %d has no message %d: %w", endpointID, id, errs.ErrNotFound)
		}
		if err := notify(ctx, tx); err != nil {
			return err
		}
		if m, err = getMessage(ctx, tx, id); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "webhook.redeliver", TargetType: "webhook", TargetID: fmt.Sprint(endpointID),
			After: map[string]any{"message": m.MsgID}})
	})
	return m, err
}

// ReplaySince sends an endpoint, again or for the first time, every event
// since t that its filters match and that it has not received: for a
// receiver that was down. Delivered messages are not sent twice. It
// returns the number of messages queued.
func (s *Service) ReplaySince(ctx context.Context, endpointID int64, t time.Time) (int, error) {
	var n int
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		e, err := getEndpoint(ctx, tx, endpointID)
		if err != nil {
			return err
		}
		if !e.Enabled {
			return fmt.Errorf("webhook endpoint %d is disabled: enable it first: %w", endpointID, errs.ErrConflict)
		}
		// what it has and did not get, due now; then what it never had
		tag, err := tx.Exec(ctx, `
			UPDATE webhook_messages w SET status = 'pending', next_attempt_at = now(), lease_until = NULL
			FROM events ev WHERE ev.id = w.event_id AND w.endpoint_id = $1 AND ev.created_at >= $2 AND w.status <> 'delivered'`, endpointID, t)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		n = int(tag.RowsAffected())
		tag, err = tx.Exec(ctx, `
			INSERT INTO webhook_messages (msg_id, endpoint_id, event_id, event_type, status, next_attempt_at)
			SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), w.id, ev.id, ev.type, 'pending', now()
			FROM events ev, webhook_endpoints w
			WHERE w.id = $1 AND ev.created_at >= $2
			  AND (cardinality(w.event_types) = 0 OR ev.type = ANY (w.event_types))
			  AND (cardinality(w.model_ids) = 0 OR ev.model_id = ANY (w.model_ids))
			ON CONFLICT (endpoint_id, event_id) DO NOTHING`, endpointID, t)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		n += int(tag.RowsAffected())
		if err := notify(ctx, tx); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "webhook.replay", TargetType: "webhook", TargetID: fmt.Sprint(endpointID),
			After: map[string]any{"since": t, "messages": n}})
	})
	return n, err
}
