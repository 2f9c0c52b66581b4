package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestParseConfig(t *testing.T) {
	c, err := parseConfig(nil, env(map[string]string{envSecret: vectorSecret}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.addr != "127.0.0.1:8091" || c.dir != "" || !slices.Equal(c.stages, []string{"production"}) || c.tolerance != 5*time.Minute || c.downloadTimeout != 10*time.Minute {
		t.Errorf("defaults: %+v", c)
	}

	// The environment, then flags over it.
	vars := map[string]string{envSecret: vectorSecret, envAddr: ":9000", envDir: "/srv/models", envStages: "staging", envTolerance: "1m"}
	c, err = parseConfig([]string{"-stages", "production, canary", "-tolerance", "2m"}, env(vars), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.addr != ":9000" || c.dir != "/srv/models" || !slices.Equal(c.stages, []string{"production", "canary"}) || c.tolerance != 2*time.Minute {
		t.Errorf("env and flags: %+v", c)
	}

	for name, args := range map[string][]string{
		"no secret":             nil,
		"secret without prefix": {"-secret", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		"bad tolerance":         {"-secret", vectorSecret, "-tolerance", "5"},
		"negative tolerance":    {"-secret", vectorSecret, "-tolerance", "-5m"},
		"no stage":              {"-secret", vectorSecret, "-stages", " , "},
		"bad address":           {"-secret", vectorSecret, "-addr", "8091"},
		"extra argument":        {"-secret", vectorSecret, "production"},
	} {
		if _, err := parseConfig(args, env(nil), io.Discard); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := parseConfig([]string{"-h"}, env(nil), io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
}

// run serves on the address it is given and stops cleanly when its context
// is cancelled (what SIGINT and SIGTERM do in main).
func TestRunServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &logBuffer{}
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-dir", t.TempDir()},
			env(map[string]string{envSecret: vectorSecret}), log.New(logs, "", 0), func(a string) { addrs <- a })
	}()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, logs)
	}

	body := []byte(`{"type":"webhook.test","id":"evt_1","timestamp":"2026-11-23T10:00:00Z","data":{}}`)
	ts := time.Now().Unix()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+hookPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(headerID, "msg_1")
	req.Header.Set(headerTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(headerSignature, sign(t, vectorSecret, "msg_1", ts, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d, want 204\n%s", resp.StatusCode, logs)
	}
	// Only POST /hooks is served.
	resp, err = http.Get("http://" + addr + hookPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET %s: %s, want 405", hookPath, resp.Status)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if !strings.Contains(logs.String(), "stopped") {
		t.Errorf("no clean stop logged:\n%s", logs)
	}
}
