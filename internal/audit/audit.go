// Package audit writes and reads Slipway's audit log: one append-only row for
// every mutation, written by Record inside the mutation's own transaction so
// that a change and its audit record commit or roll back together. The table
// refuses UPDATE, DELETE and TRUNCATE by trigger.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/pagination"
)

// Actor is who makes a change: a user, or Slipway itself ("system") for
// bootstrap and background work, or the command line ("cli").
type Actor struct {
	UserID int64 // 0 when not a user
	Name   string
}

// System is the actor of changes Slipway makes on its own.
var System = Actor{Name: "system"}

type ctxKey int

const (
	actorKey ctxKey = iota
	requestKey
)

type request struct{ id, remoteAddr string }

// WithActor records in ctx who acts.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey, a)
}

// ActorFrom returns the actor of ctx, System when none was set.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey).(Actor); ok {
		return a
	}
	return System
}

// WithRequest records the request id and remote address in ctx.
func WithRequest(ctx context.Context, requestID, remoteAddr string) context.Context {
	return context.WithValue(ctx, requestKey, request{requestID, remoteAddr})
}

// Request is the request metadata of a context.
type Request struct{ ID, RemoteAddr string }

// RequestFrom returns the request metadata of ctx (empty outside requests).
func RequestFrom(ctx context.Context) Request {
	r, _ := ctx.Value(requestKey).(request)
	return Request{ID: r.id, RemoteAddr: r.remoteAddr}
}

// Entry is one audited change. Before and After are marshalled to JSON; nil
// means "did not exist" (creation, deletion). Never put secrets in them.
type Entry struct {
	Action     string // noun.verb, e.g. "token.create"
	TargetType string // e.g. "user", "token"
	TargetID   string
	Before     any
	After      any
}

// Record appends e to the audit log inside tx, with the actor and request
// of ctx.
func Record(ctx context.Context, tx pgx.Tx, e Entry) error {
	sql, args, err := insert(ctx, e)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

// Queue adds the statement of Record to a batch that will run in the
// transaction of the change, for callers that save round trips.
func Queue(ctx context.Context, b *pgx.Batch, e Entry) error {
	sql, args, err := insert(ctx, e)
	if err != nil {
		return err
	}
	b.Queue(sql, args...)
	return nil
}

func insert(ctx context.Context, e Entry) (string, []any, error) {
	actor := ActorFrom(ctx)
	req, _ := ctx.Value(requestKey).(request)
	before, err := marshal(e.Before)
	if err != nil {
		return "", nil, fmt.Errorf("audit %s: before: %w", e.Action, err)
	}
	after, err := marshal(e.After)
	if err != nil {
		return "", nil, fmt.Errorf("audit %s: after: %w", e.Action, err)
	}
	var actorID *int64
	if actor.UserID != 0 {
		actorID = &actor.UserID
	}
	return `
		INSERT INTO audit_log (actor_id, actor_name, action, target_type, target_id, before, after, request_id, remote_addr)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		[]any{actorID, actor.Name, e.Action, e.TargetType, e.TargetID, before, after, req.id, req.remoteAddr}, nil
}

func marshal(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	return json.Marshal(v)
}

// Event is one row of the audit log as read back.
type Event struct {
	ID         int64           `json:"id"`
	At         time.Time       `json:"at"`
	ActorName  string          `json:"actor"`
	Action     string          `json:"action"`
	TargetType string          `json:"target_type"`
	TargetID   string          `json:"target_id"`
	Before     json.RawMessage `json:"before"`
	After      json.RawMessage `json:"after"`
	RequestID  string          `json:"request_id"`
	RemoteAddr string          `json:"remote_addr"`
}

// Filter selects events; zero fields do not filter.
type Filter struct {
	Actor      string
	Action     string
	TargetType string
	TargetID   string
	Since      time.Time // inclusive
	Until      time.Time // exclusive
}

// Log reads the audit log.
type Log struct{ db *pgxpool.Pool }

// NewLog returns a reader of the audit log in db.
func NewLog(db *pgxpool.Pool) *Log { return &Log{db: db} }

type cursor struct {
	ID int64 `json:"id"`
}

// List returns events matching f, newest first.
func (l *Log) List(ctx context.Context, f Filter, p pagination.Page) ([]Event, string, error) {
	var c cursor
	if _, err := p.Decode(&c); err != nil {
		return nil, "", err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return nil, "", errs.Invalid("until", "must be after since")
	}
	rows, err := l.db.Query(ctx, `
		SELECT id, at, actor_name, action, target_type, target_id,
		       coalesce(before, 'null'::jsonb), coalesce(after, 'null'::jsonb), request_id, remote_addr
		FROM audit_log
		WHERE ($1::bigint = 0 OR id < $1)
		  AND ($2 = '' OR actor_name = $2)
		  AND ($3 = '' OR action = $3)
		  AND ($4 = '' OR target_type = $4)
		  AND ($5 = '' OR target_id = $5)
		  AND ($6::timestamptz IS NULL OR at >= $6)
		  AND ($7::timestamptz IS NULL OR at < $7)
		ORDER BY id DESC
		LIMIT $8`,
		c.ID, f.Actor, f.Action, f.TargetType, f.TargetID, nullTime(f.Since), nullTime(f.Until), p.Size()+1)
	if err != nil {
		return nil, "", fmt.Errorf("list audit events: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var e Event
		err := r.Scan(&e.ID, &e.At, &e.ActorName, &e.Action, &e.TargetType, &e.TargetID, &e.Before, &e.After, &e.RequestID, &e.RemoteAddr)
		return e, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list audit events: %w", err)
	}
	events, next := pagination.Trim(events, p, func(e Event) any { return cursor{ID: e.ID} })
	return events, next, nil
}

// CountSince counts the events at or after t (for the dashboard).
func (l *Log) CountSince(ctx context.Context, t time.Time) (int64, error) {
	var n int64
	if err := l.db.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE at >= $1`, t).Scan(&n); err != nil {
		return 0, fmt.Errorf("count audit events: %w", err)
	}
	return n, nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// ParseFilter reads the audit filter from query parameters; times are
// RFC 3339, or the browser's datetime-local form taken as UTC.
func ParseFilter(q url.Values) (Filter, error) {
	f := Filter{Actor: q.Get("actor"), Action: q.Get("action"), TargetType: q.Get("target_type"), TargetID: q.Get("target_id")}
	var fe errs.FieldErrors
	for _, x := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		v := q.Get(x.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			t, err = time.ParseInLocation("2006-01-02T15:04", v, time.UTC)
		}
		if err != nil {
			fe.Add(x.name, "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
			continue
		}
		*x.dst = t
	}
	return f, fe.Err()
}
