package auth

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/database"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/pagination"
)

// TokenPrefix starts every API token, so that secret scanners and people
// recognise one.
const TokenPrefix = "slw_"

// tokenBytes is the entropy of a token: 32 bytes, 43 base64url characters.
const tokenBytes = 32

// Token is an API token as listed: never the secret itself.
type Token struct {
	ID         int64      `json:"id"`
	UserName   string     `json:"user"`
	Name       string     `json:"name"`
	Hint       string     `json:"hint"` // first characters, e.g. slw_AbC1
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// Active reports whether the token can be used at t.
func (t Token) Active(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || t.ExpiresAt.After(now))
}

func (t Token) auditView() map[string]any {
	return map[string]any{"id": t.ID, "user": t.UserName, "name": t.Name, "hint": t.Hint, "expires_at": t.ExpiresAt, "revoked_at": t.RevokedAt}
}

const tokenColumns = `t.id, u.name, t.name, t.display_hint, t.created_at, t.expires_at, t.last_used_at, t.revoked_at`

func scanToken(row pgx.Row) (Token, error) {
	var t Token
	err := row.Scan(&t.ID, &t.UserName, &t.Name, &t.Hint, &t.CreatedAt, &t.ExpiresAt, &t.LastUsedAt, &t.RevokedAt)
	return t, err
}

// NewToken is the input of CreateToken.
type NewToken struct {
	UserName  string
	Name      string
	ExpiresAt *time.Time // nil: never expires
}

// MaxTokenLifetime bounds expires_at.
const MaxTokenLifetime = 5 * 365 * 24 * time.Hour

func validateTokenName(name string) error {
	if strings.TrimSpace(name) == "" || utf8.RuneCountInString(name) > 100 || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return errs.Invalid("name", "must be 1 to 100 printable characters")
	}
	return nil
}

// CreateToken issues a token for a user and returns its secret, which is
// not stored and cannot be shown again.
func (s *Service) CreateToken(ctx context.Context, in NewToken) (string, Token, error) {
	secret := TokenPrefix + randomToken(tokenBytes)
	t, err := s.insertToken(ctx, in, secret)
	return secret, t, err
}

func (s *Service) insertToken(ctx context.Context, in NewToken, secret string) (Token, error) {
	var fe errs.FieldErrors
	if err := validateTokenName(in.Name); err != nil {
		fe = append(fe, err.(*errs.FieldError))
	}
	if in.ExpiresAt != nil {
		now := time.Now()
		if !in.ExpiresAt.After(now) {
			fe.Add("expires_at", "must be in the future")
		} else if in.ExpiresAt.Sub(now) > MaxTokenLifetime {
			fe.Add("expires_at", "must be within 5 years")
		}
	}
	if err := fe.Err(); err != nil {
		return Token{}, err
	}
	var t Token
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var userID int64
		var disabled bool
		err := tx.QueryRow(ctx, `SELECT id, disabled_at IS NOT NULL FROM users WHERE name = $1`, in.UserName).Scan(&userID, &disabled)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("user %q: %w", in.UserName, errs.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("create token: %w", err)
		}
		if disabled {
			return fmt.Errorf("user %q is disabled: %w", in.UserName, errs.ErrConflict)
		}
		t, err = scanToken(tx.QueryRow(ctx, `
			WITH t AS (
				INSERT INTO api_tokens (user_id, name, token_hash, display_hint, expires_at)
				VALUES ($1, $2, $3, $4, $5)
				RETURNING *)
			SELECT `+tokenColumns+` FROM t JOIN users u ON u.id = t.user_id`,
			userID, in.Name, digest(secret), secret[:len(TokenPrefix)+4], in.ExpiresAt))
		if database.IsUniqueViolation(err) {
			return fmt.Errorf("user %q already has a live token named %q: %w", in.UserName, in.Name, errs.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create token: %w", err)
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "token.create", TargetType: "token", TargetID: strconv.FormatInt(t.ID, 10), After: t.auditView()})
	})
	return t, err
}

// ListTokens returns the tokens of a user, newest first, revoked included
// (so that people see what they revoked).
func (s *Service) ListTokens(ctx context.Context, userName string, p pagination.Page) ([]Token, string, error) {
	var after struct {
		ID int64 `json:"id"`
	}
	if _, err := p.Decode(&after); err != nil {
		return nil, "", err
	}
	rows, err := s.db.Query(ctx, `
		SELECT `+tokenColumns+` FROM api_tokens t JOIN users u ON u.id = t.user_id
		WHERE u.name = $1 AND ($2::bigint = 0 OR t.id < $2)
		ORDER BY t.id DESC LIMIT $3`, userName, after.ID, p.Size()+1)
	if err != nil {
		return nil, "", fmt.Errorf("list tokens: %w", err)
	}
	tokens, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Token, error) { return scanToken(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list tokens: %w", err)
	}
	tokens, next := pagination.Trim(tokens, p, func(t Token) any { return map[string]int64{"id": t.ID} })
	return tokens, next, nil
}

// GetToken returns token id.
func (s *Service) GetToken(ctx context.Context, id int64) (Token, error) {
	t, err := scanToken(s.db.QueryRow(ctx, `SELECT `+tokenColumns+` FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Token{}, fmt.Errorf("token %d: %w", id, errs.ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("get token: %w", err)
	}
	return t, nil
}

// RevokeToken revokes token id. A user revokes their own tokens; an admin
// may revoke anyone's (asAdmin). Revoking twice is not an error.
func (s *Service) RevokeToken(ctx context.Context, actor User, id int64) (Token, error) {
	var t Token
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		before, err := scanToken(tx.QueryRow(ctx, `
			SELECT `+tokenColumns+` FROM api_tokens t JOIN users u ON u.id = t.user_id
			WHERE t.id = $1 FOR UPDATE OF t`, id))
		// Someone else's token is "not found" to a non-admin: its existence is not their business.
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && before.UserName != actor.Name && actor.Role != RoleAdmin) {
			return fmt.Errorf("token %d: %w", id, errs.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		if before.RevokedAt != nil {
			t = before
			return nil
		}
		t, err = scanToken(tx.QueryRow(ctx, `
			WITH t AS (UPDATE api_tokens SET revoked_at = now() WHERE id = $1 RETURNING *)
			SELECT `+tokenColumns+` FROM t JOIN users u ON u.id = t.user_id`, id))
		if err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "token.revoke", TargetType: "token", TargetID: strconv.FormatInt(id, 10), Before: before.auditView(), After: t.auditView()})
	})
	return t, err
}

// lastUsedGranularity bounds the writes that token use causes: last_used_at
// is refreshed at most once a minute per token.
const lastUsedGranularity = time.Minute

// LookupToken resolves a bearer token to its user. Unknown, revoked and
// expired tokens, and tokens of disabled users, are all ErrUnauthenticated.
func (s *Service) LookupToken(ctx context.Context, secret string) (Identity, error) {
	fail := fmt.Errorf("invalid, expired or revoked token: %w", errs.ErrUnauthenticated)
	if !strings.HasPrefix(secret, TokenPrefix) || len(secret) < len(TokenPrefix)+43 || len(secret) > 200 {
		return Identity{}, fail
	}
	var (
		id       Identity
		tid      int64
		lastUsed *time.Time
	)
	err := s.db.QueryRow(ctx, `
		SELECT t.id, t.last_used_at, `+userColumnsU+`
		FROM api_tokens t JOIN users u ON u.id = t.user_id
		WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
		  AND u.disabled_at IS NULL`, digest(secret)).
		Scan(&tid, &lastUsed, &id.User.ID, &id.User.Name, &id.User.Role, &id.User.HasPassword, &id.User.Disabled, &id.User.CreatedAt, &id.User.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Identity{}, fail
	}
	if err != nil {
		return Identity{}, fmt.Errorf("look up token: %w", err)
	}
	if lastUsed == nil || time.Since(*lastUsed) > lastUsedGranularity {
		// Best effort: a request is not refused because its bookkeeping
		// could not be written.
		s.db.Exec(ctx, `UPDATE api_tokens SET last_used_at = now() WHERE id = $1`, tid)
	}
	id.TokenID = tid
	return id, nil
}

const userColumnsU = `u.id, u.name, u.role, u.password_hash IS NOT NULL, u.disabled_at IS NOT NULL, u.created_at, u.updated_at`
