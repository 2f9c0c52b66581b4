package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/slipway-ml/slipway/migrations"
)

// ErrSchemaMismatch means the database schema is not the one this binary
// was built for.
var ErrSchemaMismatch = errors.New("database schema mismatch")

// Migrator applies the embedded migrations. golang-migrate takes a
// PostgreSQL advisory lock, so replicas starting together migrate once.
type Migrator struct {
	m  *migrate.Migrate
	db *sql.DB
}

// NewMigrator opens a dedicated connection for migrating the database at pool.
func NewMigrator(pool *pgxpool.Pool) (*Migrator, error) {
	db := stdlib.OpenDBFromPool(pool)
	drv, err := migratepgx.WithInstance(db, &migratepgx.Config{})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("migrations: %w", err)
	}
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("migrations: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return &Migrator{m: m, db: db}, nil
}

// Close releases the migrator's connection.
func (mg *Migrator) Close() error {
	srcErr, dbErr := mg.m.Close()
	return errors.Join(srcErr, dbErr)
}

// Up applies every pending migration. It refuses a database that a newer
// Slipway migrated, or one left dirty by a failed migration.
func (mg *Migrator) Up() error {
	v, dirty, err := mg.Version()
	if err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	if dirty || v > LatestVersion() {
		return schemaProblem(v, dirty) // golang-migrate's own messages say less
	}
	if err := mg.m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// Down reverts n migrations (all of them when n <= 0).
func (mg *Migrator) Down(n int) error {
	var err error
	if n <= 0 {
		err = mg.m.Down()
	} else {
		err = mg.m.Steps(-n)
	}
	if err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

// Force records version v as applied and clean, without running anything:
// the way out after a failed migration was repaired by hand.
func (mg *Migrator) Force(v int) error {
	if v == 0 {
		v = -1 // golang-migrate's "no migration applied"
	}
	if err := mg.m.Force(v); err != nil {
		return fmt.Errorf("migrate force: %w", err)
	}
	return nil
}

// Version returns the applied version (0 when none) and the dirty flag.
func (mg *Migrator) Version() (uint, bool, error) {
	v, dirty, err := mg.m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, false, nil
	}
	return v, dirty, err
}

var migrationName = regexp.MustCompile(`^(\d+)_.*\.up\.sql$`)

// LatestVersion is the newest migration embedded in this binary.
func LatestVersion() uint {
	entries, err := fs.ReadDir(migrations.FS, ".")
	if err != nil {
		panic(err) // embedded at build time: cannot fail
	}
	var latest uint
	for _, e := range entries {
		if m := migrationName.FindStringSubmatch(e.Name()); m != nil {
			v, _ := strconv.ParseUint(m[1], 10, 64)
			latest = max(latest, uint(v))
		}
	}
	return latest
}

// CheckSchema refuses a database whose schema is not exactly the one this
// binary knows: newer (a newer Slipway migrated it: running old code on it
// could corrupt data), older (migrations were turned off and not run), or
// dirty (a migration failed half-way).
func CheckSchema(ctx context.Context, pool *pgxpool.Pool) error {
	var (
		v     int64
		dirty bool
	)
	err := pool.QueryRow(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&v, &dirty)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		v = 0
	case err != nil:
		var exists bool
		if qerr := pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); qerr == nil && !exists {
			v = 0
		} else {
			return fmt.Errorf("read schema version: %w", err)
		}
	}
	return schemaProblem(uint(v), dirty)
}

func schemaProblem(v uint, dirty bool) error {
	latest := LatestVersion()
	switch {
	case dirty:
		return fmt.Errorf("%w: version %d is dirty (a migration failed half-way); repair the schema by hand, then run `slipway migrate force N` with the version it now matches", ErrSchemaMismatch, v)
	case v > latest:
		return fmt.Errorf("%w: the database is at version %d, newer than this binary knows (%d); run a newer Slipway", ErrSchemaMismatch, v, latest)
	case v < latest:
		return fmt.Errorf("%w: the database is at version %d, this binary needs %d; run `slipway migrate up` or start with migrations enabled", ErrSchemaMismatch, v, latest)
	}
	return nil
}
