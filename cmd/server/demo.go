package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/slipway-ml/slipway/internal/config"
	"github.com/slipway-ml/slipway/internal/demo"
	"github.com/slipway-ml/slipway/internal/evaluation"
	"github.com/slipway-ml/slipway/internal/lineage"
	"github.com/slipway-ml/slipway/internal/promotion"
	"github.com/slipway-ml/slipway/internal/registry"
)

// demoCmd loads the demo story into an empty registry:
//
//	slipway demo [--webhook-url URL] [--secret-file FILE]
func demoCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	hookURL := fs.String("webhook-url", "", "make a webhook endpoint for stage moves at this URL (e.g. the example receiver's http://127.0.0.1:8091/hooks)")
	secretFile := fs.String("secret-file", "", "write the endpoint's signing secret to this file (mode 0600) for the receiver")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("demo: unexpected arguments %q", fs.Args())}
	}
	if *secretFile != "" && *hookURL == "" {
		return usageError{"demo: --secret-file needs --webhook-url"}
	}
	cfg, err := loadConfig(getenv, config.Server)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pool, store, err := openBackends(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	hooks, _, err := webhooks(cfg, pool, store, log)
	if err != nil {
		return err
	}
	// the bootstrap admin first, as serve makes it: it is made only while
	// no admin exists, and the demo acts as it
	authSvc, err := bootstrap(ctx, cfg, pool, log)
	if err != nil {
		return err
	}
	svc := demo.Services{
		Auth: authSvc, Registry: registry.NewService(pool, store),
		Lineage: lineage.NewService(pool, store), Evaluations: evaluation.NewService(pool, store),
		Promotions: promotion.NewService(pool, store),
	}
	if cfg.WebhookKey != nil {
		svc.Webhooks = hooks
	} else if *hookURL != "" {
		fmt.Fprintln(stderr, "slipway demo: SLIPWAY_WEBHOOK_KEY is not set: no webhook endpoint is made")
	}
	res, err := demo.Seed(ctx, svc, demo.Options{WebhookURL: *hookURL})
	if err != nil {
		return err
	}
	if res.Skipped {
		fmt.Fprintln(stdout, "The registry is not empty: the demo was not loaded.")
		return nil
	}
	if *secretFile != "" && res.WebhookSecret != "" {
		if err := os.WriteFile(*secretFile, []byte(res.WebhookSecret+"\n"), 0o600); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "Loaded the demo: models %s.\n", strings.Join(res.Models, " and "))
	fmt.Fprintf(stdout, "A promotion waits for review: /promotions/%d\n", res.Pending)
	if res.WebhookEndpoint != 0 {
		fmt.Fprintf(stdout, "Stage moves are sent to %s (endpoint %d).\n", *hookURL, res.WebhookEndpoint)
	}
	return nil
}
