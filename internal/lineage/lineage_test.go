package lineage_test

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/lineage"
	"github.com/slipway-ml/slipway/internal/registry"
	"github.com/slipway-ml/slipway/internal/testenv"
)

type env struct {
	ctx context.Context
	reg *registry.Service
	lin *lineage.Service
	db  *testenv.DB
}

func newEnv(t *testing.T) env {
	db := testenv.NewDB(t)
	store, err := blob.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return env{ctx: context.Background(), reg: registry.NewService(db.Pool, store), lin: lineage.NewService(db.Pool, store), db: db}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func ptr[T any](v T) *T { return &v }

// pipeline builds the acceptance story: train by warehouse_query, test by
// object, a run consuming both and producing model version 1.
func pipeline(t *testing.T, e env) (run lineage.Run) {
	t.Helper()
	for _, name := range []string{"sessions-train", "sessions-test"} {
		must[lineage.Dataset](t)(e.lin.CreateDataset(e.ctx, lineage.NewDataset{Name: name}))
	}
	asOf := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	must[lineage.DatasetVersion](t)(e.lin.CreateDatasetVersion(e.ctx, "sessions-train", lineage.NewDatasetVersion{
		Type: lineage.TypeWarehouseQuery, Reference: lineage.Reference{Warehouse: "snowflake://acme", SQL: "select * from sessions", AsOf: &asOf},
		Schema: []lineage.Column{{Name: "session_id", Type: "VARCHAR"}}, RowCount: ptr[int64](1000)}))
	must[lineage.DatasetVersion](t)(e.lin.CreateDatasetVersion(e.ctx, "sessions-test", lineage.NewDatasetVersion{
		Type: lineage.TypeObject, Reference: lineage.Reference{URI: "s3://data/test.parquet"}, SHA256: strings.Repeat("ab", 32)}))
	must[registry.Model](t)(e.reg.CreateModel(e.ctx, registry.NewModel{Name: "ranker"}))
	up := must[*registry.Upload](t)(e.reg.BeginUpload(e.ctx, "ranker", registry.NewVersion{Source: registry.Source{GitCommit: "abcdef1"}}))
	must[registry.Artifact](t)(up.Add(e.ctx, "model.bin", "", strings.NewReader("weights")))
	must[registry.Version](t)(up.Commit(e.ctx))
	run, created, err := e.lin.ReportRun(e.ctx, lineage.NewRun{Orchestrator: "metaflow", ExternalID: "Flow/1", Name: "Flow", Status: "completed",
		Git: lineage.Git{Repo: "git@example.com:acme/rec.git", Commit: "0123456789abcdef"}, Image: "registry/rec@sha256:" + strings.Repeat("c", 64),
		Inputs:  []lineage.IORef{{Dataset: "sessions-train", Version: 1}, {Dataset: "sessions-test", Version: 1}},
		Outputs: []lineage.IORef{{Model: "ranker", Version: 1}}})
	if err != nil || !created {
		t.Fatalf("report run: created %v, %v", created, err)
	}
	must[lineage.QualityResult](t)(e.lin.AddQualityResult(e.ctx, "sessions-train", 1, lineage.NewQualityResult{Suite: "sessions.critical",
		Producer: "great_expectations", Passed: ptr(false), FailedChecks: []lineage.FailedCheck{{Name: "expect_column_values_to_not_be_null", Column: "session_id"}},
		Raw: []byte(`{"success": false}`)}))
	return run
}

func TestPipelineStory(t *testing.T) {
	e := newEnv(t)
	run := pipeline(t, e)

	p := must[lineage.Provenance](t)(e.lin.Provenance(e.ctx, "ranker", 1))
	if p.ModelVersion.Model != "ranker" || len(p.Runs) != 1 || p.Runs[0].ID != run.ID || len(p.DatasetVersions) != 2 {
		t.Fatalf("provenance: %+v", p)
	}
	if !p.QualityFailed {
		t.Error("the failing quality result upstream is not flagged")
	}
	var train lineage.ProvenanceDataset
	for _, d := range p.DatasetVersions {
		if d.Dataset == "sessions-train" {
			train = d
		}
	}
	if train.Reference.SQLSHA256 == "" || len(train.QualityResults) != 1 || train.QualityResults[0].Passed || train.Quality.Status != lineage.QualityFailed {
		t.Errorf("train in provenance: %+v", train)
	}
	if len(p.Commits) != 2 || len(p.Images) != 1 || len(p.Edges) != 3 {
		t.Errorf("commits %v images %v edges %v", p.Commits, p.Images, p.Edges)
	}

	im := must[lineage.Impact](t)(e.lin.Impact(e.ctx, "sessions-train", 1))
	if len(im.ModelVersions) != 1 || im.ModelVersions[0].Model != "ranker" || im.ModelVersions[0].Depth != 2 || im.Runs != 1 {
		t.Errorf("impact: %+v", im)
	}

	g := must[lineage.Graph](t)(e.lin.Lineage(e.ctx, lineage.GraphQuery{Root: lineage.NodeRef{Kind: lineage.KindModelVersion, Name: "ranker", Version: 1},
		Direction: lineage.Both, Depth: 5, MaxNodes: 100}))
	if len(g.Nodes) != 4 || len(g.Edges) != 3 || g.Truncated || g.Root != "model_version:ranker/1" {
		t.Errorf("graph: %+v", g)
	}
	g = must[lineage.Graph](t)(e.lin.Lineage(e.ctx, lineage.GraphQuery{Root: lineage.NodeRef{Kind: lineage.KindModelVersion, Name: "ranker", Version: 1},
		Direction: lineage.Upstream, Depth: 5, MaxNodes: 2}))
	if len(g.Nodes) != 2 || !g.Truncated {
		t.Errorf("capped graph: %d nodes, truncated %v", len(g.Nodes), g.Truncated)
	}

	// The same report again changes nothing.
	again, created, err := e.lin.ReportRun(e.ctx, lineage.NewRun{Orchestrator: "metaflow", ExternalID: "Flow/1", Status: "completed",
		Inputs: []lineage.IORef{{Dataset: "sessions-train", Version: 1}}})
	if err != nil || created || again.ID != run.ID || len(again.Inputs) != 2 || again.Name != "Flow" {
		t.Errorf("report again: %+v created %v err %v", again, created, err)
	}
	// A finished run does not start again.
	_, _, err = e.lin.ReportRun(e.ctx, lineage.NewRun{Orchestrator: "metaflow", ExternalID: "Flow/1", Status: "running"})
	if !errors.Is(err, errs.ErrConflict) {
		t.Errorf("finished run back to running: %v", err)
	}
}

func TestCycleEnds(t *testing.T) {
	e := newEnv(t)
	must[lineage.Dataset](t)(e.lin.CreateDataset(e.ctx, lineage.NewDataset{Name: "d"}))
	for i := 0; i < 2; i++ {
		must[lineage.DatasetVersion](t)(e.lin.CreateDatasetVersion(e.ctx, "d", lineage.NewDatasetVersion{
			Type: lineage.TypeObject, Reference: lineage.Reference{URI: "s3://x"}, SHA256: strings.Repeat("0", 64)}))
	}
	// r1: d1 -> d2, r2: d2 -> d1: a cycle through two runs.
	for i, io := range [][2]int{{1, 2}, {2, 1}} {
		must[lineage.Run](t)(func() (lineage.Run, error) {
			r, _, err := e.lin.ReportRun(e.ctx, lineage.NewRun{Orchestrator: "x", ExternalID: string(rune('a' + i)), Status: "completed",
				Inputs: []lineage.IORef{{Dataset: "d", Version: io[0]}}, Outputs: []lineage.IORef{{Dataset: "d", Version: io[1]}}})
			return r, err
		}())
	}
	g := must[lineage.Graph](t)(e.lin.Lineage(e.ctx, lineage.GraphQuery{Root: lineage.NodeRef{Kind: lineage.KindDatasetVersion, Name: "d", Version: 1},
		Direction: lineage.Both, Depth: lineage.MaxDepth, MaxNodes: 100}))
	if len(g.Nodes) != 4 || len(g.Edges) != 4 {
		t.Errorf("cycle: %d nodes %d edges", len(g.Nodes), len(g.Edges))
	}
}

func TestOpenLineageSample(t *testing.T) {
	e := newEnv(t)
	body, err := os.ReadFile("openlineage/testdata/openlineage-run-complete.json")
	if err != nil {
		t.Fatal(err)
	}
	first := must[lineage.Ingested](t)(e.lin.IngestOpenLineage(e.ctx, body))
	if !first.Created || !first.Changed || first.Status != "completed" || len(first.Inputs) != 1 || len(first.Outputs) != 1 {
		t.Fatalf("first: %+v", first)
	}
	again := must[lineage.Ingested](t)(e.lin.IngestOpenLineage(e.ctx, body))
	if again.Created || again.Changed || again.RunID != first.RunID {
		t.Fatalf("again: %+v", again)
	}
	run := must[lineage.Run](t)(e.lin.GetRun(e.ctx, first.RunID))
	if run.Parent == nil || run.Parent.ExternalID != "0176a8c2-fd00-7000-8000-000000000001" || run.Name != "analytics.session_events_train" {
		t.Errorf("run: %+v", run)
	}
	out := must[lineage.DatasetVersion](t)(e.lin.GetDatasetVersion(e.ctx, run.Outputs[0].Dataset, run.Outputs[0].Version))
	if out.Dataset != "analytics.ml.session_events_train" || out.RowCount == nil || *out.RowCount != 1843221 || len(out.Schema) != 2 {
		t.Errorf("output: %+v", out)
	}
}

func TestDiff(t *testing.T) {
	rows := func(n int64) *int64 { return &n }
	a := lineage.DatasetVersion{Schema: []lineage.Column{{Name: "id", Type: "int"}, {Name: "price", Type: "float"}, {Name: "gone", Type: "text"}},
		RowCount: rows(100), Statistics: lineage.Statistics{"price": {"mean": 10.0, "max": 99.0, "unit": "EUR"}}}
	b := lineage.DatasetVersion{Schema: []lineage.Column{{Name: "id", Type: "bigint"}, {Name: "price", Type: "float"}, {Name: "new", Type: "text"}},
		RowCount: rows(150), Statistics: lineage.Statistics{"price": {"mean": 12.5, "max": 99.0}, "new": {"null_count": 3.0}}}
	d := lineage.Diff(a, b)
	if len(d.ColumnsAdded) != 1 || d.ColumnsAdded[0].Name != "new" || len(d.ColumnsRemoved) != 1 || d.ColumnsRemoved[0].Name != "gone" {
		t.Errorf("columns: +%v -%v", d.ColumnsAdded, d.ColumnsRemoved)
	}
	if len(d.ColumnsRetyped) != 1 || d.ColumnsRetyped[0] != (lineage.Retyped{Name: "id", From: "int", To: "bigint"}) {
		t.Errorf("retyped: %v", d.ColumnsRetyped)
	}
	if *d.RowCount.Delta != 50 || *d.RowCount.Ratio != 0.5 {
		t.Errorf("rows: %+v", d.RowCount)
	}
	// new.null_count (one side), price.mean (changed), price.unit (gone); price.max is unchanged
	if len(d.Statistics) != 3 || d.Statistics[1].Stat != "mean" || *d.Statistics[1].Delta != 2.5 || *d.Statistics[1].Ratio != 0.25 {
		t.Errorf("stats: %+v", d.Statistics)
	}
}

func TestReapOrphanDatasetFiles(t *testing.T) {
	db := testenv.NewDB(t)
	store, err := blob.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lin := lineage.NewService(db.Pool, store)
	ctx := context.Background()
	must[lineage.Dataset](t)(lin.CreateDataset(ctx, lineage.NewDataset{Name: "d"}))
	v := must[lineage.DatasetVersion](t)(lin.UploadDatasetVersion(ctx, "d", lineage.NewDatasetVersion{}, "d.csv", "text/csv", strings.NewReader("a,b\n1,2\n"), nil))
	if v.Size == nil || *v.Size != 8 || v.Type != lineage.TypeUpload {
		t.Fatalf("upload: %+v", v)
	}
	// what a crash between the upload and the commit leaves
	if _, err := store.Put(ctx, "datasets/1/0123456789abcdef0123456789abcdef/data", strings.NewReader("orphan"), blob.PutOptions{Size: 6}); err != nil {
		t.Fatal(err)
	}
	if st, err := lin.ReapOrphans(ctx, time.Hour); err != nil || st.Deleted != 0 {
		t.Fatalf("within the grace: deleted %d, %v", st.Deleted, err)
	}
	st, err := lin.ReapOrphans(ctx, -time.Second)
	if err != nil || st.Scanned != 2 || st.Deleted != 1 {
		t.Fatalf("after the grace: scanned %d deleted %d, %v", st.Scanned, st.Deleted, err)
	}
	rc := must[io.ReadCloser](t)(lin.OpenDatasetFile(ctx, v, nil))
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "a,b\n1,2\n" {
		t.Errorf("the recorded file is gone or damaged: %q", b)
	}
}
