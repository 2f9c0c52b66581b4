package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway-ml/slipway/internal/api/apitest"
	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/lineage"
	"github.com/slipway-ml/slipway/internal/registry"
)

// apiErr is the error body of the API.
type apiErr struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details []struct {
			Field string `json:"field"`
			Rule  string `json:"rule"`
		} `json:"details"`
	} `json:"error"`
}

// wantErr checks an error answer: its status, a detail naming field (when
// field is not empty) and text (when not empty) in the message or a rule.
func wantErr(t *testing.T, what string, res *apitest.Response, status int, field, text string) {
	t.Helper()
	if res.Status != status {
		t.Errorf("%s: %d %s, want %d", what, res.Status, res.Body, status)
		return
	}
	var e apiErr
	if err := json.Unmarshal(res.Body, &e); err != nil || e.Error.Code == "" {
		t.Errorf("%s: not an error body: %s", what, res.Body)
		return
	}
	found := field == ""
	hay := e.Error.Message
	for _, d := range e.Error.Details {
		hay += "\n" + d.Rule
		if d.Field == field {
			found = true
		}
	}
	if !found {
		t.Errorf("%s: no detail names %q: %s", what, field, res.Body)
	}
	if text != "" && !strings.Contains(hay, text) {
		t.Errorf("%s: the error does not say %q: %s", what, text, res.Body)
	}
}

func wantStatus(t *testing.T, what string, res *apitest.Response, status int) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("%s: %d %s, want %d", what, res.Status, res.Body, status)
	}
}

func hexSHA(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func createDataset(t *testing.T, c *apitest.Client, name string) lineage.Dataset {
	t.Helper()
	res := c.Send("POST", "/api/v1/datasets", map[string]any{"name": name})
	wantStatus(t, "create dataset "+name, res, http.StatusCreated)
	var d lineage.Dataset
	res.Decode(t, &d)
	return d
}

// objectVersion registers a version of type object of dataset.
func objectVersion(t *testing.T, c *apitest.Client, dataset, uri, sum string) lineage.DatasetVersion {
	t.Helper()
	res := c.Send("POST", "/api/v1/datasets/"+dataset+"/versions", map[string]any{"type": "object",
		"reference": map[string]any{"uri": uri}, "sha256": sum})
	wantStatus(t, "object version of "+dataset, res, http.StatusCreated)
	var v lineage.DatasetVersion
	res.Decode(t, &v)
	return v
}

func get[T any](t *testing.T, c *apitest.Client, path string) T {
	t.Helper()
	res := c.Get(path)
	wantStatus(t, "GET "+path, res, http.StatusOK)
	var v T
	res.Decode(t, &v)
	return v
}

type listPage[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// auditCount counts the events of the audit log.
func auditCount(t *testing.T, e *env) int {
	t.Helper()
	n, cursor := 0, ""
	for {
		p := get[listPage[json.RawMessage]](t, e.as(auth.RoleAdmin), "/api/v1/audit?limit=200&cursor="+url.QueryEscape(cursor))
		n += len(p.Items)
		if p.NextCursor == "" {
			return n
		}
		cursor = p.NextCursor
	}
}

func ioRefs(refs []lineage.IORef) string {
	var s []string
	for _, r := range refs {
		s = append(s, r.Ref().String())
	}
	return strings.Join(s, ",")
}

func edgeList(edges []lineage.Edge) string {
	var s []string
	for _, e := range edges {
		s = append(s, e.From+"->"+e.To)
	}
	return strings.Join(s, " ")
}

const trainSQL = "SELECT session_id, sku, ts FROM ANALYTICS.ML.SESSIONS WHERE ts < :cutoff"

// TestLineagePipelineStory is the acceptance story through the API: two
// datasets registered by reference, a model version, the run between
// them, a failing data-quality result, and the three questions of lineage.
func TestLineagePipelineStory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	viewer := e.as(auth.RoleViewer)
	res := c.Send("POST", "/api/v1/datasets", map[string]any{"name": "sessions-train", "description": "Sessions before the cutoff",
		"owner": "search-team", "tags": map[string]string{"domain": "search"}})
	wantStatus(t, "create sessions-train", res, http.StatusCreated)
	if loc := res.Header.Get("Location"); loc != "/api/v1/datasets/sessions-train" {
		t.Errorf("Location = %q", loc)
	}
	var ds lineage.Dataset
	res.Decode(t, &ds)
	if ds.Name != "sessions-train" || ds.Owner != "search-team" || ds.VersionCount != 0 || ds.LatestVersion != nil || ds.OpenLineage != nil || ds.CreatedBy != "contributor-user" {
		t.Errorf("dataset: %+v", ds)
	}
	createDataset(t, c, "sessions-test")

	// train: a warehouse query
	res = c.Send("POST", "/api/v1/datasets/sessions-train/versions", map[string]any{"type": "warehouse_query",
		"reference": map[string]any{"warehouse": "snowflake://acme.eu-west-1", "sql": trainSQL,
			"as_of": "2026-11-01T00:00:00Z", "parameters": map[string]any{"cutoff": "2026-11-01"}},
		"schema":     []map[string]any{{"name": "session_id", "type": "VARCHAR"}, {"name": "sku", "type": "VARCHAR", "nullable": true}, {"name": "ts", "type": "TIMESTAMP_NTZ"}},
		"row_count":  1843221,
		"statistics": map[string]any{"sku": map[string]any{"distinct_count": 52011, "null_fraction": 0.002}},
		"split":      map[string]any{"role": "train", "strategy": "time", "boundaries": map[string]any{"to": "2026-11-01"}}})
	wantStatus(t, "train version", res, http.StatusCreated)
	if loc := res.Header.Get("Location"); loc != "/api/v1/datasets/sessions-train/versions/1" {
		t.Errorf("Location = %q", loc)
	}
	var train lineage.DatasetVersion
	res.Decode(t, &train)
	if train.Version != 1 || train.Type != "warehouse_query" || train.Reference.SQLSHA256 != hexSHA([]byte(trainSQL)) ||
		train.SHA256 != nil || train.Size != nil || train.RowCount == nil || *train.RowCount != 1843221 || len(train.Schema) != 3 ||
		train.Split.Role != "train" || train.Quality.Status != "none" || train.Reference.AsOf == nil || !train.Reference.AsOf.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("train version: %s", res.Body)
	}
	// test: an object elsewhere
	testSum := hexSHA([]byte("the test split"))
	test := objectVersion(t, c, "sessions-test", "s3://acme-ml/sessions/test.parquet", testSum)
	if test.Type != "object" || test.SHA256 == nil || *test.SHA256 != testSum || test.Reference.URI != "s3://acme-ml/sessions/test.parquet" {
		t.Errorf("test version: %+v", test)
	}
	if d := get[lineage.Dataset](t, viewer, "/api/v1/datasets/sessions-train"); d.VersionCount != 1 || d.LatestVersion == nil || *d.LatestVersion != 1 {
		t.Errorf("dataset after a version: %+v", d)
	}

	// the model version
	createModel(t, c, map[string]any{"name": "ranker"})
	const image = "ghcr.io/acme/train@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	wantStatus(t, "register ranker v1", register(c, "ranker",
		`{"framework":"pytorch","source":{"git_repo":"github.com/acme/ranker","git_commit":"abcdef1234567","image":"`+image+`"},
		  "links":[{"name":"W&B run","url":"https://wandb.ai/acme/ranker/runs/x1"}]}`,
		file{"model.pt", strings.NewReader("weights")}), http.StatusCreated)

	// the run between them
	runBody := map[string]any{"orchestrator": "metaflow", "external_id": "SessionRecFlow/1842", "name": "SessionRecFlow",
		"status": "completed", "git": map[string]any{"repo": "github.com/acme/rec", "commit": "0123456789abcdef", "dirty": false},
		"image": image, "parameters": map[string]any{"epochs": 3},
		// nanoseconds, which PostgreSQL does not keep: the same report
		// again must still be no change
		"started_at": "2026-11-20T02:00:00.123456789Z", "ended_at": "2026-11-20T03:00:00Z",
		"links":   []map[string]any{{"name": "Metaflow UI", "url": "https://metaflow.acme.test/SessionRecFlow/1842"}},
		"inputs":  []map[string]any{{"dataset": "sessions-train", "version": 1}, {"dataset": "sessions-test", "version": 1}},
		"outputs": []map[string]any{{"model": "ranker", "version": 1}}}
	res = c.Send("POST", "/api/v1/runs", runBody)
	wantStatus(t, "report the run", res, http.StatusCreated)
	var run lineage.Run
	res.Decode(t, &run)
	if res.Header.Get("Location") != fmt.Sprintf("/api/v1/runs/%d", run.ID) {
		t.Errorf("Location = %q", res.Header.Get("Location"))
	}
	const wantIn, wantOut = "dataset_version:sessions-test/1,dataset_version:sessions-train/1", "model_version:ranker/1"
	if run.Status != "completed" || ioRefs(run.Inputs) != wantIn || ioRefs(run.Outputs) != wantOut || run.Git.Commit != "0123456789abcdef" || run.CreatedBy != "contributor-user" {
		t.Errorf("run: %s", res.Body)
	}
	// The same report again: 200, nothing written.
	before := auditCount(t, e)
	res = c.Send("POST", "/api/v1/runs", runBody)
	wantStatus(t, "the same report again", res, http.StatusOK)
	var again lineage.Run
	res.Decode(t, &again)
	if again.ID != run.ID || !again.UpdatedAt.Equal(run.UpdatedAt) || ioRefs(again.Inputs) != wantIn {
		t.Errorf("the same report changed the run: %s", res.Body)
	}
	if after := auditCount(t, e); after != before {
		t.Errorf("the same report again wrote %d audit events", after-before)
	}
	if got := get[lineage.Run](t, viewer, fmt.Sprintf("/api/v1/runs/%d", run.ID)); ioRefs(got.Inputs) != wantIn || ioRefs(got.Outputs) != wantOut {
		t.Errorf("run read back: inputs %s outputs %s", ioRefs(got.Inputs), ioRefs(got.Outputs))
	}

	// a failing data-quality result with its raw document
	const raw = `{"success": false, "results": [{"expectation_config": {"expectation_type": "expect_column_values_to_not_be_null", "kwargs": {"column": "session_id"}}, "success": false}],  "statistics": {"evaluated_expectations": 12}}`
	res = c.Do(apitest.Request{Method: "POST", Path: "/api/v1/datasets/sessions-train/versions/1/quality", Body: `{"suite": "sessions.critical", "producer": "great_expectations",
		"passed": false, "failed_checks": [{"name": "expect_column_values_to_not_be_null", "column": "session_id", "message": "12 nulls"}],
		"statistics": {"evaluated": 12, "successful": 11}, "url": "https://ge.acme.test/runs/9", "raw": ` + raw + `}`})
	wantStatus(t, "quality result", res, http.StatusCreated)
	var qr lineage.QualityResult
	res.Decode(t, &qr)
	if qr.Passed || len(qr.FailedChecks) != 1 || qr.RawSHA256 == nil || *qr.RawSHA256 != hexSHA([]byte(raw)) || qr.RawSize == nil || *qr.RawSize != int64(len(raw)) {
		t.Errorf("quality result: %s", res.Body)
	}
	res = viewer.Get(fmt.Sprintf("/api/v1/datasets/sessions-train/versions/1/quality/%d/raw", qr.ID))
	if res.Status != 200 || string(res.Body) != raw || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Errorf("raw document: %d %q %s", res.Status, res.Header.Get("Content-Type"), res.Body)
	}
	if q := get[listPage[lineage.QualityResult]](t, viewer, "/api/v1/datasets/sessions-train/versions/1/quality"); len(q.Items) != 1 || q.Items[0].ID != qr.ID {
		t.Errorf("quality list: %+v", q)
	}
	if v := get[lineage.DatasetVersion](t, viewer, "/api/v1/datasets/sessions-train/versions/1"); v.Quality != (lineage.QualitySummary{Status: "failed", Failed: 1}) {
		t.Errorf("quality summary: %+v", v.Quality)
	}
	// a result without a raw document has none to serve
	res = c.Send("POST", "/api/v1/datasets/sessions-test/versions/1/quality", map[string]any{"suite": "sessions.critical", "passed": true})
	wantStatus(t, "passing result", res, http.StatusCreated)
	var passing lineage.QualityResult
	res.Decode(t, &passing)
	wantErr(t, "raw of a result without one", viewer.Get(fmt.Sprintf("/api/v1/datasets/sessions-test/versions/1/quality/%d/raw", passing.ID)), 404, "", "")
	wantErr(t, "raw of another version's result", viewer.Get(fmt.Sprintf("/api/v1/datasets/sessions-test/versions/1/quality/%d/raw", qr.ID)), 404, "", "")

	// provenance: what produced ranker v1
	p := get[lineage.Provenance](t, viewer, "/api/v1/models/ranker/versions/1/provenance")
	if p.ModelVersion.Model != "ranker" || p.ModelVersion.Version != 1 || p.ModelVersion.Status != "ready" || p.ModelVersion.Depth != 0 || len(p.ModelVersions) != 0 {
		t.Errorf("provenance model version: %+v", p.ModelVersion)
	}
	if len(p.Runs) != 1 || p.Runs[0].ID != run.ID || p.Runs[0].Depth != 1 || ioRefs(p.Runs[0].Inputs) != wantIn {
		t.Errorf("provenance runs: %+v", p.Runs)
	}
	if len(p.DatasetVersions) != 2 {
		t.Fatalf("provenance dataset versions: %+v", p.DatasetVersions)
	}
	pt, ptr := p.DatasetVersions[0], p.DatasetVersions[1] // by reference: sessions-test before sessions-train
	if pt.Dataset != "sessions-test" || pt.SHA256 == nil || *pt.SHA256 != testSum || pt.Depth != 2 || len(pt.QualityResults) != 1 || !pt.QualityResults[0].Passed {
		t.Errorf("provenance of the test split: %+v", pt)
	}
	if ptr.Dataset != "sessions-train" || ptr.Reference.SQLSHA256 != hexSHA([]byte(trainSQL)) || ptr.Depth != 2 ||
		len(ptr.QualityResults) != 1 || ptr.QualityResults[0].ID != qr.ID || ptr.QualityResults[0].Passed || ptr.Quality.Status != "failed" {
		t.Errorf("provenance of the train split: %+v", ptr)
	}
	if !p.QualityFailed || p.Truncated {
		t.Errorf("quality_failed %v truncated %v", p.QualityFailed, p.Truncated)
	}
	runRef := fmt.Sprintf("run:%d", run.ID)
	if len(p.Commits) != 2 || p.Commits[0].Commit != "abcdef1234567" || p.Commits[0].Used[0] != "model_version:ranker/1" ||
		p.Commits[1].Commit != "0123456789abcdef" || p.Commits[1].Used[0] != runRef || p.Commits[1].Dirty == nil || *p.Commits[1].Dirty {
		t.Errorf("provenance commits: %+v", p.Commits)
	}
	if len(p.Images) != 1 || p.Images[0].Image != image || len(p.Images[0].Used) != 2 {
		t.Errorf("provenance images: %+v", p.Images)
	}
	if len(p.Links) != 2 {
		t.Errorf("provenance links: %+v", p.Links)
	}
	for _, l := range p.Links {
		if (l.From == runRef) != strings.Contains(l.URL, "metaflow") {
			t.Errorf("link %+v comes from the wrong node", l)
		}
	}
	wantEdges := "dataset_version:sessions-test/1->" + runRef + " dataset_version:sessions-train/1->" + runRef + " " + runRef + "->model_version:ranker/1"
	if got := edgeList(p.Edges); got != wantEdges {
		t.Errorf("provenance edges:\n got %s\nwant %s", got, wantEdges)
	}

	// impact: what depends on train v1
	im := get[lineage.Impact](t, viewer, "/api/v1/datasets/sessions-train/versions/1/impact")
	if len(im.ModelVersions) != 1 || im.ModelVersions[0] != (lineage.ImpactedModelVersion{Model: "ranker", Version: 1, Status: "ready", Kind: "model", Depth: 2}) ||
		im.Runs != 1 || im.DatasetVersions != 0 || im.Dataset != "sessions-train" || im.Version != 1 {
		t.Errorf("impact: %+v", im)
	}

	// the graph upstream of ranker v1
	g := get[lineage.Graph](t, viewer, "/api/v1/lineage?node=model_version:ranker/1&direction=upstream&depth=3")
	if len(g.Nodes) != 4 || len(g.Edges) != 3 || g.Root != "model_version:ranker/1" || g.Direction != "upstream" || g.Depth != 3 || g.Truncated {
		t.Fatalf("graph: %+v", g)
	}
	if edgeList(g.Edges) != wantEdges {
		t.Errorf("graph edges: %s", edgeList(g.Edges))
	}
	wantNodes := []lineage.Node{
		{ID: "model_version:ranker/1", Kind: "model_version", Label: "ranker v1", Name: "ranker", Version: 1, Status: "ready", Detail: "model", Depth: 0},
		{ID: runRef, Kind: "run", Label: "SessionRecFlow", RunID: run.ID, Status: "completed", Detail: "metaflow", Depth: 1},
		{ID: "dataset_version:sessions-test/1", Kind: "dataset_version", Label: "sessions-test v1", Name: "sessions-test", Version: 1, Status: "passed", Detail: "object", Depth: 2},
		{ID: "dataset_version:sessions-train/1", Kind: "dataset_version", Label: "sessions-train v1", Name: "sessions-train", Version: 1, Status: "failed", Detail: "warehouse_query", Depth: 2},
	}
	for i, n := range g.Nodes {
		w := wantNodes[i]
		if n.ID != w.ID || n.Kind != w.Kind || n.Label != w.Label || n.Name != w.Name || n.Version != w.Version || n.RunID != w.RunID ||
			n.Status != w.Status || n.Detail != w.Detail || n.Depth != w.Depth {
			t.Errorf("node %d: %+v, want %+v", i, n, w)
		}
	}
	// depth bounds the walk; downstream and both walk the other way
	if g := get[lineage.Graph](t, viewer, "/api/v1/lineage?node=model_version:ranker/1&depth=1"); len(g.Nodes) != 2 || len(g.Edges) != 1 || g.Direction != "upstream" {
		t.Errorf("depth 1 (upstream by default): %+v", g)
	}
	if g := get[lineage.Graph](t, viewer, "/api/v1/lineage?node=dataset_version:sessions-train/1&direction=downstream"); len(g.Nodes) != 3 || len(g.Edges) != 2 {
		t.Errorf("downstream of train: %+v", g)
	}
	if g := get[lineage.Graph](t, viewer, "/api/v1/lineage?node="+runRef+"&direction=both&depth=1"); len(g.Nodes) != 4 || len(g.Edges) != 3 {
		t.Errorf("both ways from the run: %+v", g)
	}
	if g := get[lineage.Graph](t, viewer, "/api/v1/lineage?node=model_version:ranker/1&max_nodes=2"); len(g.Nodes) != 2 || !g.Truncated {
		t.Errorf("max_nodes 2: %d nodes, truncated %v", len(g.Nodes), g.Truncated)
	}
}

// TestLineageModelVersionShortcut registers lineage with the version, for
// pipelines that report no runs.
func TestLineageModelVersionShortcut(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	viewer := e.as(auth.RoleViewer)
	for _, name := range []string{"clicks", "views"} {
		createDataset(t, c, name)
		objectVersion(t, c, name, "s3://acme-ml/"+name+".parquet", hexSHA([]byte(name)))
	}
	createModel(t, c, map[string]any{"name": "ctr"})

	// a run by orchestrator and external id, created with the version
	wantStatus(t, "register with run and training data", register(c, "ctr",
		`{"source":{"git_repo":"github.com/acme/ctr","git_commit":"abcdef1","image":"ghcr.io/acme/ctr:1"},
		  "run":{"orchestrator":"github-actions","external_id":"123"},"training_data":[{"dataset":"clicks","version":1}]}`,
		file{"m.bin", strings.NewReader("x")}), http.StatusCreated)
	runs := get[listPage[lineage.Run]](t, viewer, "/api/v1/runs?orchestrator=github-actions")
	if len(runs.Items) != 1 {
		t.Fatalf("runs of github-actions: %+v", runs.Items)
	}
	run := runs.Items[0]
	if run.ExternalID != "123" || run.Status != "completed" || run.Git.Commit != "abcdef1" || run.Git.Repo != "github.com/acme/ctr" || run.Image != "ghcr.io/acme/ctr:1" {
		t.Errorf("the run made for the version: %+v", run)
	}
	runRef := fmt.Sprintf("run:%d", run.ID)
	p := get[lineage.Provenance](t, viewer, "/api/v1/models/ctr/versions/1/provenance")
	if len(p.Runs) != 1 || p.Runs[0].ID != run.ID || len(p.DatasetVersions) != 1 || p.DatasetVersions[0].Dataset != "clicks" || p.DatasetVersions[0].Depth != 2 {
		t.Errorf("provenance of v1: runs %+v datasets %+v", p.Runs, p.DatasetVersions)
	}
	if got, want := edgeList(p.Edges), "dataset_version:clicks/1->"+runRef+" "+runRef+"->model_version:ctr/1"; got != want {
		t.Errorf("edges of v1: %s, want %s", got, want)
	}
	if r := get[lineage.Run](t, viewer, "/api/v1/runs/"+fmt.Sprint(run.ID)); ioRefs(r.Inputs) != "dataset_version:clicks/1" || ioRefs(r.Outputs) != "model_version:ctr/1" {
		t.Errorf("run io: %s / %s", ioRefs(r.Inputs), ioRefs(r.Outputs))
	}
	// naming the same run again (by id) links a second version to it
	wantStatus(t, "register with the run's id", register(c, "ctr", fmt.Sprintf(`{"run":{"id":%d}}`, run.ID), file{"m.bin", strings.NewReader("y")}), http.StatusCreated)
	if r := get[lineage.Run](t, viewer, "/api/v1/runs/"+fmt.Sprint(run.ID)); ioRefs(r.Outputs) != "model_version:ctr/1,model_version:ctr/2" {
		t.Errorf("run outputs after a second version: %s", ioRefs(r.Outputs))
	}
	if n := len(get[listPage[lineage.Run]](t, viewer, "/api/v1/runs?orchestrator=github-actions").Items); n != 1 {
		t.Errorf("%d github-actions runs, want 1", n)
	}

	// training data alone: edges straight into the version
	wantStatus(t, "register with training data only", register(c, "ctr", `{"training_data":[{"dataset":"views","version":1}]}`, file{"m.bin", strings.NewReader("z")}), http.StatusCreated)
	p = get[lineage.Provenance](t, viewer, "/api/v1/models/ctr/versions/3/provenance")
	if len(p.Runs) != 0 || len(p.DatasetVersions) != 1 || p.DatasetVersions[0].Dataset != "views" || p.DatasetVersions[0].Depth != 1 {
		t.Errorf("provenance of v3: runs %+v datasets %+v", p.Runs, p.DatasetVersions)
	}
	if got := edgeList(p.Edges); got != "dataset_version:views/1->model_version:ctr/3" {
		t.Errorf("edges of v3: %s", got)
	}
	if im := get[lineage.Impact](t, viewer, "/api/v1/datasets/views/versions/1/impact"); len(im.ModelVersions) != 1 || im.ModelVersions[0].Version != 3 || im.ModelVersions[0].Depth != 1 || im.Runs != 0 {
		t.Errorf("impact of views: %+v", im)
	}
	// a draft records its lineage too
	res := c.Send("POST", "/api/v1/models/ctr/versions", map[string]any{"training_data": []map[string]any{{"dataset": "clicks", "version": 1}},
		"artifacts": []map[string]any{{"path": "m.bin", "size": 1, "sha256": hexSHA([]byte("d"))}}})
	wantStatus(t, "draft with training data", res, http.StatusCreated)
	if p := get[lineage.Provenance](t, viewer, "/api/v1/models/ctr/versions/4/provenance"); p.ModelVersion.Status != "draft" || len(p.DatasetVersions) != 1 {
		t.Errorf("provenance of the draft: %+v", p)
	}

	// references to nothing: 400 naming the field, no version
	count := func() int {
		return len(get[listPage[registry.Version]](t, viewer, "/api/v1/models/ctr/versions").Items)
	}
	n := count()
	for _, tc := range []struct{ meta, field string }{
		{`{"training_data":[{"dataset":"nope","version":1}]}`, "training_data[0]"},
		{`{"training_data":[{"dataset":"clicks","version":1},{"dataset":"clicks","version":2}]}`, "training_data[1]"},
		{`{"run":{"orchestrator":"github-actions","external_id":"124"},"training_data":[{"dataset":"nope","version":1}]}`, "training_data[0]"},
		{`{"training_data":[{"model":"ctr","version":1}]}`, "training_data[0]"},
		{`{"training_data":[{"dataset":"Bad Name","version":1}]}`, "training_data[0]"},
		{`{"training_data":[{"dataset":"clicks","version":0}]}`, "training_data[0].version"},
		{`{"run":{"id":999999}}`, "run"},
		{`{"run":{"orchestrator":"github-actions"}}`, "run"},
		{`{"run":{"id":1,"orchestrator":"github-actions","external_id":"1"}}`, "run"},
	} {
		wantErr(t, tc.meta, register(c, "ctr", tc.meta, file{"m.bin", strings.NewReader("w")}), http.StatusBadRequest, tc.field, "")
	}
	wantErr(t, "draft with unknown training data", c.Send("POST", "/api/v1/models/ctr/versions", map[string]any{
		"training_data": []map[string]any{{"dataset": "nope", "version": 1}},
		"artifacts":     []map[string]any{{"path": "m.bin", "size": 1, "sha256": hexSHA([]byte("d"))}}}), http.StatusBadRequest, "training_data[0]", "")
	if got := count(); got != n {
		t.Errorf("refused registrations made versions: %d, want %d", got, n)
	}
	if n := len(get[listPage[lineage.Run]](t, viewer, "/api/v1/runs?orchestrator=github-actions").Items); n != 1 {
		t.Errorf("a refused registration left a run: %d github-actions runs, want 1", n)
	}
}

// TestDatasetUpload streams a dataset file into the object store.
func TestDatasetUpload(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withMinIO)
	c := e.as(auth.RoleContributor)
	viewer := e.as(auth.RoleViewer)
	createDataset(t, c, "uploads")
	const size = 3<<20 + 17
	content, _ := io.ReadAll(pseudo(7, size))
	sum := hexSHA(content)
	upload := func(meta string, files ...file) *apitest.Response {
		body, ct := multipartBody(meta, files...)
		return c.Do(apitest.Request{Method: "POST", Path: "/api/v1/datasets/uploads/versions", Body: body, ContentType: ct})
	}
	res := upload(`{"split":{"role":"train","strategy":"random"},"row_count":1000,"schema":[{"name":"a","type":"int"}],"description":"first","external_version":"v-1"}`,
		file{"data/train.parquet", bytes.NewReader(content)})
	wantStatus(t, "upload", res, http.StatusCreated)
	var v lineage.DatasetVersion
	res.Decode(t, &v)
	if v.Version != 1 || v.Type != "upload" || v.SHA256 == nil || *v.SHA256 != sum || v.Size == nil || *v.Size != size ||
		v.Reference.Filename != "data/train.parquet" || v.ContentType != "application/octet-stream" || v.Split.Role != "train" ||
		v.ExternalVersion == nil || *v.ExternalVersion != "v-1" || res.Header.Get("Location") != "/api/v1/datasets/uploads/versions/1" {
		t.Errorf("uploaded version: %s", res.Body)
	}
	res = viewer.Get("/api/v1/datasets/uploads/versions/1/file")
	if res.Status != 200 || !bytes.Equal(res.Body, content) || res.Header.Get("ETag") != `"`+sum+`"` || !strings.Contains(res.Header.Get("Content-Disposition"), "train.parquet") {
		t.Errorf("download: %d, %d bytes, ETag %q, disposition %q", res.Status, len(res.Body), res.Header.Get("ETag"), res.Header.Get("Content-Disposition"))
	}
	res = viewer.Do(apitest.Request{Method: "GET", Path: "/api/v1/datasets/uploads/versions/1/file", Header: http.Header{"Range": {"bytes=100-199"}}})
	if res.Status != http.StatusPartialContent || !bytes.Equal(res.Body, content[100:200]) || res.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-199/%d", size) {
		t.Errorf("range: %d %q, %d bytes", res.Status, res.Header.Get("Content-Range"), len(res.Body))
	}
	res = viewer.Do(apitest.Request{Method: "GET", Path: "/api/v1/datasets/uploads/versions/1/file", Header: http.Header{"Range": {"bytes=-10"}}})
	if res.Status != http.StatusPartialContent || !bytes.Equal(res.Body, content[size-10:]) {
		t.Errorf("suffix range: %d, %d bytes", res.Status, len(res.Body))
	}
	res = viewer.Do(apitest.Request{Method: "GET", Path: "/api/v1/datasets/uploads/versions/1/file", Header: http.Header{"Range": {fmt.Sprintf("bytes=%d-", size)}}})
	wantErr(t, "range past the end", res, http.StatusRequestedRangeNotSatisfiable, "", "")
	res = viewer.Do(apitest.Request{Method: "HEAD", Path: "/api/v1/datasets/uploads/versions/1/file"})
	if res.Status != 200 || res.Header.Get("Content-Length") != fmt.Sprint(size) || len(res.Body) != 0 {
		t.Errorf("HEAD: %d Content-Length %q", res.Status, res.Header.Get("Content-Length"))
	}
	// declared and matching
	small := []byte("a,b\n1,2\n")
	res = upload(fmt.Sprintf(`{"sha256":%q,"size":%d}`, hexSHA(small), len(small)), file{"small.csv", bytes.NewReader(small)})
	wantStatus(t, "upload with a matching declaration", res, http.StatusCreated)

	count := func() int {
		return len(get[listPage[lineage.DatasetVersion]](t, viewer, "/api/v1/datasets/uploads/versions").Items)
	}
	n := count()
	wantErr(t, "declared sha256 mismatch", upload(fmt.Sprintf(`{"sha256":%q}`, strings.Repeat("0", 64)), file{"small.csv", bytes.NewReader(small)}),
		http.StatusBadRequest, "sha256", hexSHA(small))
	wantErr(t, "declared size mismatch", upload(`{"size":5}`, file{"small.csv", bytes.NewReader(small)}), http.StatusBadRequest, "size", "")
	wantErr(t, "declared sha256 not hex", upload(`{"sha256":"XYZ"}`, file{"small.csv", bytes.NewReader(small)}), http.StatusBadRequest, "sha256", "")
	wantErr(t, "no file part", upload(`{}`), http.StatusBadRequest, "file", "")
	wantErr(t, "unknown metadata field", upload(`{"type":"object"}`, file{"small.csv", bytes.NewReader(small)}), http.StatusBadRequest, "type", "")
	if got := count(); got != n {
		t.Errorf("refused uploads made versions: %d, want %d", got, n)
	}
	// an upload holds one file: a second file part is refused and nothing
	// is recorded (a client that sees 400 retries)
	wantErr(t, "two file parts", upload(`{}`, file{"one.csv", bytes.NewReader(small)}, file{"two.csv", bytes.NewReader(small)}),
		http.StatusBadRequest, "file", "one file")
	// the file part must follow the metadata
	body := "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\nx\r\n--b--\r\n"
	wantErr(t, "file before metadata", c.Do(apitest.Request{Method: "POST", Path: "/api/v1/datasets/uploads/versions", Body: body, ContentType: "multipart/form-data; boundary=b"}),
		http.StatusBadRequest, "metadata", "")
	// type upload is Slipway's: not by JSON
	wantErr(t, "JSON version of type upload", c.Send("POST", "/api/v1/datasets/uploads/versions", map[string]any{"type": "upload", "reference": map[string]any{"filename": "x"}}),
		http.StatusBadRequest, "type", "multipart/form-data")
	wantErr(t, "JSON version of type openlineage", c.Send("POST", "/api/v1/datasets/uploads/versions", map[string]any{"type": "openlineage", "reference": map[string]any{}}),
		http.StatusBadRequest, "type", "")
	wantErr(t, "text/plain", c.Do(apitest.Request{Method: "POST", Path: "/api/v1/datasets/uploads/versions", Body: "x", ContentType: "text/plain"}), http.StatusUnsupportedMediaType, "", "")
	wantErr(t, "upload to a missing dataset", func() *apitest.Response {
		body, ct := multipartBody(`{}`, file{"x", strings.NewReader("x")})
		return c.Do(apitest.Request{Method: "POST", Path: "/api/v1/datasets/nope/versions", Body: body, ContentType: ct})
	}(), http.StatusNotFound, "", "")
	wantErr(t, "external_version twice", upload(`{"external_version":"v-1"}`, file{"x", strings.NewReader("x")}), http.StatusConflict, "", "")
	if got := count(); got != n {
		t.Errorf("refused uploads made versions: %d, want %d", got, n)
	}
	// a version by reference has no file here
	ref := objectVersion(t, c, "uploads", "s3://elsewhere/x", hexSHA([]byte("x")))
	wantErr(t, "file of a version by reference", viewer.Get(fmt.Sprintf("/api/v1/datasets/uploads/versions/%d/file", ref.Version)), http.StatusNotFound, "", "")
	wantErr(t, "file of a missing version", viewer.Get("/api/v1/datasets/uploads/versions/99/file"), http.StatusNotFound, "", "")
}

func readSample(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../lineage/openlineage/testdata/openlineage-run-complete.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// olEvent builds an OpenLineage RunEvent.
func olEvent(eventType, runID, job string, at time.Time, extra map[string]any) map[string]any {
	ev := map[string]any{
		"eventType": eventType, "eventTime": at.Format(time.RFC3339Nano),
		"producer":  "https://github.com/OpenLineage/OpenLineage/tree/1.24.0/integration/airflow",
		"schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
		"run":       map[string]any{"runId": runID},
		"job":       map[string]any{"namespace": "airflow://prod", "name": job},
	}
	for k, v := range extra {
		ev[k] = v
	}
	return ev
}

func olDataset(namespace, name string) map[string]any {
	return map[string]any{"namespace": namespace, "name": name}
}

func TestOpenLineageIngestion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	viewer := e.as(auth.RoleViewer)
	post := func(body any) *apitest.Response {
		return c.Do(apitest.Request{Method: "POST", Path: "/api/v1/openlineage", Body: body})
	}

	// the sample: a dbt model's run, child of a Metaflow run
	sample := readSample(t)
	res := post(sample)
	wantStatus(t, "the sample", res, http.StatusCreated)
	var in lineage.Ingested
	res.Decode(t, &in)
	if !in.Created || !in.Changed || in.Status != "completed" || len(in.Inputs) != 1 || len(in.Outputs) != 1 || res.Header.Get("Location") != fmt.Sprintf("/api/v1/runs/%d", in.RunID) {
		t.Errorf("ingested: %s", res.Body)
	}
	run := get[lineage.Run](t, viewer, fmt.Sprintf("/api/v1/runs/%d", in.RunID))
	if run.Orchestrator != "openlineage" || run.ExternalID != "0176a8c2-fe01-7439-87e6-56a1a1b4029f" || run.Name != "analytics.session_events_train" ||
		run.Namespace != "dbt://analytics" || run.Status != "completed" || run.EndedAt == nil {
		t.Errorf("run: %+v", run)
	}
	if run.Parent == nil || run.Parent.Orchestrator != "openlineage" || run.Parent.ExternalID != "0176a8c2-fd00-7000-8000-000000000001" {
		t.Fatalf("parent: %+v", run.Parent)
	}
	parent := get[lineage.Run](t, viewer, fmt.Sprintf("/api/v1/runs/%d", run.Parent.ID))
	if parent.Name != "SessionRecFlow" || parent.Namespace != "metaflow" {
		t.Errorf("parent run: %+v", parent)
	}
	if kids := get[listPage[lineage.Run]](t, viewer, fmt.Sprintf("/api/v1/runs?parent=%d", parent.ID)); len(kids.Items) != 1 || kids.Items[0].ID != run.ID {
		t.Errorf("children of the parent: %+v", kids.Items)
	}
	if ioRefs(run.Inputs) != "dataset_version:raw.events.browsing/1" || ioRefs(run.Outputs) != "dataset_version:analytics.ml.session_events_train/1" {
		t.Errorf("run io: %s / %s", ioRefs(run.Inputs), ioRefs(run.Outputs))
	}
	ds := get[lineage.Dataset](t, viewer, "/api/v1/datasets/analytics.ml.session_events_train")
	if ds.OpenLineage == nil || ds.OpenLineage.Namespace != "snowflake://acme.eu-west-1" || ds.OpenLineage.Name != "ANALYTICS.ML.SESSION_EVENTS_TRAIN" {
		t.Errorf("dataset: %+v", ds)
	}
	out := get[lineage.DatasetVersion](t, viewer, "/api/v1/datasets/analytics.ml.session_events_train/versions/1")
	var facets map[string]json.RawMessage
	json.Unmarshal(out.Facets, &facets)
	if out.Type != "openlineage" || out.ProducedBy == nil || *out.ProducedBy != run.ID || out.RowCount == nil || *out.RowCount != 1843221 ||
		len(out.Schema) != 2 || out.Reference.Namespace != "snowflake://acme.eu-west-1" || facets["schema"] == nil || facets["output:outputStatistics"] == nil {
		t.Errorf("output version: %+v (facets %s)", out, out.Facets)
	}
	// the same event again changes nothing
	before := auditCount(t, e)
	res = post(sample)
	wantStatus(t, "the sample again", res, http.StatusOK)
	var again lineage.Ingested
	res.Decode(t, &again)
	if again.Created || again.Changed || again.RunID != in.RunID || len(again.Outputs) != 1 {
		t.Errorf("the same event again: %s", res.Body)
	}
	if after := auditCount(t, e); after != before {
		t.Errorf("the same event again wrote %d audit events", after-before)
	}
	if n := len(get[listPage[lineage.DatasetVersion]](t, viewer, "/api/v1/datasets/analytics.ml.session_events_train/versions").Items); n != 1 {
		t.Errorf("%d output versions after a repeated event, want 1", n)
	}

	// START with inputs, then COMPLETE with outputs: one run
	t0 := time.Date(2026, 11, 21, 4, 0, 0, 0, time.UTC)
	const job = "features.build"
	const runA = "5f4b7a3e-0c1d-4e2f-9a8b-7c6d5e4f3a2b"
	res = post(olEvent("START", runA, job, t0, map[string]any{"inputs": []any{olDataset("postgres://db:5432", "public.events")},
		"run": map[string]any{"runId": runA, "facets": map[string]any{
			"acme_custom": map[string]any{"_producer": "https://acme.test/lineage", "_schemaURL": "https://acme.test/facets/Custom.json", "team": "search", "priority": 2}}},
		"job": map[string]any{"namespace": "airflow://prod", "name": job, "facets": map[string]any{
			"acme_owner": map[string]any{"_producer": "https://acme.test/lineage", "_schemaURL": "https://acme.test/facets/Owner.json", "owner": "ana"}}}}))
	wantStatus(t, "START", res, http.StatusCreated)
	res.Decode(t, &in)
	if in.Status != "running" || len(in.Inputs) != 1 || len(in.Outputs) != 0 {
		t.Errorf("after START: %s", res.Body)
	}
	res = post(olEvent("COMPLETE", runA, job, t0.Add(90*time.Second), map[string]any{"outputs": []any{olDataset("postgres://db:5432", "public.features")}}))
	wantStatus(t, "COMPLETE", res, http.StatusOK)
	res.Decode(t, &again)
	if again.RunID != in.RunID || again.Created || !again.Changed || again.Status != "completed" {
		t.Errorf("after COMPLETE: %s", res.Body)
	}
	runs := get[listPage[lineage.Run]](t, viewer, "/api/v1/runs?orchestrator=openlineage&name="+job)
	if len(runs.Items) != 1 {
		t.Fatalf("runs of %s: %+v", job, runs.Items)
	}
	run = get[lineage.Run](t, viewer, fmt.Sprintf("/api/v1/runs/%d", runs.Items[0].ID))
	if run.Status != "completed" || ioRefs(run.Inputs) != "dataset_version:public.events/1" || ioRefs(run.Outputs) != "dataset_version:public.features/1" ||
		run.StartedAt == nil || !run.StartedAt.Equal(t0) || run.EndedAt == nil || !run.EndedAt.Equal(t0.Add(90*time.Second)) {
		t.Errorf("run after START and COMPLETE: %+v", run)
	}
	// unknown facets are kept as received
	var runFacets, jobFacets map[string]map[string]any
	json.Unmarshal(run.Facets, &runFacets)
	json.Unmarshal(run.JobFacets, &jobFacets)
	if runFacets["acme_custom"]["team"] != "search" || runFacets["acme_custom"]["priority"] != 2.0 || jobFacets["acme_owner"]["owner"] != "ana" {
		t.Errorf("unknown facets: run %s job %s", run.Facets, run.JobFacets)
	}

	// COMPLETE before a late START: stays completed
	const runB = "6a5b4c3d-2e1f-4a0b-8c9d-0e1f2a3b4c5d"
	res = post(olEvent("COMPLETE", runB, "late.job", t0.Add(time.Hour), nil))
	wantStatus(t, "COMPLETE first", res, http.StatusCreated)
	res.Decode(t, &in)
	res = post(olEvent("START", runB, "late.job", t0, nil))
	wantStatus(t, "late START", res, http.StatusOK)
	res.Decode(t, &again)
	if again.Status != "completed" {
		t.Errorf("a late START moved the run to %s", again.Status)
	}
	run = get[lineage.Run](t, viewer, fmt.Sprintf("/api/v1/runs/%d", in.RunID))
	if run.Status != "completed" || run.StartedAt == nil || !run.StartedAt.Equal(t0) || run.EndedAt == nil || !run.EndedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("run after COMPLETE then START: %+v", run)
	}
	// a late RUNNING does not reopen it either; a FAIL cannot change a finished run
	post(olEvent("RUNNING", runB, "late.job", t0.Add(2*time.Hour), nil))
	post(olEvent("FAIL", runB, "late.job", t0.Add(3*time.Hour), nil))
	if run := get[lineage.Run](t, viewer, fmt.Sprintf("/api/v1/runs/%d", in.RunID)); run.Status != "completed" {
		t.Errorf("a finished run became %s", run.Status)
	}

	// not a RunEvent
	dsEvent := map[string]any{"eventTime": "2026-11-20T03:05:11.412Z", "producer": "https://acme.test",
		"schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent", "dataset": olDataset("s3://b", "k")}
	wantErr(t, "a DatasetEvent", post(dsEvent), http.StatusBadRequest, "run", "DatasetEvent")
	wantErr(t, "a JSON array", post("["+string(sample)+"]"), http.StatusBadRequest, "body", "array")
	wantErr(t, "not JSON", post(`{"eventType":`), http.StatusBadRequest, "body", "not valid JSON")
	wantErr(t, "empty", post(""), http.StatusBadRequest, "body", "")
	wantErr(t, "text/plain", c.Do(apitest.Request{Method: "POST", Path: "/api/v1/openlineage", Body: string(sample), ContentType: "text/plain"}), http.StatusUnsupportedMediaType, "", "")
	wantErr(t, "a bad runId", post(olEvent("START", "not-a-uuid", job, t0, nil)), http.StatusBadRequest, "run.runId", "UUID")
	wantErr(t, "a bad eventType", post(olEvent("FINISHED", runA, job, t0, nil)), http.StatusBadRequest, "eventType", "COMPLETE")
	wantErr(t, "no job", post(map[string]any{"eventType": "START", "eventTime": "2026-11-20T03:05:11Z", "producer": "https://acme.test",
		"schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent", "run": map[string]any{"runId": runA}}), http.StatusBadRequest, "job", "")
	wantErr(t, "its own parent", post(olEvent("START", runA, job, t0, map[string]any{"run": map[string]any{"runId": runA, "facets": map[string]any{
		"parent": map[string]any{"run": map[string]any{"runId": runA}, "job": map[string]any{"namespace": "x", "name": "y"}}}}})), http.StatusBadRequest, "run.facets.parent.run.runId", "")
	wantErr(t, "a viewer", viewer.Do(apitest.Request{Method: "POST", Path: "/api/v1/openlineage", Body: sample}), http.StatusForbidden, "", "")
}

// TestOpenLineageStartLaterThanComplete: a START that arrives after the
// COMPLETE and carries a later eventTime (clocks of two machines) must not
// break the run (ended_at >= started_at is a constraint of the table).
func TestOpenLineageStartLaterThanComplete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	t0 := time.Date(2026, 11, 21, 4, 0, 0, 0, time.UTC)
	const runID = "7a5b4c3d-2e1f-4a0b-8c9d-0e1f2a3b4c5d"
	res := c.Send("POST", "/api/v1/openlineage", olEvent("COMPLETE", runID, "skewed.job", t0, nil))
	wantStatus(t, "COMPLETE", res, http.StatusCreated)
	var in lineage.Ingested
	res.Decode(t, &in)
	res = c.Send("POST", "/api/v1/openlineage", olEvent("START", runID, "skewed.job", t0.Add(time.Minute), nil))
	if res.Status != http.StatusOK {
		t.Fatalf("a START later than the COMPLETE: %d %s, want 200", res.Status, res.Body)
	}
	run := get[lineage.Run](t, c, fmt.Sprintf("/api/v1/runs/%d", in.RunID))
	if run.Status != "completed" || run.StartedAt == nil || run.EndedAt == nil || run.EndedAt.Before(*run.StartedAt) {
		t.Errorf("run: %+v", run)
	}
}

func TestLineageBadInputs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	viewer := e.as(auth.RoleViewer)
	createDataset(t, c, "d")
	objectVersion(t, c, "d", "s3://b/k", hexSHA([]byte("k")))
	createModel(t, c, map[string]any{"name": "ranker"})
	wantStatus(t, "register", register(c, "ranker", `{}`, file{"m.bin", strings.NewReader("x")}), http.StatusCreated)

	// the graph query
	for _, tc := range []struct{ query, field, text string }{
		{"node=table:x", "node", "unknown node type"},
		{"node=model_version:ranker", "node", ""},
		{"node=model_version:ranker/0", "node", ""},
		{"node=model_version:Ranker/1", "node", ""},
		{"node=run:abc", "node", ""},
		{"node=nothing", "node", ""},
		{"", "node", "is required"},
		{"node=model_version:ranker/1&depth=21", "depth", "1 to 20"},
		{"node=model_version:ranker/1&depth=0", "depth", ""},
		{"node=model_version:ranker/1&depth=two", "depth", ""},
		{"node=model_version:ranker/1&direction=sideways", "direction", "upstream, downstream or both"},
		{"node=model_version:ranker/1&max_nodes=5001", "max_nodes", ""},
	} {
		wantErr(t, "lineage?"+tc.query, viewer.Get("/api/v1/lineage?"+tc.query), http.StatusBadRequest, tc.field, tc.text)
	}
	for _, node := range []string{"model_version:ranker/2", "model_version:nope/1", "dataset_version:d/2", "run:999999"} {
		wantErr(t, "lineage of "+node, viewer.Get("/api/v1/lineage?node="+node), http.StatusNotFound, "", "")
	}
	wantErr(t, "provenance of a missing version", viewer.Get("/api/v1/models/ranker/versions/2/provenance"), http.StatusNotFound, "", "")
	wantErr(t, "provenance of a missing model", viewer.Get("/api/v1/models/nope/versions/1/provenance"), http.StatusNotFound, "", "")
	wantErr(t, "provenance of version zero", viewer.Get("/api/v1/models/ranker/versions/0/provenance"), http.StatusBadRequest, "version", "")
	wantErr(t, "impact of a missing version", viewer.Get("/api/v1/datasets/d/versions/2/impact"), http.StatusNotFound, "", "")
	wantErr(t, "impact of a missing dataset", viewer.Get("/api/v1/datasets/nope/versions/1/impact"), http.StatusNotFound, "", "")

	// datasets
	wantErr(t, "dataset name Bad Name", c.Send("POST", "/api/v1/datasets", map[string]any{"name": "Bad Name"}), http.StatusBadRequest, "name", "^[a-z0-9][a-z0-9._-]{0,127}$")
	wantErr(t, "dataset without a name", c.Send("POST", "/api/v1/datasets", map[string]any{}), http.StatusBadRequest, "name", "")
	wantErr(t, "dataset with a bad tag", c.Send("POST", "/api/v1/datasets", map[string]any{"name": "t", "tags": map[string]string{"bad key": "v"}}), http.StatusBadRequest, "tags.bad key", "")
	wantErr(t, "dataset with an unknown field", c.Send("POST", "/api/v1/datasets", map[string]any{"name": "u", "colour": "red"}), http.StatusBadRequest, "colour", "")
	wantErr(t, "dataset twice", c.Send("POST", "/api/v1/datasets", map[string]any{"name": "d"}), http.StatusConflict, "", "")
	wantErr(t, "a viewer creating a dataset", viewer.Send("POST", "/api/v1/datasets", map[string]any{"name": "by-viewer"}), http.StatusForbidden, "", "")
	wantErr(t, "a missing dataset", viewer.Get("/api/v1/datasets/nope"), http.StatusNotFound, "", "")
	wantErr(t, "versions of a missing dataset", viewer.Get("/api/v1/datasets/nope/versions"), http.StatusNotFound, "", "")
	wantErr(t, "a missing dataset version", viewer.Get("/api/v1/datasets/d/versions/9"), http.StatusNotFound, "", "")
	wantErr(t, "a bad version number", viewer.Get("/api/v1/datasets/d/versions/v1"), http.StatusBadRequest, "version", "")
	wantErr(t, "a bad cursor", viewer.Get("/api/v1/datasets?cursor=zzz"), http.StatusBadRequest, "", "")

	// dataset versions
	sum := hexSHA([]byte("x"))
	asOf := "2026-11-01T00:00:00Z"
	for _, tc := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"no type", map[string]any{"reference": map[string]any{"uri": "s3://b/k"}, "sha256": sum}, "type"},
		{"unknown type", map[string]any{"type": "ftp", "reference": map[string]any{"uri": "ftp://b/k"}, "sha256": sum}, "type"},
		{"object without sha256", map[string]any{"type": "object", "reference": map[string]any{"uri": "s3://b/k"}}, "sha256"},
		{"object with a bad sha256", map[string]any{"type": "object", "reference": map[string]any{"uri": "s3://b/k"}, "sha256": strings.ToUpper(sum)}, "sha256"},
		{"object without uri", map[string]any{"type": "object", "reference": map[string]any{}, "sha256": sum}, "reference.uri"},
		{"warehouse_query without as_of", map[string]any{"type": "warehouse_query", "reference": map[string]any{"warehouse": "snowflake://a", "sql": "select 1"}}, "reference.as_of"},
		{"warehouse_query without sql", map[string]any{"type": "warehouse_query", "reference": map[string]any{"warehouse": "snowflake://a", "as_of": asOf}}, "reference.sql_sha256"},
		{"warehouse_query with a wrong sql_sha256", map[string]any{"type": "warehouse_query", "reference": map[string]any{"warehouse": "snowflake://a", "sql": "select 1", "sql_sha256": sum, "as_of": asOf}}, "reference.sql_sha256"},
		{"warehouse_query with list parameters", map[string]any{"type": "warehouse_query", "reference": map[string]any{"warehouse": "snowflake://a", "sql": "select 1", "as_of": asOf, "parameters": []int{1}}}, "reference.parameters"},
		{"object with sql", map[string]any{"type": "object", "reference": map[string]any{"uri": "s3://b/k", "sql": "select 1"}, "sha256": sum}, "reference"},
		{"dbt_run without manifest", map[string]any{"type": "dbt_run", "reference": map[string]any{"run_id": "1"}}, "reference.manifest_sha256"},
		{"lakehouse_ref of an unknown format", map[string]any{"type": "lakehouse_ref", "reference": map[string]any{"format": "orc", "table": "t", "snapshot_id": "1"}}, "reference.format"},
		{"duplicate columns", map[string]any{"type": "object", "reference": map[string]any{"uri": "s3://b/k"}, "sha256": sum, "schema": []map[string]any{{"name": "a"}, {"name": "a"}}}, "schema[1].name"},
		{"a statistic that is an object", map[string]any{"type": "object", "reference": map[string]any{"uri": "s3://b/k"}, "sha256": sum, "statistics": map[string]any{"a": map[string]any{"x": map[string]any{}}}}, "statistics.a.x"},
		{"negative row count", map[string]any{"type": "object", "reference": map[string]any{"uri": "s3://b/k"}, "sha256": sum, "row_count": -1}, "row_count"},
		{"unknown reference field", map[string]any{"type": "object", "reference": map[string]any{"uri": "s3://b/k", "bucket": "b"}, "sha256": sum}, "bucket"},
	} {
		wantErr(t, tc.name, c.Send("POST", "/api/v1/datasets/d/versions", tc.body), http.StatusBadRequest, tc.field, "")
	}
	wantErr(t, "a version of a missing dataset", c.Send("POST", "/api/v1/datasets/nope/versions", map[string]any{"type": "object", "reference": map[string]any{"uri": "s3://b/k"}, "sha256": sum}), http.StatusNotFound, "", "")
	for _, body := range []map[string]any{
		{"type": "dbt_run", "reference": map[string]any{"project": "analytics", "job_id": "70", "run_id": "9001", "manifest_sha256": sum, "target": "prod"}},
		{"type": "lakehouse_ref", "reference": map[string]any{"format": "iceberg", "catalog": "glue", "table": "ml.sessions", "snapshot_id": "3051729675574597004"}},
		{"type": "lakehouse_ref", "reference": map[string]any{"format": "lakefs", "repository": "lake", "commit": "c0ffee", "branch": "main"}},
		{"type": "warehouse_query", "reference": map[string]any{"warehouse": "bigquery://p", "sql_sha256": sum, "as_of": asOf}},
	} {
		wantStatus(t, fmt.Sprint("version ", body), c.Send("POST", "/api/v1/datasets/d/versions", body), http.StatusCreated)
	}
	if n := len(get[listPage[lineage.DatasetVersion]](t, viewer, "/api/v1/datasets/d/versions").Items); n != 5 {
		t.Errorf("%d versions of d, want 5 (refused ones were recorded)", n)
	}

	// quality results
	wantErr(t, "quality without passed", c.Send("POST", "/api/v1/datasets/d/versions/1/quality", map[string]any{"suite": "s"}), http.StatusBadRequest, "passed", "")
	wantErr(t, "quality without suite", c.Send("POST", "/api/v1/datasets/d/versions/1/quality", map[string]any{"passed": true}), http.StatusBadRequest, "suite", "")
	wantErr(t, "passed with failed checks", c.Send("POST", "/api/v1/datasets/d/versions/1/quality", map[string]any{"suite": "s", "passed": true,
		"failed_checks": []map[string]any{{"name": "x"}}}), http.StatusBadRequest, "failed_checks", "")
	wantErr(t, "quality with a javascript url", c.Send("POST", "/api/v1/datasets/d/versions/1/quality", map[string]any{"suite": "s", "passed": true, "url": "javascript:alert(1)"}), http.StatusBadRequest, "url", "")
	wantErr(t, "quality of a missing version", c.Send("POST", "/api/v1/datasets/d/versions/9/quality", map[string]any{"suite": "s", "passed": true}), http.StatusNotFound, "", "")
	wantErr(t, "raw of a bad id", viewer.Get("/api/v1/datasets/d/versions/1/quality/x/raw"), http.StatusBadRequest, "id", "")
	wantErr(t, "raw of a missing result", viewer.Get("/api/v1/datasets/d/versions/1/quality/999/raw"), http.StatusNotFound, "", "")

	// runs
	run := func(extra map[string]any) map[string]any {
		b := map[string]any{"orchestrator": "airflow", "external_id": "dag/1"}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	wantErr(t, "run status done", c.Send("POST", "/api/v1/runs", run(map[string]any{"status": "done"})), http.StatusBadRequest, "status", "running, completed, failed, aborted")
	wantErr(t, "run without external_id", c.Send("POST", "/api/v1/runs", map[string]any{"orchestrator": "airflow"}), http.StatusBadRequest, "external_id", "")
	wantErr(t, "run input naming a missing dataset version", c.Send("POST", "/api/v1/runs", run(map[string]any{"inputs": []map[string]any{{"dataset": "d", "version": 9}}})),
		http.StatusBadRequest, "inputs[0]", "does not exist")
	wantErr(t, "run output naming a missing model version", c.Send("POST", "/api/v1/runs", run(map[string]any{"outputs": []map[string]any{{"model": "ranker", "version": 9}}})),
		http.StatusBadRequest, "outputs[0]", "does not exist")
	wantErr(t, "run input naming both", c.Send("POST", "/api/v1/runs", run(map[string]any{"inputs": []map[string]any{{"dataset": "d", "model": "ranker", "version": 1}}})),
		http.StatusBadRequest, "inputs[0]", "")
	wantErr(t, "run reading and writing one version", c.Send("POST", "/api/v1/runs", run(map[string]any{"inputs": []map[string]any{{"dataset": "d", "version": 1}},
		"outputs": []map[string]any{{"dataset": "d", "version": 1}}})), http.StatusBadRequest, "outputs[0]", "")
	wantErr(t, "run ending before it starts", c.Send("POST", "/api/v1/runs", run(map[string]any{"started_at": "2026-11-20T03:00:00Z", "ended_at": "2026-11-20T02:00:00Z"})), http.StatusBadRequest, "ended_at", "")
	wantErr(t, "run with a missing parent", c.Send("POST", "/api/v1/runs", run(map[string]any{"parent": map[string]any{"id": 999999}})), http.StatusBadRequest, "parent", "")
	wantErr(t, "run with a bad commit", c.Send("POST", "/api/v1/runs", run(map[string]any{"git": map[string]any{"commit": "HEAD"}})), http.StatusBadRequest, "git.commit", "")
	wantErr(t, "run with a data: link", c.Send("POST", "/api/v1/runs", run(map[string]any{"links": []map[string]any{{"name": "x", "url": "data:text/html,hi"}}})), http.StatusBadRequest, "links[0].url", "")
	if n := len(get[listPage[lineage.Run]](t, viewer, "/api/v1/runs").Items); n != 0 {
		t.Errorf("refused reports made %d runs", n)
	}
	wantStatus(t, "run", c.Send("POST", "/api/v1/runs", run(map[string]any{"status": "completed"})), http.StatusCreated)
	wantErr(t, "a finished run reported running", c.Send("POST", "/api/v1/runs", run(map[string]any{"status": "running"})), http.StatusConflict, "", "completed")
	wantErr(t, "a finished run reported failed", c.Send("POST", "/api/v1/runs", run(map[string]any{"status": "failed"})), http.StatusConflict, "", "")
	wantStatus(t, "a finished run reported completed again", c.Send("POST", "/api/v1/runs", run(map[string]any{"status": "completed"})), http.StatusOK)
	wantErr(t, "a viewer reporting a run", viewer.Send("POST", "/api/v1/runs", run(nil)), http.StatusForbidden, "", "")
	wantErr(t, "runs?status=done", viewer.Get("/api/v1/runs?status=done"), http.StatusBadRequest, "status", "")
	wantErr(t, "runs?parent=x", viewer.Get("/api/v1/runs?parent=x"), http.StatusBadRequest, "parent", "")
	wantErr(t, "run x", viewer.Get("/api/v1/runs/x"), http.StatusBadRequest, "id", "")
	wantErr(t, "a missing run", viewer.Get("/api/v1/runs/999999"), http.StatusNotFound, "", "")
}

// TestReferencesNeverFetched registers references to a server that counts
// its requests, to local files and to the cloud metadata address: Slipway
// stores them as text and never fetches any, whatever is read afterwards.
func TestReferencesNeverFetched(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("canary"))
	}))
	defer canary.Close()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	viewer := e.as(auth.RoleViewer)
	createDataset(t, c, "refs")
	uris := []string{canary.URL + "/data.parquet", "file:///etc/passwd", "/etc/passwd", "http://169.254.169.254/latest/meta-data/", "../../etc/shadow"}
	var training []map[string]any
	for i, uri := range uris {
		v := objectVersion(t, c, "refs", uri, hexSHA([]byte(uri)))
		if v.Reference.URI != uri || v.Version != i+1 {
			t.Errorf("stored %q as %q", uri, v.Reference.URI)
		}
		training = append(training, map[string]any{"dataset": "refs", "version": v.Version})
	}
	res := c.Send("POST", "/api/v1/datasets/refs/versions", map[string]any{"type": "warehouse_query", "reference": map[string]any{
		"warehouse": canary.URL, "sql": "select 1", "as_of": "2026-11-01T00:00:00Z"}})
	wantStatus(t, "a warehouse at the canary", res, http.StatusCreated)
	wantStatus(t, "a quality result linking to the canary", c.Send("POST", "/api/v1/datasets/refs/versions/1/quality", map[string]any{"suite": "s", "passed": true, "url": canary.URL + "/report"}), http.StatusCreated)
	createModel(t, c, map[string]any{"name": "m"})
	meta, _ := json.Marshal(map[string]any{"training_data": training, "links": []map[string]any{{"name": "canary", "url": canary.URL + "/run"}}})
	wantStatus(t, "register", register(c, "m", string(meta), file{"m.bin", strings.NewReader("x")}), http.StatusCreated)
	wantStatus(t, "a run linking to the canary", c.Send("POST", "/api/v1/runs", map[string]any{"orchestrator": "o", "external_id": "1",
		"links": []map[string]any{{"name": "canary", "url": canary.URL + "/ui"}}, "inputs": []map[string]any{{"dataset": "refs", "version": 6}},
		"outputs": []map[string]any{{"model": "m", "version": 1}}}), http.StatusCreated)

	for i, uri := range uris {
		if v := get[lineage.DatasetVersion](t, viewer, fmt.Sprintf("/api/v1/datasets/refs/versions/%d", i+1)); v.Reference.URI != uri {
			t.Errorf("version %d reads back %q, want %q", i+1, v.Reference.URI, uri)
		}
		wantErr(t, "file of "+uri, viewer.Get(fmt.Sprintf("/api/v1/datasets/refs/versions/%d/file", i+1)), http.StatusNotFound, "", "")
		get[lineage.Impact](t, viewer, fmt.Sprintf("/api/v1/datasets/refs/versions/%d/impact", i+1))
	}
	p := get[lineage.Provenance](t, viewer, "/api/v1/models/m/versions/1/provenance")
	if len(p.DatasetVersions) != len(uris)+1 {
		t.Errorf("provenance lists %d dataset versions, want %d", len(p.DatasetVersions), len(uris)+1)
	}
	got := map[string]bool{}
	for _, d := range p.DatasetVersions {
		got[d.Reference.URI] = true
	}
	for _, uri := range uris {
		if !got[uri] {
			t.Errorf("provenance lacks %q", uri)
		}
	}
	get[lineage.Graph](t, viewer, "/api/v1/lineage?node=model_version:m/1&direction=both")
	get[listPage[lineage.DatasetVersion]](t, viewer, "/api/v1/datasets/refs/versions")
	get[listPage[lineage.QualityResult]](t, viewer, "/api/v1/datasets/refs/versions/1/quality")
	// and the pages people read
	b := e.browser()
	b.login(userOf(auth.RoleViewer), testPassword)
	for _, path := range []string{"/datasets/refs", "/datasets/refs/versions/1", "/datasets/refs/versions/6", "/lineage?node=model_version:m/1", "/models/m/versions/1"} {
		if res := b.do("GET", path, nil, nil); res.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, res.StatusCode)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("Slipway sent %d requests to a URL it was given as a reference", n)
	}
}

func TestLineagePagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	for _, name := range []string{"c-data", "a-data", "b-data"} {
		createDataset(t, c, name)
	}
	createDataset(t, c, "other")
	// follow reads a list page by page, each item named by its name, id or
	// version number.
	follow := func(path string) (keys []string, pages int) {
		cursor := ""
		for pages = 1; ; pages++ {
			p := get[listPage[map[string]any]](t, c, path+"&cursor="+url.QueryEscape(cursor))
			if len(p.Items) > 1 {
				t.Fatalf("%s: %d items on a page of 1", path, len(p.Items))
			}
			for _, it := range p.Items {
				switch {
				case it["name"] != nil && it["version_count"] != nil:
					keys = append(keys, it["name"].(string))
				case it["orchestrator"] != nil:
					keys = append(keys, fmt.Sprint(it["id"]))
				default:
					keys = append(keys, fmt.Sprint(it["version"]))
				}
			}
			if p.NextCursor == "" || pages > 10 {
				return keys, pages
			}
			cursor = p.NextCursor
		}
	}
	if got, _ := follow("/api/v1/datasets?limit=1&q=b"); strings.Join(got, ",") != "b-data" {
		t.Errorf("datasets with prefix b: %v", got)
	}
	got, pages := follow("/api/v1/datasets?limit=1&q=")
	if strings.Join(got, ",") != "a-data,b-data,c-data,other" || pages != 4 {
		t.Errorf("datasets page by page: %v in %d pages", got, pages)
	}
	var ids []int64
	for i := range 3 {
		res := c.Send("POST", "/api/v1/runs", map[string]any{"orchestrator": "metaflow", "external_id": fmt.Sprintf("Flow/%d", i)})
		wantStatus(t, "run", res, http.StatusCreated)
		var r lineage.Run
		res.Decode(t, &r)
		ids = append(ids, r.ID)
	}
	wantStatus(t, "another orchestrator's run", c.Send("POST", "/api/v1/runs", map[string]any{"orchestrator": "airflow", "external_id": "x"}), http.StatusCreated)
	got, _ = follow("/api/v1/runs?limit=1&orchestrator=metaflow")
	if want := fmt.Sprintf("%d,%d,%d", ids[2], ids[1], ids[0]); strings.Join(got, ",") != want {
		t.Errorf("runs page by page (newest first): %v, want %s", got, want)
	}
	if got, _ := follow("/api/v1/runs?limit=1"); len(got) != 4 {
		t.Errorf("every run page by page: %v", got)
	}
	for range 3 {
		objectVersion(t, c, "a-data", "s3://b/k", hexSHA([]byte("k")))
	}
	if got, _ := follow("/api/v1/datasets/a-data/versions?limit=1"); strings.Join(got, ",") != "3,2,1" {
		t.Errorf("versions page by page (newest first): %v", got)
	}
	wantErr(t, "limit 0", c.Get("/api/v1/runs?limit=0"), http.StatusBadRequest, "limit", "")
	wantErr(t, "limit 201", c.Get("/api/v1/datasets?limit=201"), http.StatusBadRequest, "limit", "")
}

func TestDatasetVersionIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	createDataset(t, c, "d")
	post := func(key string, body any) *apitest.Response {
		return c.Do(apitest.Request{Method: "POST", Path: "/api/v1/datasets/d/versions", Body: body, Header: withKey(key)})
	}
	body := map[string]any{"type": "object", "reference": map[string]any{"uri": "s3://b/k"}, "sha256": hexSHA([]byte("k"))}
	first, again := post("v-1", body), post("v-1", body)
	if first.Status != 201 || again.Status != 201 || string(first.Body) != string(again.Body) || again.Header.Get("Idempotent-Replayed") != "true" ||
		again.Header.Get("Location") != "/api/v1/datasets/d/versions/1" {
		t.Fatalf("retry: %d %s / %d %s (replayed %q)", first.Status, first.Body, again.Status, again.Body, again.Header.Get("Idempotent-Replayed"))
	}
	// the same JSON, spelled differently, is the same request
	if res := post("v-1", `{"sha256":"`+hexSHA([]byte("k"))+`", "reference": {"uri": "s3://b/k"}, "type": "object"}`); res.Status != 201 || string(res.Body) != string(first.Body) {
		t.Errorf("the same body reordered: %d %s", res.Status, res.Body)
	}
	other := map[string]any{"type": "object", "reference": map[string]any{"uri": "s3://b/other"}, "sha256": hexSHA([]byte("k"))}
	wantErr(t, "same key, other body", post("v-1", other), http.StatusUnprocessableEntity, "", "")
	count := func() int {
		return len(get[listPage[lineage.DatasetVersion]](t, c, "/api/v1/datasets/d/versions").Items)
	}
	if n := count(); n != 1 {
		t.Errorf("%d versions after a retried registration, want 1", n)
	}
	// an upload retried with its key is one version too
	upload := func(key, content string) *apitest.Response {
		body, ct := multipartBody(`{"description":"up"}`, file{"f.csv", strings.NewReader(content)})
		return c.Do(apitest.Request{Method: "POST", Path: "/api/v1/datasets/d/versions", Body: body, ContentType: ct, Header: withKey(key)})
	}
	u1, u2 := upload("u-1", "a,b\n"), upload("u-1", "a,b\n")
	if u1.Status != 201 || u2.Status != 201 || string(u1.Body) != string(u2.Body) || u2.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("upload retry: %d / %d %s", u1.Status, u2.Status, u2.Body)
	}
	wantErr(t, "same key, other file", upload("u-1", "c,d\n"), http.StatusUnprocessableEntity, "", "")
	if n := count(); n != 2 {
		t.Errorf("%d versions after a retried upload, want 2", n)
	}
	// and a run report
	run := map[string]any{"orchestrator": "o", "external_id": "1"}
	r1 := c.Do(apitest.Request{Method: "POST", Path: "/api/v1/runs", Body: run, Header: withKey("r-1")})
	r2 := c.Do(apitest.Request{Method: "POST", Path: "/api/v1/runs", Body: run, Header: withKey("r-1")})
	if r1.Status != 201 || r2.Status != 201 || r2.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("run retry: %d / %d", r1.Status, r2.Status)
	}
}
