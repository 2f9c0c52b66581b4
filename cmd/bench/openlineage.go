package main

// The OpenLineage benchmark: RunEvents POSTed at concurrency 8 vs a plain
// jsonb INSERT per event, then a replay of some of them that must add no
// rows.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

type olOptions struct {
	events, replay int
}

var olConcurrency = 8

// genOLEvents makes n distinct RunEvents: START and COMPLETE of n/2 runs
// of 300 jobs (Airflow tasks of 20 DAGs, each run with its DAG run as
// parent) over 500 datasets (100 raw ones in S3, 400 warehouse tables,
// each written by one job), with schemas of 8 to 12 fields; a job reads 1
// to 3 datasets, raw ones or tables of the jobs just before it. Events are
// in the order of their eventTime, runs overlapping.
func genOLEvents(n int) [][]byte {
	rng := mrand.New(mrand.NewPCG(5, 6))
	const (
		nJobs, nDAGs, nRaw, nTables = 300, 20, 100, 400
		producer                    = "https://github.com/OpenLineage/OpenLineage/tree/1.24.0/integration/airflow"
	)
	uuid := func() string {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
		return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	}
	facet := func(schema string, fields map[string]any) map[string]any {
		fields["_producer"] = producer
		fields["_schemaURL"] = "https://openlineage.io/spec/facets/" + schema
		return fields
	}
	type dataset struct {
		namespace, name string
		schema          []map[string]string
	}
	types := []string{"BIGINT", "VARCHAR", "TIMESTAMP", "DOUBLE", "BOOLEAN", "DATE", "DECIMAL(18,2)", "ARRAY<VARCHAR>"}
	datasets := make([]dataset, nRaw+nTables)
	for i := range datasets {
		d := &datasets[i]
		if i < nRaw {
			d.namespace, d.name = "s3://bench-raw", fmt.Sprintf("events/source_%03d", i)
		} else {
			d.namespace, d.name = "postgres://warehouse.bench:5432", fmt.Sprintf("analytics.public.table_%03d", i-nRaw)
		}
		d.schema = []map[string]string{{"name": "id", "type": "BIGINT"}, {"name": "updated_at", "type": "TIMESTAMP"}}
		for k := range 6 + rng.IntN(5) {
			d.schema = append(d.schema, map[string]string{"name": fmt.Sprintf("attr_%02d", k), "type": types[rng.IntN(len(types))],
				"description": fmt.Sprintf("attribute %d of %s", k, d.name)})
		}
	}
	type job struct {
		name, dag   string
		inputs, out []int
	}
	jobs := make([]job, nJobs)
	for t := range nTables {
		j := t % nJobs
		jobs[j].out = append(jobs[j].out, nRaw+t)
	}
	for j := range jobs {
		jobs[j].dag = fmt.Sprintf("etl_dag_%02d", j%nDAGs)
		jobs[j].name = fmt.Sprintf("%s.task_%03d", jobs[j].dag, j)
		for range 1 + rng.IntN(3) {
			var d int
			if j < 10 || rng.IntN(3) == 0 {
				d = rng.IntN(nRaw)
			} else {
				up := j - 1 - rng.IntN(min(j, 30)) // a job just before
				d = jobs[up].out[rng.IntN(len(jobs[up].out))]
			}
			if !contains(jobs[j].inputs, d) {
				jobs[j].inputs = append(jobs[j].inputs, d)
			}
		}
	}
	ds := func(d int, complete, output bool) map[string]any {
		m := map[string]any{"namespace": datasets[d].namespace, "name": datasets[d].name,
			"facets": map[string]any{"schema": facet("1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
				map[string]any{"fields": datasets[d].schema})}}
		if output && complete {
			m["outputFacets"] = map[string]any{"outputStatistics": facet("1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet",
				map[string]any{"rowCount": 1000 + rng.IntN(10_000_000), "size": 1 << 20})}
		}
		return m
	}

	type event struct {
		at   time.Time
		body []byte
	}
	var evs []event
	day0 := time.Date(2026, 11, 1, 1, 0, 0, 0, time.UTC)
	parents := map[string]string{}
	for i := range max(1, n/2) {
		j, day := i%nJobs, i/nJobs
		jb := jobs[j]
		key := fmt.Sprintf("%s/%d", jb.dag, day)
		if parents[key] == "" {
			parents[key] = uuid()
		}
		nominal := day0.Add(time.Duration(day) * 24 * time.Hour)
		start := nominal.Add(time.Duration(j)*20*time.Second + time.Duration(rng.IntN(1000))*time.Millisecond)
		end := start.Add(time.Duration(30+rng.IntN(1200)) * time.Second)
		runID := uuid()
		runFacets := map[string]any{
			"parent": facet("1-0-1/ParentRunFacet.json#/$defs/ParentRunFacet", map[string]any{
				"run": map[string]any{"runId": parents[key]}, "job": map[string]any{"namespace": "airflow://bench", "name": jb.dag}}),
			"nominalTime": facet("1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet", map[string]any{
				"nominalStartTime": nominal.Format(time.RFC3339)}),
		}
		jobFacets := map[string]any{"jobType": facet("2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet", map[string]any{
			"processingType": "BATCH", "integration": "AIRFLOW", "jobType": "TASK"})}
		for _, complete := range []bool{false, true} {
			typ, at := "START", start
			if complete {
				typ, at = "COMPLETE", end
			}
			var ins, outs []any
			for _, d := range jb.inputs {
				ins = append(ins, ds(d, complete, false))
			}
			for _, d := range jb.out {
				outs = append(outs, ds(d, complete, true))
			}
			body, err := json.Marshal(map[string]any{
				"eventType": typ, "eventTime": at.Format("2006-01-02T15:04:05.000Z07:00"), "producer": producer,
				"schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
				"run":       map[string]any{"runId": runID, "facets": runFacets},
				"job":       map[string]any{"namespace": "airflow://bench", "name": jb.name, "facets": jobFacets},
				"inputs":    ins, "outputs": outs,
			})
			if err != nil {
				panic(err)
			}
			evs = append(evs, event{at, body})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
	out := make([][]byte, len(evs))
	for i, e := range evs {
		out[i] = e.body
	}
	return out
}

// olResult is what POSTing a set of events measured.
type olResult struct {
	took     time.Duration
	lat      []time.Duration
	status   map[int]int
	changed  int
	firstErr string
	accepted []bool // per event: answered 200 or 201
}

// postEvents POSTs events from olConcurrency workers, in order.
func postEvents(c *client, events [][]byte) olResult {
	r := olResult{status: map[int]int{}, accepted: make([]bool, len(events))}
	var mu sync.Mutex
	next := make(chan int)
	tr := &http.Transport{MaxIdleConnsPerHost: olConcurrency}
	defer tr.CloseIdleConnections()
	var wg sync.WaitGroup
	start := time.Now()
	for range olConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &client{base: c.base, token: c.token, http: http.Client{Transport: tr}}
			for i := range next {
				t := time.Now()
				res, err := cl.do("POST", "/api/v1/openlineage", bytes.NewReader(events[i]), "application/json")
				if err != nil {
					mu.Lock()
					r.status[0]++
					if r.firstErr == "" {
						r.firstErr = err.Error()
					}
					mu.Unlock()
					continue
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				d := time.Since(t)
				var out struct {
					Changed bool `json:"changed"`
				}
				json.Unmarshal(b, &out)
				mu.Lock()
				r.status[res.StatusCode]++
				if res.StatusCode == 200 || res.StatusCode == 201 {
					r.accepted[i] = true
					r.lat = append(r.lat, d)
					if out.Changed {
						r.changed++
					}
				} else if r.firstErr == "" {
					r.firstErr = fmt.Sprintf("%d %s", res.StatusCode, strings.TrimSpace(string(b)))
				}
				mu.Unlock()
			}
		}()
	}
	for i := range events {
		next <- i
	}
	close(next)
	wg.Wait()
	r.took = time.Since(start)
	return r
}

func (r olResult) ok() int { return r.status[200] + r.status[201] }

// insertBaseline inserts each event into a temporary jsonb table, one
// transaction per event, from olConcurrency connections.
func insertBaseline(ctx context.Context, dbURL string, events [][]byte) (time.Duration, error) {
	conns := make([]*pgx.Conn, olConcurrency)
	for i := range conns {
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			return 0, err
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `CREATE TEMP TABLE ol_events (body jsonb NOT NULL)`); err != nil {
			return 0, err
		}
		conns[i] = conn
	}
	next := make(chan []byte)
	errc := make(chan error, olConcurrency)
	start := time.Now()
	for _, conn := range conns {
		go func() {
			var first error
			for body := range next {
				if first != nil {
					continue
				}
				first = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
					_, err := tx.Exec(ctx, `INSERT INTO ol_events (body) VALUES ($1)`, json.RawMessage(body))
					return err
				})
			}
			errc <- first
		}()
	}
	for _, e := range events {
		next <- e
	}
	close(next)
	var err error
	for range conns {
		if e := <-errc; e != nil && err == nil {
			err = e
		}
	}
	return time.Since(start), err
}

type olCounts struct{ runs, datasets, versions, edges int64 }

func countOL(ctx context.Context, conn *pgx.Conn) (olCounts, error) {
	var c olCounts
	err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM datasets),
		(SELECT count(*) FROM dataset_versions), (SELECT count(*) FROM lineage_edges)`).Scan(&c.runs, &c.datasets, &c.versions, &c.edges)
	return c, err
}

func benchOpenLineage(ctx context.Context, c *client, dbURL string, pid int, o olOptions) ([]string, error) {
	events := genOLEvents(o.events)
	var size int
	for _, e := range events {
		size += len(e)
	}
	progress("openlineage: %d events (%d runs), %.1f KiB mean", len(events), len(events)/2, float64(size)/float64(len(events))/1024)

	base, err := insertBaseline(ctx, dbURL, events)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	before, err := countOL(ctx, conn)
	if err != nil {
		return nil, err
	}
	cpu := sampleCPU(pid)
	first := postEvents(c, events)
	progress("openlineage: %d events POSTed in %s", len(events), cpu.since(pid))
	if first.ok() != len(events) {
		progress("openlineage: %d of %d events refused (status %v); first: %s", len(events)-first.ok(), len(events), first.status, first.firstErr)
	}
	after1, err := countOL(ctx, conn)
	if err != nil {
		return nil, err
	}
	progress("openlineage: first pass added %d runs, %d datasets, %d dataset versions, %d edges (status %v)",
		after1.runs-before.runs, after1.datasets-before.datasets, after1.versions-before.versions, after1.edges-before.edges, first.status)

	// replay: a random sample of the events accepted, in random order
	rng := mrand.New(mrand.NewPCG(8, 9))
	var sample [][]byte
	for _, k := range rng.Perm(len(events)) {
		if first.accepted[k] && len(sample) < o.replay {
			sample = append(sample, events[k])
		}
	}
	second := postEvents(c, sample)
	after2, err := countOL(ctx, conn)
	if err != nil {
		return nil, err
	}
	same := after2 == after1
	verdict := "no new rows"
	if !same {
		verdict = "NEW ROWS"
	}
	if second.ok() != len(sample) {
		progress("openlineage replay: %d of %d events refused (status %v); first: %s", len(sample)-second.ok(), len(sample), second.status, second.firstErr)
	}

	rate := float64(first.ok()) / first.took.Seconds()
	baseRate := float64(len(events)) / base.Seconds()
	rows := []string{
		fmt.Sprintf("| OpenLineage ingest, %d events (%d runs), concurrency %d | jsonb INSERT per event %.0f events/s | %.0f events/s, p50 %v, p99 %v; %d refused | %.2f of INSERT | ≥ 1,000 events/s |",
			len(events), len(events)/2, olConcurrency, baseRate, rate, pct(first.lat, 50), pct(first.lat, 99), len(events)-first.ok(), rate/baseRate),
		fmt.Sprintf("| OpenLineage replay of %d of the events accepted | | %s: runs %+d, datasets %+d, dataset versions %+d, edges %+d; %d of %d answered 200, %d changed=true, %d refused | | no new rows |",
			len(sample), verdict, after2.runs-after1.runs, after2.datasets-after1.datasets, after2.versions-after1.versions, after2.edges-after1.edges,
			second.status[200], len(sample), second.changed, len(sample)-second.ok()),
	}
	return rows, nil
}
