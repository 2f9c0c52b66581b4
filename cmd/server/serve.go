package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slipway-ml/slipway/internal/api"
	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/config"
	"github.com/slipway-ml/slipway/internal/database"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/evaluation"
	"github.com/slipway-ml/slipway/internal/idempotency"
	"github.com/slipway-ml/slipway/internal/lineage"
	"github.com/slipway-ml/slipway/internal/promotion"
	"github.com/slipway-ml/slipway/internal/registry"
	"github.com/slipway-ml/slipway/internal/server"
	"github.com/slipway-ml/slipway/internal/webhook"
	"github.com/slipway-ml/slipway/static"
)

func loadConfig(getenv func(string) string, scope config.Scope) (*config.Config, error) {
	cfg, err := config.Load(getenv, scope)
	if err != nil {
		return nil, configError{err}
	}
	return cfg, nil
}

func openDatabase(ctx context.Context, cfg *config.Config) (*pgxpool.Pool, error) {
	return database.Open(ctx, database.Config{URL: cfg.DatabaseURL, MaxConns: cfg.DBMaxConns, StatementTimeout: cfg.DBStatementTimeout})
}

// waitForDatabase gives PostgreSQL a minute to come up: with compose or
// systemd, Slipway may start first.
func waitForDatabase(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	deadline := time.Now().Add(time.Minute)
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := pool.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("database unreachable: %w", err)
		}
		log.Warn("waiting for the database", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

// waitForStore opens the object store, giving it a minute to come up, as
// the database gets. Errors other than unavailability (bad credentials, a
// bad bucket name) fail at once.
func waitForStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (blob.Store, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		store, err := openStore(ctx, cfg)
		if err == nil || !errors.Is(err, errs.ErrUnavailable) || time.Now().After(deadline) || ctx.Err() != nil {
			return store, err
		}
		log.Warn("waiting for the object store", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

// openBackends opens the database (waiting for it), brings its schema up
// to date as cfg says, and opens the object store (waiting for it).
func openBackends(ctx context.Context, cfg *config.Config, log *slog.Logger) (*pgxpool.Pool, blob.Store, error) {
	pool, err := openDatabase(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	if err := waitForDatabase(ctx, pool, log); err != nil {
		pool.Close()
		return nil, nil, err
	}
	if err := prepareSchema(ctx, cfg, pool); err != nil {
		pool.Close()
		return nil, nil, err
	}
	store, err := waitForStore(ctx, cfg, log)
	if err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("object store: %w", err)
	}
	return pool, store, nil
}

// bootstrap makes the first admin from the configuration, while no admin
// exists.
func bootstrap(ctx context.Context, cfg *config.Config, pool *pgxpool.Pool, log *slog.Logger) (*auth.Service, error) {
	authSvc := auth.NewService(pool, auth.Config{SessionTTL: cfg.SessionTTL})
	created, err := authSvc.Bootstrap(ctx, cfg.BootstrapToken, cfg.BootstrapPassword)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("bootstrap admin created", "user", auth.BootstrapAdminName, "password_login", cfg.BootstrapPassword != "")
	}
	return authSvc, nil
}

// prepareSchema applies the migrations when cfg.Migrate says so, and checks
// that the schema is the one this binary expects.
func prepareSchema(ctx context.Context, cfg *config.Config, pool *pgxpool.Pool) error {
	if cfg.Migrate {
		m, err := database.NewMigrator(pool)
		if err != nil {
			return err
		}
		err = m.Up()
		m.Close()
		if err != nil {
			return err
		}
	}
	return database.CheckSchema(ctx, pool)
}

func openStore(ctx context.Context, cfg *config.Config) (blob.Store, error) {
	if cfg.Storage == "filesystem" {
		return blob.NewFilesystem(cfg.StorageDir)
	}
	return blob.NewS3(ctx, blob.S3Config{
		Endpoint: cfg.S3Endpoint, Bucket: cfg.S3Bucket, AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey,
		AWSCredentials: cfg.S3Credentials == "aws",
		Region:         cfg.S3Region, InsecureSkipVerify: cfg.S3InsecureSkipVerify, CreateBucket: true,
	})
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := loadConfig(getenv, config.Server)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	migrateFlag := fs.Bool("migrate", cfg.Migrate, "apply database migrations at start (SLIPWAY_MIGRATE)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	cfg.Migrate = *migrateFlag

	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	log.Info("starting Slipway", "version", version, "config", cfg)

	pool, store, err := openBackends(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	authSvc, err := bootstrap(ctx, cfg, pool, log)
	if err != nil {
		return err
	}

	assets, err := static.New()
	if err != nil {
		return err
	}
	doc, err := api.LoadDocument()
	if err != nil {
		return err
	}
	reg := registry.NewService(pool, store)
	lin := lineage.NewService(pool, store)
	evals := evaluation.NewService(pool, store)
	hooks, dispatcher, err := webhooks(cfg, pool, store, log)
	if err != nil {
		return err
	}
	srv := server.New(server.Deps{
		Config: cfg, DB: pool, Store: store, Auth: authSvc, AuditLog: audit.NewLog(pool), Registry: reg,
		Lineage: lin, Evaluations: evals, Promotions: promotion.NewService(pool, store), Webhooks: hooks,
		Assets: assets, OpenAPI: doc, Logger: log,
	})

	httpServer := &http.Server{
		Addr:              cfg.Addr,
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}

	go reapSessions(ctx, authSvc, idempotency.NewStore(pool), log)
	go reapOrphans(ctx, reg, lin, evals, cfg.OrphanGrace, log)
	go dispatcher.Run(ctx)

	errc := make(chan error, 1)
	go func() {
		if cfg.TLSCertFile != "" {
			errc <- httpServer.ServeTLS(ln, cfg.TLSCertFile, cfg.TLSKeyFile)
		} else {
			errc <- httpServer.Serve(ln)
		}
	}()
	log.Info("Slipway is listening", "addr", ln.Addr().String(), "url", publicURL(cfg, ln.Addr()))

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := httpServer.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

func publicURL(cfg *config.Config, addr net.Addr) string {
	if cfg.PublicURL != nil {
		return cfg.PublicURL.String()
	}
	scheme := "http"
	if cfg.TLSCertFile != "" {
		scheme = "https"
	}
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// every runs fn every d until ctx ends. Several replicas running the same
// housekeeping at once is harmless: each job is idempotent.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// reapOrphans deletes expired drafts and, once older than grace, the
// objects no version references (a crash between upload and commit leaves
// such objects), every min(10 min, grace/2).
func reapOrphans(ctx context.Context, reg *registry.Service, lin *lineage.Service, evals *evaluation.Service, grace time.Duration, log *slog.Logger) {
	every(ctx, min(10*time.Minute, max(grace/2, time.Second)), func() {
		st, err := reg.ReapOrphans(ctx, grace)
		if err != nil {
			log.Warn("reaping orphan objects", "error", err)
		} else if st.Deleted > 0 || st.Aborted > 0 || st.Drafts > 0 {
			log.Info("reaped orphan objects", "deleted", st.Deleted, "aborted_uploads", st.Aborted, "expired_drafts", st.Drafts, "scanned", st.Scanned)
		}
		for _, r := range []struct {
			what string
			reap func(context.Context, time.Duration) (blob.ReapStats, error)
		}{{"dataset objects", lin.ReapOrphans}, {"reports", evals.ReapOrphans}} {
			st, err := r.reap(ctx, grace)
			if err != nil {
				log.Warn("reaping orphan "+r.what, "error", err)
			} else if st.Deleted > 0 || st.Aborted > 0 {
				log.Info("reaped orphan "+r.what, "deleted", st.Deleted, "aborted_uploads", st.Aborted, "scanned", st.Scanned)
			}
		}
	})
}

// reapSessions deletes expired sessions, old sign-in failures and expired
// idempotency keys hourly.
func reapSessions(ctx context.Context, a *auth.Service, idem *idempotency.Store, log *slog.Logger) {
	every(ctx, time.Hour, func() {
		if n, err := a.DeleteExpiredSessions(ctx); err != nil {
			log.Warn("deleting expired sessions", "error", err)
		} else if n > 0 {
			log.Info("deleted expired sessions", "count", n)
		}
		if _, err := a.DeleteOldLoginFailures(ctx); err != nil {
			log.Warn("deleting old login failures", "error", err)
		}
		if _, err := idem.DeleteExpired(ctx); err != nil {
			log.Warn("deleting expired idempotency keys", "error", err)
		}
	})
}

// newSealer seals webhook secrets under SLIPWAY_WEBHOOK_KEY and opens them
// with it or SLIPWAY_WEBHOOK_KEY_PREVIOUS; nil without a key.
func newSealer(cfg *config.Config) (*webhook.Sealer, error) {
	if cfg.WebhookKey == nil {
		return nil, nil
	}
	var previous [][]byte
	if cfg.WebhookKeyPrevious != nil {
		previous = append(previous, cfg.WebhookKeyPrevious)
	}
	return webhook.NewSealer(cfg.WebhookKey, previous...)
}

// webhooks builds the webhook service and its delivery workers from the
// configuration.
func webhooks(cfg *config.Config, pool *pgxpool.Pool, store blob.Store, log *slog.Logger) (*webhook.Service, *webhook.Dispatcher, error) {
	sealer, err := newSealer(cfg)
	switch {
	case err != nil:
		return nil, nil, err
	case sealer == nil:
		log.Warn("SLIPWAY_WEBHOOK_KEY is not set: webhook endpoints cannot be created")
	case cfg.WebhookKeyPrevious != nil:
		log.Info("SLIPWAY_WEBHOOK_KEY_PREVIOUS is set: secrets sealed under it still open; run `slipway webhooks reseal` once every replica has both keys, then remove it")
	}
	policy := webhook.AddressPolicy{AllowPrivate: cfg.WebhookAllowPrivate, Allow: cfg.WebhookAllow, Deny: cfg.WebhookDeny}
	svc := webhook.NewService(pool, sealer, policy)
	public := ""
	if cfg.PublicURL != nil {
		public = cfg.PublicURL.String()
	}
	d := webhook.NewDispatcher(pool, svc, store, policy, webhook.DispatchConfig{Workers: cfg.WebhookWorkers, Timeout: cfg.WebhookTimeout,
		DisableAfter: cfg.WebhookDisableAfter, PublicURL: public, Schedule: cfg.WebhookSchedule}, log)
	return svc, d, nil
}
