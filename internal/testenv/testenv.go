// Package testenv gives tests real services: a fresh PostgreSQL database per
// test, cloned from a migrated template, and a fresh MinIO bucket.
//
// Where the services come from, in order:
//   - SLIPWAY_TEST_DATABASE_URL (a superuser URL; `make test` starts a local
//     cluster and sets it) and SLIPWAY_TEST_S3_ENDPOINT/_ACCESS_KEY/_SECRET_KEY;
//   - otherwise containers, when a Docker engine is reachable (testcontainers);
//   - otherwise the test is skipped, except under CI=true, where it fails: no
//     integration test may silently not run in CI.
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/slipway-ml/slipway/internal/database"
	"github.com/slipway-ml/slipway/migrations"
)

// unavailable skips the test, or fails it under CI.
func unavailable(t testing.TB, what string) {
	t.Helper()
	msg := what + " is not available: run the tests with `make test` (it starts local PostgreSQL and MinIO), set SLIPWAY_TEST_DATABASE_URL / SLIPWAY_TEST_S3_*, or run a Docker engine"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

var (
	adminOnce sync.Once
	adminURL  string
	adminErr  error
)

// postgresAdminURL is a superuser URL of the test cluster.
func postgresAdminURL(t testing.TB) string {
	t.Helper()
	adminOnce.Do(func() {
		if u := os.Getenv("SLIPWAY_TEST_DATABASE_URL"); u != "" {
			adminURL = u
			return
		}
		if dockerAvailable() {
			adminURL, adminErr = startPostgresContainer()
		}
	})
	if adminErr != nil {
		t.Fatalf("start PostgreSQL container: %v", adminErr)
	}
	if adminURL == "" {
		unavailable(t, "PostgreSQL")
	}
	return adminURL
}

// withDatabase returns u with its database name replaced.
func withDatabase(u, name string) string {
	p, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	p.Path = "/" + name
	return p.String()
}

// schemaHash names the template after the migration files, so a changed
// migration gets a new template rather than a stale one.
func schemaHash() string {
	h := sha256.New()
	entries, _ := fs.ReadDir(migrations.FS, ".")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		b, _ := fs.ReadFile(migrations.FS, n)
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// ensureTemplate creates the migrated template database once per cluster.
// An advisory lock serialises test binaries that start together.
func ensureTemplate(ctx context.Context, admin string) (string, error) {
	templateOnce.Do(func() {
		name := "slipway_template_" + schemaHash()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			templateErr = err
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(7301)`); err != nil {
			templateErr = err
			return
		}
		defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock(7301)`)

		var isTemplate *bool
		err = conn.QueryRow(ctx, `SELECT datistemplate FROM pg_database WHERE datname = $1`, name).Scan(&isTemplate)
		if err == nil && isTemplate != nil && *isTemplate {
			templateName = name
			return
		}
		if err == nil { // half-built by a run that died
			if _, err := conn.Exec(ctx, `DROP DATABASE `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
				templateErr = err
				return
			}
		}
		if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
			templateErr = err
			return
		}
		if err := migrateDatabase(ctx, withDatabase(admin, name)); err != nil {
			templateErr = fmt.Errorf("migrate template: %w", err)
			return
		}
		if _, err := conn.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{name}.Sanitize()+` WITH IS_TEMPLATE true`); err != nil {
			templateErr = err
			return
		}
		templateName = name
	})
	return templateName, templateErr
}

func migrateDatabase(ctx context.Context, u string) error {
	pool, err := database.Open(ctx, database.Config{URL: u, MaxConns: 2})
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := database.NewMigrator(pool)
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Up()
}

// DB is one test's database.
type DB struct {
	Pool *pgxpool.Pool
	URL  string // URL of the test database, for code that opens its own pool
	Name string
}

// NewDB creates a database for t with Slipway's schema and drops it when t
// ends.
func NewDB(t testing.TB) *DB {
	t.Helper()
	admin := postgresAdminURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tmpl, err := ensureTemplate(ctx, admin)
	if err != nil {
		t.Fatalf("template database: %v", err)
	}
	name := "slipway_test_" + randomHex(8)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to test cluster: %v", err)
	}
	defer conn.Close(ctx)
	// Several packages clone at once; PostgreSQL refuses a clone while
	// another session copies the same template, so retry briefly.
	for attempt := 0; ; attempt++ {
		_, err = conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+` TEMPLATE `+pgx.Identifier{tmpl}.Sanitize())
		if err == nil || attempt == 50 || !strings.Contains(err.Error(), "being accessed by other users") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("create test database: %v", err)
	}
	u := withDatabase(admin, name)
	pool, err := database.Open(ctx, database.Config{URL: u, MaxConns: 10})
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("drop test database: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			t.Logf("drop test database: %v", err)
		}
	})
	return &DB{Pool: pool, URL: u, Name: name}
}

// S3 is a MinIO endpoint for tests, with a bucket name of the test's own.
// The bucket does not exist yet; the object store creates it.
type S3 struct {
	Endpoint, AccessKey, SecretKey, Bucket string
}

var (
	s3Once sync.Once
	s3Env  S3
	s3Err  error
)

// NewS3 returns the test MinIO and a fresh bucket name.
func NewS3(t testing.TB) S3 {
	t.Helper()
	s3Once.Do(func() {
		if e := os.Getenv("SLIPWAY_TEST_S3_ENDPOINT"); e != "" {
			s3Env = S3{Endpoint: e, AccessKey: os.Getenv("SLIPWAY_TEST_S3_ACCESS_KEY"), SecretKey: os.Getenv("SLIPWAY_TEST_S3_SECRET_KEY")}
			return
		}
		if dockerAvailable() {
			s3Env, s3Err = startMinioContainer()
		}
	})
	if s3Err != nil {
		t.Fatalf("start MinIO container: %v", s3Err)
	}
	if s3Env.Endpoint == "" {
		unavailable(t, "MinIO")
	}
	s := s3Env
	s.Bucket = "slipway-test-" + randomHex(8)
	t.Cleanup(func() { removeBucket(t, s) })
	return s
}

// removeBucket deletes a test's bucket and everything in it, if the test
// created it.
func removeBucket(t testing.TB, s S3) {
	u, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Errorf("remove bucket %s: %v", s.Bucket, err)
		return
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Secure: u.Scheme == "https"})
	if err != nil {
		t.Errorf("remove bucket %s: %v", s.Bucket, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if ok, err := c.BucketExists(ctx, s.Bucket); err != nil || !ok {
		return
	}
	// ForceDelete (a MinIO extension) removes the objects too.
	if err := c.RemoveBucketWithOptions(ctx, s.Bucket, minio.RemoveBucketOptions{ForceDelete: true}); err != nil {
		t.Errorf("remove bucket %s: %v", s.Bucket, err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
