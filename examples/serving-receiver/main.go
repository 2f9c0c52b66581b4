// Command serving-receiver is a starting point for a model-serving team. It
// receives Slipway's webhooks, checks that Slipway signed them (Standard
// Webhooks), and, when a stage it serves moves to a new version, downloads
// that version's artifacts, checks their size and SHA-256, and puts them in
// place under a directory.
//
// It uses the Go standard library only, so the folder can be copied into
// another repository as it is. README.md says how to run it against a local
// Slipway and what to change before production.
//
// The files:
//
//	main.go       flags and environment, the HTTP server, graceful shutdown
//	verify.go     reading and authenticating a delivery (signature, timestamp)
//	receiver.go   what to do with an event: idempotency, ordering, dispatch
//	artifacts.go  downloading, checking and installing a version's files
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Environment variables read when the matching flag is not given. The
// secret has Slipway's name for it; the others are this program's own, and
// do not start with SLIPWAY_ so that they cannot be mistaken for (or clash
// with) the settings of a Slipway server run from the same shell.
const (
	envSecret          = "SLIPWAY_WEBHOOK_SECRET"
	envAddr            = "RECEIVER_ADDR"
	envDir             = "RECEIVER_MODELS_DIR"
	envStages          = "RECEIVER_STAGES"
	envTolerance       = "RECEIVER_TOLERANCE"
	envDownloadTimeout = "RECEIVER_DOWNLOAD_TIMEOUT"
)

// hookPath is where Slipway posts. Register http://<addr>/hooks.
const hookPath = "/hooks"

// shutdownGrace is how long a shutdown waits for deliveries in progress
// (a download, typically) before cancelling them. A cancelled delivery
// answers 503, so Slipway sends it again to the next process.
const shutdownGrace = 30 * time.Second

func main() {
	// SIGINT (Ctrl-C) and SIGTERM (what systemd, Docker and Kubernetes send)
	// cancel ctx, which starts a graceful shutdown in run.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	logger := log.New(os.Stderr, "", log.LstdFlags)
	err := run(ctx, os.Args[1:], os.Getenv, logger, nil)
	switch {
	case errors.Is(err, flag.ErrHelp):
		// -h: the flag package printed the usage already.
	case err != nil:
		logger.Printf("error: %v", err)
		os.Exit(1)
	}
}

// config is what the program is told by flags and environment.
type config struct {
	addr            string
	secret          string
	dir             string // "" means a new temporary directory
	stages          []string
	tolerance       time.Duration
	downloadTimeout time.Duration
}

// parseConfig reads flags, falling back on the environment, then on
// defaults. A flag wins over the environment so that one run can override a
// setting without editing the environment. The secret is better given in
// the environment: a flag shows in `ps` to every user of the machine.
func parseConfig(args []string, getenv func(string) string, usage io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("serving-receiver", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&c.addr, "addr", or(getenv(envAddr), "127.0.0.1:8091"),
		"host:port to listen on (env "+envAddr+")")
	fs.StringVar(&c.secret, "secret", getenv(envSecret),
		"the endpoint's signing secret, whsec_… (env "+envSecret+"; required)")
	fs.StringVar(&c.dir, "dir", getenv(envDir),
		"directory where models are installed (env "+envDir+"; default a new temporary directory)")
	stages := fs.String("stages", or(getenv(envStages), "production"),
		"comma-separated stages to act on (env "+envStages+")")
	tolerance := fs.String("tolerance", or(getenv(envTolerance), "5m"),
		"how far webhook-timestamp may be from this machine's clock (env "+envTolerance+")")
	downloadTimeout := fs.String("download-timeout", or(getenv(envDownloadTimeout), "10m"),
		"time allowed to download one version's artifacts (env "+envDownloadTimeout+")")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	var err error
	if c.secret == "" {
		return c, fmt.Errorf("the signing secret is required: set %s or -secret (Slipway shows it once, when the endpoint is created)", envSecret)
	}
	if _, err = decodeSecret(c.secret); err != nil {
		return c, err
	}
	if _, _, err = net.SplitHostPort(c.addr); err != nil {
		return c, fmt.Errorf("-addr: must be host:port: %v", err)
	}
	for _, s := range strings.Split(*stages, ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.stages = append(c.stages, s)
		}
	}
	if len(c.stages) == 0 {
		return c, errors.New("-stages: name at least one stage")
	}
	if c.tolerance, err = positiveDuration("-tolerance", *tolerance); err != nil {
		return c, err
	}
	if c.downloadTimeout, err = positiveDuration("-download-timeout", *downloadTimeout); err != nil {
		return c, err
	}
	return c, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func positiveDuration(name, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: want a positive duration such as 5m or 90s, got %q", name, v)
	}
	return d, nil
}

// run is main without the process: tests call it with their own context,
// environment and logger. ready, when not nil, is told the address actually
// listened on (useful with port 0). run returns when ctx is cancelled and
// the server has shut down.
func run(ctx context.Context, args []string, getenv func(string) string, logger *log.Logger, ready func(addr string)) error {
	cfg, err := parseConfig(args, getenv, logger.Writer())
	if err != nil {
		return err
	}
	if cfg.dir == "" {
		// A temporary directory keeps a first try from writing anywhere
		// that matters. It is not removed on exit, so that you can look.
		if cfg.dir, err = os.MkdirTemp("", "slipway-models-"); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		return err
	}
	removeLeftovers(cfg.dir, logger)

	// Downloads run under their own context, not the request's: when
	// Slipway stops waiting, the download goes on, and the retry finds the
	// work done (see handleStageMoved). downloads is cancelled only when
	// shutdown has waited long enough.
	downloads, cancelDownloads := context.WithCancel(context.Background())
	defer cancelDownloads()

	rcv, err := NewReceiver(Options{
		Secret:          cfg.secret,
		Dir:             cfg.dir,
		Stages:          cfg.stages,
		Tolerance:       cfg.tolerance,
		DownloadTimeout: cfg.downloadTimeout,
		Logger:          logger,
		BaseContext:     downloads,
	})
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("POST "+hookPath, rcv)
	srv := &http.Server{
		Handler: mux,
		// Slow or stuck clients must not hold connections forever. There
		// is no WriteTimeout: a delivery may legitimately take as long as
		// a download (bounded by -download-timeout instead).
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          logger,
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	logger.Printf("listening on http://%s%s; stages %s; models in %s", ln.Addr(), hookPath, strings.Join(cfg.stages, ","), cfg.dir)
	if ready != nil {
		ready(ln.Addr().String())
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return err // the listener failed; nothing to shut down
	case <-ctx.Done():
	}

	// Graceful shutdown: stop accepting, let deliveries in progress finish
	// (so a model half downloaded is not thrown away needlessly), and after
	// shutdownGrace cancel what is left. Anything not answered 2xx is sent
	// again by Slipway, so nothing is lost either way.
	logger.Printf("shutting down")
	graceCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err = srv.Shutdown(graceCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		logger.Printf("deliveries still running after %s: cancelling them", shutdownGrace)
		cancelDownloads()
		err = srv.Close()
	}
	if errors.Is(<-served, http.ErrServerClosed) && err == nil {
		logger.Printf("stopped")
	}
	return err
}
