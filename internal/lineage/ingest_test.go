package lineage_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/slipway-ml/slipway/internal/lineage"
)

// Events that race for the same runs, parent and datasets (each sent twice,
// in a shuffled order, from several goroutines) must all be accepted and
// leave exactly what one ordered pass leaves: one run per runId, one
// parent, one version per dataset a run wrote, and no edge twice.
func TestOpenLineageConcurrentEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const runs = 6
	parent := "0176a8c2-fe01-7439-87e6-000000000000"
	runID := func(i int) string { return fmt.Sprintf("0176a8c2-fe01-7439-87e6-%012d", i+1) }
	ds := func(ns, name string) map[string]any {
		return map[string]any{"namespace": ns, "name": name,
			"facets": map[string]any{"schema": map[string]any{"fields": []any{map[string]any{"name": "id", "type": "BIGINT"}}}}}
	}
	var events [][]byte
	at := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	for i := range runs {
		for _, typ := range []string{"START", "COMPLETE"} {
			ev := map[string]any{
				"eventType": typ, "eventTime": at.Add(time.Duration(i) * time.Minute).Format(time.RFC3339Nano),
				"producer": "https://example.com/producer", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
				"run": map[string]any{"runId": runID(i), "facets": map[string]any{"parent": map[string]any{
					"run": map[string]any{"runId": parent}, "job": map[string]any{"namespace": "airflow://t", "name": "dag"}}}},
				"job": map[string]any{"namespace": "airflow://t", "name": fmt.Sprintf("dag.task_%d", i)},
				// every run reads the same two sources, and writes a table of
				// its own and one all runs share
				"inputs":  []any{ds("s3://raw", "events"), ds("s3://raw", "users")},
				"outputs": []any{ds("postgres://wh", fmt.Sprintf("public.t%d", i)), ds("postgres://wh", "public.shared")},
			}
			if typ == "COMPLETE" {
				ev["eventTime"] = at.Add(time.Duration(i)*time.Minute + 30*time.Second).Format(time.RFC3339Nano)
			}
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			events = append(events, b, b)
		}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })

	var wg sync.WaitGroup
	next := make(chan []byte)
	errc := make(chan error, len(events))
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range next {
				if _, err := e.lin.IngestOpenLineage(e.ctx, b); err != nil {
					errc <- err
				}
			}
		}()
	}
	for _, b := range events {
		next <- b
	}
	close(next)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Errorf("IngestOpenLineage: %v", err)
	}

	count := func(sql string) int {
		t.Helper()
		var n int
		if err := e.db.Pool.QueryRow(e.ctx, sql).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(`SELECT count(*) FROM runs WHERE orchestrator = '` + lineage.OrchestratorOpenLineage + `'`); n != runs+1 {
		t.Errorf("%d runs, want %d and their parent", n, runs)
	}
	if n := count(`SELECT count(*) FROM runs WHERE status = 'completed' AND parent_id = (SELECT id FROM runs WHERE external_id = '` + parent + `')`); n != runs {
		t.Errorf("%d completed runs under the parent, want %d", n, runs)
	}
	if n := count(`SELECT count(*) FROM datasets`); n != 2+runs+1 {
		t.Errorf("%d datasets, want %d", n, 2+runs+1)
	}
	// each run wrote its table and the shared one once; the sources have
	// one version, observed by whichever event came first
	if n := count(`SELECT count(*) FROM dataset_versions WHERE produced_by IS NOT NULL`); n != 2*runs {
		t.Errorf("%d output versions, want %d", n, 2*runs)
	}
	if n := count(`SELECT count(*) FROM dataset_versions WHERE produced_by IS NULL`); n != 2 {
		t.Errorf("%d source versions, want 2", n)
	}
	if n := count(`SELECT count(*) FROM lineage_edges`); n != 4*runs {
		t.Errorf("%d edges, want %d (two inputs and two outputs per run)", n, 4*runs)
	}
	if n := count(`SELECT count(*) FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id WHERE d.ol_name = 'public.shared'`); n != runs {
		t.Errorf("the shared table has %d versions, want one per run (%d)", n, runs)
	}
	// versions are numbered without gaps
	if n := count(`SELECT count(*) FROM datasets d WHERE d.next_version - 1 <> (SELECT count(*) FROM dataset_versions v WHERE v.dataset_id = d.id)`); n != 0 {
		t.Errorf("%d datasets with gaps in their version numbers", n)
	}
	// every event that changed something wrote one audit row; repeats none
	if n := count(`SELECT count(*) FROM audit_log WHERE action = 'openlineage.event'`); n != 2*runs {
		t.Errorf("%d openlineage.event audit rows, want %d (START and COMPLETE of each run)", n, 2*runs)
	}
}
