package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthCmd asks the server on SLIPWAY_ADDR (or --url) whether it is
// ready. Container images without a shell or curl use it as health check.
func healthCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	target := fs.String("url", "", "readiness URL (default: http://localhost:<port of SLIPWAY_ADDR>/readyz)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	local := *target == ""
	if local {
		addr := getenv("SLIPWAY_ADDR")
		if addr == "" {
			addr = ":8080"
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return configError{fmt.Errorf("SLIPWAY_ADDR must be host:port: %w", err)}
		}
		scheme := "http"
		if getenv("SLIPWAY_TLS_CERT_FILE") != "" {
			scheme = "https"
		}
		*target = scheme + "://localhost:" + port + "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *target, nil)
	if err != nil {
		return usageError{err.Error()}
	}
	client := http.DefaultClient
	if local {
		// The check asks this very process whether it is ready; the
		// certificate is for the public name, not localhost.
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	fmt.Fprintf(stdout, "%d %s\n", res.StatusCode, body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: %s answered %d", *target, res.StatusCode)
	}
	return nil
}
