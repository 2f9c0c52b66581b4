// Package idempotency keeps the first answer to a POST that carried an
// Idempotency-Key, so that a client retrying after a timeout or a dropped
// connection gets that answer again instead of doing the work twice. A
// retry with the same key but another request is refused.
package idempotency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slipway-ml/slipway/internal/errs"
)

// Retention is how long a key is remembered.
const Retention = 24 * time.Hour

// staleAfter is when a first request that never completed (its process
// died) no longer blocks retries; long enough for a large upload.
const staleAfter = 6 * time.Hour

// Store keeps keys and answers in PostgreSQL, shared by replicas.
type Store struct{ db *pgxpool.Pool }

// NewStore returns a Store over db.
func NewStore(db *pgxpool.Pool) *Store { return &Store{db: db} }

// ValidateKey checks a key: 1 to 255 printable ASCII characters.
func ValidateKey(k string) error {
	if len(k) == 0 || len(k) > 255 || strings.ContainsFunc(k, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return errs.Invalid("Idempotency-Key", "must be 1 to 255 printable ASCII characters, e.g. a UUID")
	}
	return nil
}

// Answer is a kept response.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// Claim is the outcome of Begin.
type Claim struct {
	// Replay is set when the key was used before by a completed request:
	// Fingerprint is what that request asked, Answer what it got.
	Replay      *Answer
	Fingerprint string
}

// Begin claims key for a request (method, path). It returns a Claim with
// Replay set when an earlier request completed under that key. It fails
// with ErrUnprocessable when the key was used for another method or path,
// and ErrConflict while the first request is still running.
func (s *Store) Begin(ctx context.Context, userID int64, key, method, path string) (Claim, error) {
	var c Claim
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			INSERT INTO idempotency_keys (user_id, key, method, path) VALUES ($1, $2, $3, $4)
			ON CONFLICT (user_id, key) DO NOTHING`, userID, key, method, path)
		if err != nil {
			return fmt.Errorf("idempotency key: %w", err)
		}
		if tag.RowsAffected() == 1 {
			return nil // ours: the request runs
		}
		var (
			m, p, fp  *string
			status    *int
			headers   []byte
			body      []byte
			created   time.Time
			completed *time.Time
		)
		if err := tx.QueryRow(ctx, `
			SELECT method, path, fingerprint, status, headers, body, created_at, completed_at
			FROM idempotency_keys WHERE user_id = $1 AND key = $2 FOR UPDATE`, userID, key).
			Scan(&m, &p, &fp, &status, &headers, &body, &created, &completed); err != nil {
			return fmt.Errorf("idempotency key: %w", err)
		}
		if *m != method || *p != path {
			return fmt.Errorf("Idempotency-Key %q was used for %s %s; use a new key for another request: %w", key, *m, *p, errs.ErrUnprocessable)
		}
		if completed == nil {
			if time.Since(created) < staleAfter {
				return fmt.Errorf("a request with Idempotency-Key %q is still running; retry later: %w", key, errs.ErrConflict)
			}
			// The first request died with its process: this one takes over.
			_, err := tx.Exec(ctx, `UPDATE idempotency_keys SET created_at = now() WHERE user_id = $1 AND key = $2`, userID, key)
			return err
		}
		a := &Answer{Status: *status, Body: body, Header: http.Header{}}
		if err := json.Unmarshal(headers, &a.Header); err != nil {
			return fmt.Errorf("idempotency key: %w", err)
		}
		c.Replay, c.Fingerprint = a, deref(fp)
		return nil
	})
	return c, err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Complete keeps the answer of the request that claimed key.
func (s *Store) Complete(ctx context.Context, userID int64, key, fingerprint string, a Answer) error {
	h, err := json.Marshal(a.Header)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(context.WithoutCancel(ctx), `
		UPDATE idempotency_keys SET fingerprint = $3, status = $4, headers = $5, body = $6, completed_at = now()
		WHERE user_id = $1 AND key = $2`, userID, key, fingerprint, a.Status, h, a.Body)
	if err != nil {
		return fmt.Errorf("keep the answer of idempotency key: %w", err)
	}
	return nil
}

// Release forgets a claim whose request failed on Slipway's side (5xx), so
// that a retry runs again.
func (s *Store) Release(ctx context.Context, userID int64, key string) error {
	_, err := s.db.Exec(context.WithoutCancel(ctx), `DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND completed_at IS NULL`, userID, key)
	return err
}

// DeleteExpired forgets keys older than Retention.
func (s *Store) DeleteExpired(ctx context.Context) (int64, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < now() - $1::interval`, Retention.String())
	if err != nil {
		return 0, fmt.Errorf("delete expired idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Request is what a streaming handler learns of the idempotency of its
// request: whether it is a retry to verify, and where to leave the
// fingerprint of what it was asked.
type Request struct {
	// Verify is set on a retry of a completed upload: the handler reads the
	// body without doing the work, computes its fingerprint and sets it.
	Verify      bool
	Fingerprint string
}

type ctxKey struct{}

// WithRequest attaches r to ctx.
func WithRequest(ctx context.Context, r *Request) context.Context {
	return context.WithValue(ctx, ctxKey{}, r)
}

// RequestFrom returns the idempotency state of the request, nil when the
// request carries no key.
func RequestFrom(ctx context.Context) *Request {
	r, _ := ctx.Value(ctxKey{}).(*Request)
	return r
}

// ErrVerified is what a handler in Verify mode returns once it has set the
// fingerprint: the middleware then replays or refuses.
var ErrVerified = errors.New("idempotency: fingerprint computed")
