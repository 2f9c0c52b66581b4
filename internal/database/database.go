// Package database opens Slipway's PostgreSQL pool, applies the embedded
// migrations and tells callers when the database is unreachable, so that the
// HTTP layer can answer 503 rather than 500.
package database

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config tunes the pool. Zero values take the defaults noted on each field.
type Config struct {
	URL              string
	MaxConns         int32         // default 20
	MinConns         int32         // default 0
	ConnectTimeout   time.Duration // default 5s: how long a dial may take
	StatementTimeout time.Duration // default 30s: server-side statement_timeout
	MaxConnLifetime  time.Duration // default 1h
	MaxConnIdleTime  time.Duration // default 5m
}

// Open returns a pool. It does not wait for the database to be reachable:
// pgx dials lazily and re-dials after an outage, so a server that starts
// while PostgreSQL is down recovers without a restart.
func Open(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		// pgx's message may echo the URL, password included: say less.
		return nil, errors.New("database URL cannot be parsed")
	}
	pc.MaxConns = orDefault(cfg.MaxConns, 20)
	pc.MinConns = cfg.MinConns
	pc.MaxConnLifetime = orDefault(cfg.MaxConnLifetime, time.Hour)
	pc.MaxConnIdleTime = orDefault(cfg.MaxConnIdleTime, 5*time.Minute)
	pc.HealthCheckPeriod = 30 * time.Second
	pc.ConnConfig.ConnectTimeout = orDefault(cfg.ConnectTimeout, 5*time.Second)
	st := orDefault(cfg.StatementTimeout, 30*time.Second)
	if pc.ConnConfig.RuntimeParams == nil {
		pc.ConnConfig.RuntimeParams = map[string]string{}
	}
	pc.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(st.Milliseconds())
	pc.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = fmt.Sprint((2 * st).Milliseconds())
	pc.ConnConfig.RuntimeParams["application_name"] = "slipway"
	return pgxpool.NewWithConfig(ctx, pc)
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// IsUniqueViolation reports whether err is PostgreSQL refusing a duplicate
// of a unique key (SQLSTATE 23505).
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// Unavailable reports whether err means that PostgreSQL could not be reached
// or stopped answering in time, as opposed to refusing a statement.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case len(pgErr.Code) == 5 && pgErr.Code[:2] == "08": // connection exception
			return true
		case pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03": // shutdown, cannot connect now
			return true
		case pgErr.Code == "57014": // query_canceled, including statement_timeout
			return true
		}
		return false
	}
	if pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

// EscapeLike makes s match literally in a LIKE pattern (ESCAPE '\').
func EscapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
