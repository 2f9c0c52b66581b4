package auth

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/database"
	"github.com/slipway-ml/slipway/internal/errs"
)

// BootstrapAdminName is the user the bootstrap token creates.
const BootstrapAdminName = "admin"

// Bootstrap creates user admin (role admin) holding token, and password
// when given, if no admin exists yet. It returns whether it created the user.
// It is safe with replicas starting together: an advisory lock serialises
// them, and the second finds the admin the first made.
func (s *Service) Bootstrap(ctx context.Context, token, password string) (bool, error) {
	if token == "" {
		return false, nil
	}
	if !strings.HasPrefix(token, TokenPrefix) || len(token) < len(TokenPrefix)+43 {
		return false, errs.Invalid("token", "must be %s followed by at least 43 characters", TokenPrefix)
	}
	var hash *string
	if password != "" {
		if err := ValidatePassword(password); err != nil {
			return false, fmt.Errorf("bootstrap password: %w", err)
		}
		h, err := HashPassword(password)
		if err != nil {
			return false, err
		}
		hash = &h
	}
	created := false
	ctx = audit.WithActor(ctx, audit.System)
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('slipway.bootstrap'))`); err != nil {
			return err
		}
		var admins int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM users WHERE role = 'admin'`).Scan(&admins); err != nil {
			return err
		}
		if admins > 0 {
			return nil
		}
		u, err := scanUser(tx.QueryRow(ctx, `
			INSERT INTO users (name, role, password_hash) VALUES ($1, 'admin', $2)
			RETURNING `+userColumns, BootstrapAdminName, hash))
		if database.IsUniqueViolation(err) {
			return fmt.Errorf("bootstrap: a user named %q exists but is not an admin; create an admin with `slipway users create`: %w", BootstrapAdminName, errs.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		if err := audit.Record(ctx, tx, audit.Entry{Action: "user.create", TargetType: "user", TargetID: u.Name, After: u.auditView()}); err != nil {
			return err
		}
		var tid int64
		if err := tx.QueryRow(ctx, `
			INSERT INTO api_tokens (user_id, name, token_hash, display_hint) VALUES ($1, 'bootstrap', $2, $3)
			RETURNING id`, u.ID, digest(token), token[:len(TokenPrefix)+4]).Scan(&tid); err != nil {
			return fmt.Errorf("bootstrap token: %w", err)
		}
		created = true
		return audit.Record(ctx, tx, audit.Entry{Action: "token.create", TargetType: "token", TargetID: fmt.Sprint(tid),
			After: map[string]any{"id": tid, "user": u.Name, "name": "bootstrap"}})
	})
	return created, err
}
