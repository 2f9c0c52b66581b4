package auth_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/testenv"
)

const sessionTTL = 90 * time.Minute

// newService returns a Service over a fresh database, and the database's pool
// for checks in SQL.
func newService(t *testing.T) (*auth.Service, *pgxpool.Pool) {
	t.Helper()
	db := testenv.NewDB(t)
	return auth.NewService(db.Pool, auth.Config{SessionTTL: sessionTTL}), db.Pool
}

func createUser(t *testing.T, svc *auth.Service, name string, role auth.Role, password string) auth.User {
	t.Helper()
	u, err := svc.CreateUser(context.Background(), auth.NewUser{Name: name, Role: role, Password: password})
	if err != nil {
		t.Fatalf("CreateUser(%s): %v", name, err)
	}
	return u
}

func createToken(t *testing.T, svc *auth.Service, user, name string) (string, auth.Token) {
	t.Helper()
	secret, tok, err := svc.CreateToken(context.Background(), auth.NewToken{UserName: user, Name: name})
	if err != nil {
		t.Fatalf("CreateToken(%s, %s): %v", user, name, err)
	}
	return secret, tok
}

func ptr[T any](v T) *T { return &v }

// wantIs fails t unless errors.Is(err, target).
func wantIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

// fieldsOf returns the fields named by a validation error, which must
// unwrap to errs.ErrInvalid.
func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	if !errors.Is(err, errs.ErrInvalid) {
		t.Fatalf("error = %v, want one wrapping errs.ErrInvalid", err)
	}
	var fes errs.FieldErrors
	if errors.As(err, &fes) {
		fields := make([]string, len(fes))
		for i, fe := range fes {
			fields[i] = fe.Field
		}
		return fields
	}
	var fe *errs.FieldError
	if errors.As(err, &fe) {
		return []string{fe.Field}
	}
	t.Fatalf("error = %v (%T), want *errs.FieldError or errs.FieldErrors", err, err)
	return nil
}

// auditRows returns the audit_log rows with the given action and target id,
// each rendered whole as text (every column, JSON included).
func auditRows(t *testing.T, pool *pgxpool.Pool, action, targetID string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT a::text FROM audit_log a WHERE action = $1 AND target_id = $2 ORDER BY id`, action, targetID)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func count(t *testing.T, pool *pgxpool.Pool, query string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// newSecret makes a token of the shape Slipway issues, for Bootstrap.
func newSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return auth.TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}
