package main

// The webhook benchmark: events committed to the outbox and delivered by
// Slipway's 4 workers to a receiver in this process, against the same
// receiver fed directly by 4 clients; then the time from a commit to the
// receiver, one event at a time.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slipway-ml/slipway/internal/events"
)

// hookReceiver counts messages by webhook-id and notes when each arrived.
type hookReceiver struct {
	mu      sync.Mutex
	arrived map[string]time.Time
	byEvent map[string]time.Time // envelope id (evt_…) → arrival
	dups    int
	signal  chan struct{}
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	now := time.Now()
	var env struct {
		ID string `json:"id"`
	}
	json.Unmarshal(b, &env)
	h.mu.Lock()
	id := r.Header.Get("webhook-id")
	if _, ok := h.arrived[id]; ok {
		h.dups++
	} else {
		h.arrived[id] = now
		h.byEvent[env.ID] = now
	}
	h.mu.Unlock()
	select {
	case h.signal <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) count() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.arrived) }

func benchWebhooks(ctx context.Context, c *client, dbURL string, n int) ([]string, error) {
	recv := &hookReceiver{arrived: map[string]time.Time{}, byEvent: map[string]time.Time{}, signal: make(chan struct{}, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: recv}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/hooks"

	// the baseline: the receiver fed straight by 4 clients
	body := []byte(`{"type":"stage.moved","id":"evt_x","timestamp":"2026-11-23T00:00:00Z","data":{"model":"hooks","seq":1}}`)
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
				req.Header.Set("webhook-id", fmt.Sprintf("msg_base_%d", i))
				if res, err := http.DefaultClient.Do(req); err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	direct := time.Since(start)

	if err := c.json("POST", "/api/v1/models", `{"name":"hooks"}`, 201); err != nil {
		return nil, err
	}
	if _, err := c.must("POST", "/api/v1/webhooks", "application/json", fmt.Sprintf(`{"url":%q,"description":"bench"}`, url), 201); err != nil {
		return nil, fmt.Errorf("register the endpoint (is SLIPWAY_WEBHOOK_KEY set, and SLIPWAY_WEBHOOK_ALLOW_PRIVATE=true?): %w", err)
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	var model int64
	if err := pool.QueryRow(ctx, `SELECT id FROM models WHERE name = 'hooks'`).Scan(&model); err != nil {
		return nil, err
	}
	emit := func(i int) (string, time.Time, error) {
		var id string
		err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
			var err error
			id, err = events.Emit(ctx, tx, model, events.StageMoved, map[string]any{"stage": "production", "version": i})
			return err
		})
		return id, time.Now(), err
	}

	// throughput: n events committed from 4 connections, delivered by the
	// server's workers
	before := recv.count()
	start = time.Now()
	next = make(chan int)
	errc := make(chan error, 4)
	for range 4 {
		go func() {
			var first error
			for i := range next {
				if _, _, err := emit(i); err != nil && first == nil {
					first = err
				}
			}
			errc <- first
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	for range 4 {
		if err := <-errc; err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(5 * time.Minute)
	for recv.count()-before < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	through := time.Since(start)
	if got := recv.count() - before; got < n {
		return nil, fmt.Errorf("%d of %d events delivered in 5 minutes", got, n)
	}

	// latency: one event at a time, from its commit to its arrival
	var lat []time.Duration
	for i := range 200 {
		id, committed, err := emit(n + i)
		if err != nil {
			return nil, err
		}
		for {
			recv.mu.Lock()
			at, ok := recv.byEvent[id]
			recv.mu.Unlock()
			if ok {
				lat = append(lat, at.Sub(committed))
				break
			}
			select {
			case <-recv.signal:
			case <-time.After(10 * time.Second):
				return nil, fmt.Errorf("event %s not delivered within 10 s", id)
			}
		}
	}
	recv.mu.Lock()
	dups := recv.dups
	recv.mu.Unlock()
	progress("webhooks: %d events delivered in %v (direct %v), %d duplicates", n, through.Round(time.Millisecond), direct.Round(time.Millisecond), dups)
	return []string{
		fmt.Sprintf("| webhooks: %d events committed, delivered by 4 workers to a local receiver | the receiver fed directly by 4 clients %.0f msg/s | %.0f events/s; %d delivered twice | %.2f of direct | ≥ 500 events/s |",
			n, float64(n)/direct.Seconds(), float64(n)/through.Seconds(), dups, direct.Seconds()/through.Seconds()),
		fmt.Sprintf("| webhooks: commit to delivery, one event at a time, 200 events | | p50 %v, p99 %v | | p50 < 100 ms |", pct(lat, 50), pct(lat, 99)),
	}, nil
}
