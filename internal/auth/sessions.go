package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/errs"
)

// Identity is who a request acts for.
type Identity struct {
	User User
	// TokenID is the API token used, 0 for a browser session.
	TokenID int64
	// CSRFToken is the session's anti-forgery token, "" for API tokens
	// (bearer tokens are not sent by browsers on their own).
	CSRFToken string
}

// Actor is the audit actor of the identity.
func (id Identity) Actor() audit.Actor {
	return audit.Actor{UserID: id.User.ID, Name: id.User.Name}
}

// Session is a new browser session.
type Session struct {
	Secret    string // the cookie value; only its digest is stored
	CSRFToken string
	ExpiresAt time.Time
}

// SessionMeta describes the browser that signs in.
type SessionMeta struct {
	RemoteAddr string
	UserAgent  string
}

// CreateSession starts a session for u (a freshly generated id every time:
// no session fixation) and audits the sign-in.
func (s *Service) CreateSession(ctx context.Context, u User, meta SessionMeta) (Session, error) {
	sess := Session{Secret: randomToken(32), CSRFToken: randomToken(32)}
	if len(meta.UserAgent) > 512 {
		// Cut on a character boundary: PostgreSQL refuses broken UTF-8.
		meta.UserAgent = strings.ToValidUTF8(meta.UserAgent[:512], "")
	}
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO sessions (id_hash, user_id, csrf_token, expires_at, remote_addr, user_agent)
			VALUES ($1, $2, $3, now() + $4::interval, $5, $6)
			RETURNING expires_at`,
			digest(sess.Secret), u.ID, sess.CSRFToken, s.sessionTTL.String(), meta.RemoteAddr, meta.UserAgent).Scan(&sess.ExpiresAt)
		if err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		ctx := audit.WithActor(ctx, audit.Actor{UserID: u.ID, Name: u.Name})
		return audit.Record(ctx, tx, audit.Entry{Action: "session.create", TargetType: "user", TargetID: u.Name,
			After: map[string]any{"user_agent": meta.UserAgent, "expires_at": sess.ExpiresAt}})
	})
	return sess, err
}

// LookupSession resolves a session cookie value. Unknown and expired
// sessions, and sessions of disabled users, are ErrUnauthenticated.
func (s *Service) LookupSession(ctx context.Context, secret string) (Identity, error) {
	fail := fmt.Errorf("no valid session: %w", errs.ErrUnauthenticated)
	if len(secret) != 43 {
		return Identity{}, fail
	}
	var id Identity
	err := s.db.QueryRow(ctx, `
		SELECT s.csrf_token, `+userColumnsU+`
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id_hash = $1 AND s.expires_at > now() AND u.disabled_at IS NULL`, digest(secret)).
		Scan(&id.CSRFToken, &id.User.ID, &id.User.Name, &id.User.Role, &id.User.HasPassword, &id.User.Disabled, &id.User.CreatedAt, &id.User.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Identity{}, fail
	}
	if err != nil {
		return Identity{}, fmt.Errorf("look up session: %w", err)
	}
	return id, nil
}

// DeleteSession ends a session (sign-out). Ending an unknown session is
// not an error.
func (s *Service) DeleteSession(ctx context.Context, secret string) error {
	return pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var name string
		var uid int64
		err := tx.QueryRow(ctx, `
			DELETE FROM sessions s USING users u
			WHERE s.id_hash = $1 AND u.id = s.user_id
			RETURNING u.id, u.name`, digest(secret)).Scan(&uid, &name)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("delete session: %w", err)
		}
		ctx := audit.WithActor(ctx, audit.Actor{UserID: uid, Name: name})
		return audit.Record(ctx, tx, audit.Entry{Action: "session.delete", TargetType: "user", TargetID: name})
	})
}

// DeleteExpiredSessions removes sessions past their expiry; it returns how
// many. Expired sessions are already refused: this only reclaims space.
func (s *Service) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= now()`)
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}
