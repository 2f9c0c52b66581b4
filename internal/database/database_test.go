package database_test

import (
	"context"
	"errors"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slipway-ml/slipway/internal/database"
	"github.com/slipway-ml/slipway/internal/testenv"
	"github.com/slipway-ml/slipway/migrations"
)

func newMigrator(t *testing.T, pool *pgxpool.Pool) *database.Migrator {
	t.Helper()
	m, err := database.NewMigrator(pool)
	if err != nil {
		t.Fatalf("NewMigrator: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Migrator.Close: %v", err)
		}
	})
	return m
}

func wantVersion(t *testing.T, m *database.Migrator, want uint) {
	t.Helper()
	v, dirty, err := m.Version()
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	if v != want || dirty {
		t.Fatalf("Version = %d, dirty %v; want %d, clean", v, dirty, want)
	}
}

// tableExists reports whether the users table (the first migration's) exists.
func tableExists(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	var ok bool
	if err := pool.QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestLatestVersionIsNewestMigration(t *testing.T) {
	t.Parallel()
	entries, err := fs.ReadDir(migrations.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`^(\d+)_[a-z0-9_]+\.(up|down)\.sql$`)
	var newest uint64
	ups, downs := map[uint64]bool{}, map[uint64]bool{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		m := name.FindStringSubmatch(e.Name())
		if m == nil {
			t.Errorf("migration %q is not named NNNNNN_name.up.sql or .down.sql", e.Name())
			continue
		}
		v, _ := strconv.ParseUint(m[1], 10, 64)
		newest = max(newest, v)
		if m[2] == "up" {
			ups[v] = true
		} else {
			downs[v] = true
		}
	}
	if newest == 0 {
		t.Fatal("no migrations embedded")
	}
	if got := database.LatestVersion(); uint64(got) != newest {
		t.Errorf("LatestVersion() = %d, want %d", got, newest)
	}
	for v := range ups {
		if !downs[v] {
			t.Errorf("migration %d has no .down.sql", v)
		}
	}
}

func TestMigrateUpIsCurrent(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	m := newMigrator(t, db.Pool)
	// testenv's database is migrated already: Up is a no-op, not an error.
	if err := m.Up(); err != nil {
		t.Fatalf("Up: %v", err)
	}
	wantVersion(t, m, database.LatestVersion())
	if err := database.CheckSchema(context.Background(), db.Pool); err != nil {
		t.Errorf("CheckSchema on a migrated database: %v", err)
	}
}

func TestMigrateDownAndUpAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.NewDB(t)
	m := newMigrator(t, db.Pool)

	if err := m.Down(0); err != nil {
		t.Fatalf("Down(0): %v", err)
	}
	wantVersion(t, m, 0)
	for _, table := range []string{"users", "sessions", "api_tokens", "audit_log"} {
		if tableExists(t, db.Pool, table) {
			t.Errorf("table %s survives Down(0)", table)
		}
	}
	// Down again has nothing to do and is not an error.
	if err := m.Down(0); err != nil {
		t.Errorf("second Down(0): %v", err)
	}
	err := database.CheckSchema(ctx, db.Pool)
	if !errors.Is(err, database.ErrSchemaMismatch) || !strings.Contains(err.Error(), "needs") {
		t.Errorf("CheckSchema on an empty database = %v, want ErrSchemaMismatch saying what it needs", err)
	}

	if err := m.Up(); err != nil {
		t.Fatalf("Up after Down: %v", err)
	}
	wantVersion(t, m, database.LatestVersion())
	for _, table := range []string{"users", "sessions", "api_tokens", "audit_log"} {
		if !tableExists(t, db.Pool, table) {
			t.Errorf("table %s missing after Up", table)
		}
	}
	if err := database.CheckSchema(ctx, db.Pool); err != nil {
		t.Errorf("CheckSchema after Down and Up: %v", err)
	}
	// The append-only trigger comes back with the table.
	if _, err := db.Pool.Exec(ctx, `TRUNCATE audit_log`); err == nil {
		t.Error("TRUNCATE audit_log succeeded after re-migration; the trigger is missing")
	}
}

func TestMigrateDownOneStep(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	m := newMigrator(t, db.Pool)
	latest := database.LatestVersion()
	if err := m.Down(1); err != nil {
		t.Fatalf("Down(1): %v", err)
	}
	v, dirty, err := m.Version()
	if err != nil || dirty || v >= latest {
		t.Fatalf("Version after Down(1) = %d, dirty %v, %v; want below %d, clean", v, dirty, err, latest)
	}
	if err := m.Up(); err != nil {
		t.Fatalf("Up: %v", err)
	}
	wantVersion(t, m, latest)
}

func TestMigratorLeavesPoolOpen(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	m, err := database.NewMigrator(db.Pool)
	if err != nil {
		t.Fatalf("NewMigrator: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// The server migrates with its own pool at start and then serves with it.
	if err := db.Pool.Ping(context.Background()); err != nil {
		t.Errorf("pool unusable after Migrator.Close: %v", err)
	}
}

func TestCheckSchemaMismatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup string
		want  string // "" for no error; otherwise a word the message must contain
	}{
		{"current", ``, ""},
		{"newer", `UPDATE schema_migrations SET version = version + 1`, "newer"},
		{"dirty", `UPDATE schema_migrations SET dirty = true`, "dirty"},
		{"older", `UPDATE schema_migrations SET version = version - 1`, "needs"},
		{"no version row", `DELETE FROM schema_migrations`, "needs"},
		{"no version table", `DROP TABLE schema_migrations`, "needs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := testenv.NewDB(t)
			if tt.setup != "" {
				if _, err := db.Pool.Exec(ctx, tt.setup); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			err := database.CheckSchema(ctx, db.Pool)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckSchema: %v", err)
				}
				return
			}
			if !errors.Is(err, database.ErrSchemaMismatch) {
				t.Fatalf("CheckSchema = %v, want ErrSchemaMismatch", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CheckSchema = %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestCheckSchemaDatabaseDown(t *testing.T) {
	t.Parallel()
	pool, err := database.Open(context.Background(), database.Config{URL: "postgres://x:y@127.0.0.1:1/db", ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = database.CheckSchema(ctx, pool)
	if err == nil || errors.Is(err, database.ErrSchemaMismatch) {
		t.Fatalf("CheckSchema with no database = %v, want a non-mismatch error", err)
	}
	if !database.Unavailable(err) {
		t.Errorf("Unavailable(%v) = false, want true", err)
	}
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)

	closed, err := database.Open(context.Background(), database.Config{URL: "postgres://x:y@127.0.0.1:1/db"})
	if err != nil {
		t.Fatalf("Open does not dial, so it must not fail on an unreachable server: %v", err)
	}
	defer closed.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	pingErr := closed.Ping(ctx)
	if pingErr == nil {
		t.Fatal("Ping of 127.0.0.1:1 succeeded")
	}

	_, syntaxErr := db.Pool.Exec(context.Background(), `SELEC 1`)
	if syntaxErr == nil {
		t.Fatal("syntax error query succeeded")
	}
	_, uniqueErr := db.Pool.Exec(context.Background(), `INSERT INTO users (name, role) VALUES ('u', 'viewer'), ('u', 'viewer')`)
	if uniqueErr == nil {
		t.Fatal("duplicate insert succeeded")
	}

	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"connection refused", pingErr, true},
		{"wrapped connection refused", errors.Join(errors.New("list models"), pingErr), true},
		{"syntax error", syntaxErr, false},
		{"unique violation", uniqueErr, false},
		{"deadline exceeded", context.DeadlineExceeded, true},
		{"plain error", errors.New("boom"), false},
	}
	for _, tt := range tests {
		if got := database.Unavailable(tt.err); got != tt.want {
			t.Errorf("%s: Unavailable(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestOpenSetsSessionParameters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.NewDB(t)
	pool, err := database.Open(ctx, database.Config{URL: db.URL, MaxConns: 2, StatementTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer pool.Close()
	var timeout, idle, app string
	if err := pool.QueryRow(ctx, `SELECT current_setting('statement_timeout'), current_setting('idle_in_transaction_session_timeout'), current_setting('application_name')`).Scan(&timeout, &idle, &app); err != nil {
		t.Fatal(err)
	}
	if timeout != "200ms" || idle != "400ms" || app != "slipway" {
		t.Errorf("settings = statement_timeout %q, idle_in_transaction_session_timeout %q, application_name %q; want 200ms, 400ms, slipway", timeout, idle, app)
	}
	if got := pool.Config().MaxConns; got != 2 {
		t.Errorf("MaxConns = %d, want 2", got)
	}
	// A statement that outlives the timeout is cancelled by the server, which
	// counts as "unavailable": the database did not answer in time.
	_, err = pool.Exec(ctx, `SELECT pg_sleep(5)`)
	if err == nil {
		t.Fatal("pg_sleep(5) finished despite a 200ms statement timeout")
	}
	if !database.Unavailable(err) {
		t.Errorf("Unavailable(%v) = false for a statement timeout", err)
	}
}

func TestOpenDefaults(t *testing.T) {
	t.Parallel()
	pool, err := database.Open(context.Background(), database.Config{URL: "postgres://u:p@localhost:5432/db"})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer pool.Close()
	c := pool.Config()
	if c.MaxConns != 20 || c.MinConns != 0 || c.MaxConnLifetime != time.Hour || c.MaxConnIdleTime != 5*time.Minute || c.ConnConfig.ConnectTimeout != 5*time.Second {
		t.Errorf("defaults = MaxConns %d, MinConns %d, MaxConnLifetime %v, MaxConnIdleTime %v, ConnectTimeout %v; want 20, 0, 1h, 5m, 5s",
			c.MaxConns, c.MinConns, c.MaxConnLifetime, c.MaxConnIdleTime, c.ConnConfig.ConnectTimeout)
	}
	if got := c.ConnConfig.RuntimeParams["statement_timeout"]; got != "30000" {
		t.Errorf("statement_timeout = %q, want 30000 (ms)", got)
	}
}

func TestOpenBadURLDoesNotEchoPassword(t *testing.T) {
	t.Parallel()
	_, err := database.Open(context.Background(), database.Config{URL: "postgres://u:hunter2@host:notaport/db"})
	if err == nil {
		t.Fatal("Open accepted a URL with a non-numeric port")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Open error %q contains the password", err)
	}
}
