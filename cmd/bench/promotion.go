package main

// The promotion benchmark: requests decided against reports of 1,000
// metrics under a policy of 10 rules, one at a time and from 16 clients,
// against a plain read of the stage.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

const promoMetrics = 1000

// slipwayReport is a report in Slipway's format with promoMetrics metrics
// and two behavioural tests.
func slipwayReport(shift float64) string {
	m := make(map[string]float64, promoMetrics)
	for i := range promoMetrics {
		m[fmt.Sprintf("metric_%03d", i)] = float64(i)/promoMetrics + shift
	}
	b, _ := json.Marshal(map[string]any{"metrics": m, "tests": []map[string]any{{"name": "no_empty", "passed": true}, {"name": "invariance", "passed": true}}})
	return string(b)
}

func (c *client) must(method, path, ct string, body string, want int) ([]byte, error) {
	res, err := c.do(method, path, strings.NewReader(body), ct)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	return b, nil
}

func benchPromotion(c *client, d time.Duration) ([]string, error) {
	steps := []struct {
		method, path, ct, body string
		want                   int
	}{
		{"POST", "/api/v1/models", "application/json", `{"name":"promo"}`, 201},
	}
	for _, s := range steps {
		if _, err := c.must(s.method, s.path, s.ct, s.body, s.want); err != nil {
			return nil, err
		}
	}
	for v := 1; v <= 2; v++ {
		if err := c.upload("/api/v1/models/promo/versions", 1024, newGen(byte(v))); err != nil {
			return nil, fmt.Errorf("register: %w", err)
		}
		if _, err := c.must("POST", fmt.Sprintf("/api/v1/models/promo/versions/%d/evaluations?suite=offline", v), "application/json",
			slipwayReport(float64(v)/100), 201); err != nil {
			return nil, err
		}
	}
	policy := `{"comment":"bench","rules":[
		{"kind":"required_suite","suite":"offline"},
		{"kind":"threshold","suite":"offline","metric":"metric_010","op":">=","value":0.001},
		{"kind":"threshold","suite":"offline","metric":"metric_500","op":"between","min":0,"max":1},
		{"kind":"threshold","suite":"offline","metric":"metric_900","op":"<","value":10},
		{"kind":"champion","suite":"offline","metric":"metric_020","direction":"higher_is_better","tolerance":0.02,"tolerance_type":"relative"},
		{"kind":"champion","suite":"offline","metric":"metric_300","direction":"higher_is_better","tolerance":0.001},
		{"kind":"champion","suite":"offline","metric":"metric_700","direction":"lower_is_better","tolerance":0.5},
		{"kind":"tests_passed","suite":"offline"},
		{"kind":"cel","expression":"candidate.metrics[\"metric_999\"] >= champion.metrics[\"metric_999\"]"},
		{"kind":"approvals","count":1}]}`
	if _, err := c.must("PUT", "/api/v1/models/promo/stages/production/policy", "application/json", policy, 200); err != nil {
		return nil, err
	}
	// v1 holds production: every request compares with it
	if _, err := c.must("POST", "/api/v1/models/promo/versions/1/promotions", "application/json",
		`{"stage":"production","reason":"bench champion","override":true}`, 201); err != nil {
		return nil, err
	}
	request := func(cl *client) (time.Duration, error) {
		t := time.Now()
		b, err := cl.must("POST", "/api/v1/models/promo/versions/2/promotions", "application/json", `{"stage":"production","reason":"bench"}`, 201)
		if err != nil {
			return 0, err
		}
		if !bytes.Contains(b, []byte(`"decision":"pending_approval"`)) {
			return 0, fmt.Errorf("unexpected decision: %.300s", b)
		}
		return time.Since(t), nil
	}
	// one at a time: the evaluation's cost, with the request around it
	var seq []time.Duration
	for range 200 {
		lat, err := request(c)
		if err != nil {
			return nil, err
		}
		seq = append(seq, lat)
	}
	read := c.median("/api/v1/models/promo/stages", 200)

	// 16 clients on one stage: the stage's lock orders them
	var mu sync.Mutex
	var all []time.Duration
	var firstErr error
	deadline := time.Now().Add(d)
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	defer tr.CloseIdleConnections()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &client{base: c.base, token: c.token, http: http.Client{Transport: tr}}
			var mine []time.Duration
			for time.Now().Before(deadline) {
				lat, err := request(cl)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				mine = append(mine, lat)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	progress("promotion: %d sequential requests, %d at concurrency 16 in %v", len(seq), len(all), d)
	p50 := pct(seq, 50)
	return []string{
		fmt.Sprintf("| promotion request, policy of 10 rules, reports of %d metrics (candidate and champion), one at a time | GET stages p50 %v | p50 %v, p99 %v | %.1f× the read | evaluation < 10 ms |",
			promoMetrics, read, p50, pct(seq, 99), float64(p50)/float64(read)),
		fmt.Sprintf("| the same, 16 clients on one stage, %v | | %.0f req/s, p50 %v, p99 %v | | |",
			d, float64(len(all))/d.Seconds(), pct(all, 50), pct(all, 99)),
	}, nil
}
