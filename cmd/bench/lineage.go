package main

// The lineage benchmark: a pipeline graph seeded with COPY, then upstream
// walks of depth 10 through GET /api/v1/lineage vs the walk's SQL alone.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

type lineageOptions struct {
	nodes, edges, queries int
	explain               bool
}

const (
	lineageSteps  = 30 // each job runs once per step (a day of a scheduler)
	lineageLayers = 8  // layers of dataset-writing jobs in a team's pipeline
	lineageDepth  = 10
)

// lgDataset is a dataset of the graph; it has one version per step.
type lgDataset struct {
	name         string
	group, layer int // layer 0: a source (ingested, no run in the graph)
}

// lgJob is a job of the graph; it runs once per step.
type lgJob struct {
	name         string
	group, layer int
	inputs       []int // datasets read, each at its version of the step (sometimes the one before)
	outputs      []int // datasets written; none for a training job
	model        int   // a training job's model, else -1
	rank         int   // a training job's index among its model's
	selfRead     bool  // incremental: reads the previous version of outputs[0]
	warmStart    bool  // training: starts from its own previous model version
}

// lineageGraph is the generated graph: nodes are numbered per kind,
// dataset version d*steps+t, run t*len(jobs)+j, model version by
// (model, version).
type lineageGraph struct {
	steps    int
	datasets []lgDataset
	jobs     []lgJob
	models   []string
	trainers []int // training jobs per model
	edges    [][2]lgNode
	// roots of the queries: model versions, and dataset versions written
	// by the top layers
	deepDVs []lgNode
}

type lgNode struct {
	kind string // dataset_version, run, model_version
	idx  int    // dataset version, run: its number; model version: model<<32 | version
}

func (g *lineageGraph) dv(d, t int) lgNode { return lgNode{"dataset_version", d*g.steps + t} }
func (g *lineageGraph) run(j, t int) lgNode {
	return lgNode{"run", t*len(g.jobs) + j}
}
func (g *lineageGraph) mv(j, t int) lgNode {
	job := g.jobs[j]
	return lgNode{"model_version", job.model<<32 | (t*g.trainers[job.model] + job.rank + 1)}
}

// genLineage makes a pipeline DAG of about nodes nodes (45% dataset
// versions, 45% runs, 10% model versions) and about edges edges. Teams
// (groups) own pipelines of lineageLayers layers over a few source
// datasets; a job reads 2 to 4 datasets, mostly of its own team and of the
// layer just below (else two or more below), and writes one or two
// datasets or, for a training job, a version of its team's model. Every
// job runs once per step and reads the versions of the step (one in ten
// reads the version before); three in ten dataset jobs are incremental
// (they also read their own previous version) and half the training jobs
// warm-start from their previous model version, so the graph is deep in
// time as well as in layers. The edges the 2-to-4 inputs leave short of
// the target are added as further inputs of wide jobs (every training job,
// one in five dataset jobs: feature assembly, wide joins).
func genLineage(nodes, edges int) *lineageGraph {
	rng := mrand.New(mrand.NewPCG(42, 7))
	T := lineageSteps
	g := &lineageGraph{steps: T}
	runsPer := max(4, nodes*45/100/T)
	dvPer := max(4, nodes*45/100/T)
	mvPer := max(1, nodes/T-runsPer-dvPer)
	trainJobs := min(mvPer, runsPer/2)
	dvJobs := runsPer - trainJobs
	sources := max(1, dvPer/15)
	outs := dvPer - sources // dataset versions written per step
	if outs < dvJobs {
		outs = dvJobs
		sources = max(1, dvPer-outs)
	}
	if outs > 2*dvJobs {
		outs = 2 * dvJobs
		sources = dvPer - outs
	}
	groups := max(1, dvJobs/60)

	buckets := make([][][]int, groups) // [group][layer] → datasets
	for i := range buckets {
		buckets[i] = make([][]int, lineageLayers+1)
	}
	addDataset := func(name string, group, layer int) int {
		g.datasets = append(g.datasets, lgDataset{name, group, layer})
		d := len(g.datasets) - 1
		buckets[group][layer] = append(buckets[group][layer], d)
		return d
	}
	for i := range sources {
		addDataset(fmt.Sprintf("lin-g%02d-src-%03d", i%groups, i), i%groups, 0)
	}
	// dataset jobs: spread over teams, then over layers 1..L
	twoOut := outs - dvJobs
	for i := range dvJobs {
		grp, layer := i%groups, 1+(i/groups)%lineageLayers
		job := lgJob{name: fmt.Sprintf("g%02d.l%d.job%04d", grp, layer, i), group: grp, layer: layer, model: -1}
		n := 1
		if i < twoOut {
			n = 2
		}
		for k := range n {
			job.outputs = append(job.outputs, addDataset(fmt.Sprintf("lin-g%02d-l%d-%04d-%d", grp, layer, i, k), grp, layer))
		}
		g.jobs = append(g.jobs, job)
	}
	for m := range groups {
		g.models = append(g.models, fmt.Sprintf("lin-model-%02d", m))
	}
	g.trainers = make([]int, groups)
	for i := range trainJobs {
		grp := i % groups
		job := lgJob{name: fmt.Sprintf("g%02d.train%04d", grp, i), group: grp, layer: 3 + rng.IntN(lineageLayers-1),
			model: grp, rank: g.trainers[grp], warmStart: rng.IntN(2) == 0}
		g.trainers[grp]++
		g.jobs = append(g.jobs, job)
	}

	// pick an input of a job of layer l of team grp, not among have
	pick := func(grp, l int, have []int) int {
		for range 64 {
			gg := grp
			if rng.Float64() < 0.15 {
				gg = rng.IntN(groups)
			}
			back := 1
			switch r := rng.Float64(); {
			case r > 0.85:
				back = 3 + rng.IntN(max(1, l-2))
			case r > 0.6:
				back = 2
			}
			b := buckets[gg][max(0, l-back)]
			if len(b) == 0 {
				continue
			}
			d := b[rng.IntN(len(b))]
			if !contains(have, d) {
				return d
			}
		}
		return -1
	}
	perJob := func(j *lgJob) int { // edges per step
		n := len(j.inputs) + max(1, len(j.outputs))
		if j.selfRead || j.warmStart {
			n++
		}
		return n
	}
	total := 0
	for j := range g.jobs {
		job := &g.jobs[j]
		for range 2 + rng.IntN(3) {
			if d := pick(job.group, job.layer, job.inputs); d >= 0 {
				job.inputs = append(job.inputs, d)
			}
		}
		job.selfRead = job.model < 0 && rng.Float64() < 0.3
		total += perJob(job)
	}
	// wide jobs (training, and one in five dataset jobs: feature assembly,
	// wide joins) take further inputs until the edges reach the target (a
	// job's input is an edge per step; selfRead and warmStart miss step 0)
	var wide []int
	for j, job := range g.jobs {
		if job.model >= 0 || rng.IntN(5) == 0 {
			wide = append(wide, j)
		}
	}
	for tries := 0; total*T < edges+T/2 && tries < 100*edges; tries++ {
		job := &g.jobs[wide[rng.IntN(len(wide))]]
		if len(job.inputs) >= 24 {
			continue
		}
		if d := pick(job.group, job.layer, job.inputs); d >= 0 {
			job.inputs = append(job.inputs, d)
			total++
		}
	}

	for t := range T {
		for j, job := range g.jobs {
			me := g.run(j, t)
			for _, d := range job.inputs {
				tt := t
				if t > 0 && rng.IntN(10) == 0 {
					tt = t - 1
				}
				g.edges = append(g.edges, [2]lgNode{g.dv(d, tt), me})
			}
			if job.selfRead && t > 0 {
				g.edges = append(g.edges, [2]lgNode{g.dv(job.outputs[0], t-1), me})
			}
			if job.warmStart && t > 0 {
				g.edges = append(g.edges, [2]lgNode{g.mv(j, t-1), me})
			}
			for _, d := range job.outputs {
				g.edges = append(g.edges, [2]lgNode{me, g.dv(d, t)})
			}
			if job.model >= 0 {
				g.edges = append(g.edges, [2]lgNode{me, g.mv(j, t)})
			}
			// roots: versions of the two top layers with a full history
			if job.layer >= lineageLayers-1 && job.model < 0 && t >= T/4 {
				for _, d := range job.outputs {
					g.deepDVs = append(g.deepDVs, g.dv(d, t))
				}
			}
		}
	}
	return g
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// lineageIDs are the database ids of the graph's nodes.
type lineageIDs struct {
	dv, run []int64
	mv      map[int]int64
}

func (ids *lineageIDs) of(n lgNode) int64 {
	switch n.kind {
	case "dataset_version":
		return ids.dv[n.idx]
	case "run":
		return ids.run[n.idx]
	}
	return ids.mv[n.idx]
}

// seedLineage writes the graph into the database with COPY.
func seedLineage(ctx context.Context, conn *pgx.Conn, g *lineageGraph) (*lineageIDs, error) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	T := g.steps
	day0 := time.Date(2026, 10, 1, 2, 0, 0, 0, time.UTC)
	ids := &lineageIDs{dv: make([]int64, len(g.datasets)*T), run: make([]int64, len(g.jobs)*T), mv: map[int]int64{}}
	// commits flushed at once, so that the VACUUM below can set hint bits
	// and the visibility map (the dev PostgreSQL runs synchronous_commit=off)
	if _, err := conn.Exec(ctx, `SET synchronous_commit = on`); err != nil {
		return nil, err
	}

	// datasets, with next_version past the versions below
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"datasets"}, []string{"name", "description", "next_version"},
		pgx.CopyFromSlice(len(g.datasets), func(i int) ([]any, error) {
			return []any{g.datasets[i].name, "lineage benchmark", T + 1}, nil
		})); err != nil {
		return nil, fmt.Errorf("copy datasets: %w", err)
	}
	datasetIdx := map[int64]int{}
	byName := map[string]int{}
	for i, d := range g.datasets {
		byName[d.name] = i
	}
	if err := eachRow(ctx, conn, `SELECT id, name FROM datasets WHERE name LIKE 'lin-%'`, func(r pgx.Rows) error {
		var id int64
		var name string
		if err := r.Scan(&id, &name); err != nil {
			return err
		}
		datasetIdx[id] = byName[name]
		return nil
	}); err != nil {
		return nil, err
	}
	datasetID := make([]int64, len(g.datasets))
	for id, i := range datasetIdx {
		datasetID[i] = id
	}

	// dataset versions: version t+1 of each dataset at step t
	sha := make([]byte, 32)
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"dataset_versions"},
		[]string{"dataset_id", "version", "source_type", "reference", "sha256", "size", "created_at"},
		pgx.CopyFromSlice(len(g.datasets)*T, func(i int) ([]any, error) {
			d, t := i/T, i%T
			for k := range sha {
				sha[k] = byte(rng.Uint32())
			}
			ref := fmt.Sprintf(`{"uri": "s3://bench/%s/v%d/part-0000.parquet"}`, g.datasets[d].name, t+1)
			return []any{datasetID[d], t + 1, "object", json.RawMessage(ref), hex.EncodeToString(sha),
				int64(1<<20 + rng.IntN(1<<30)), day0.Add(time.Duration(t) * 24 * time.Hour)}, nil
		})); err != nil {
		return nil, fmt.Errorf("copy dataset versions: %w", err)
	}
	if err := eachRow(ctx, conn, `SELECT id, dataset_id, version FROM dataset_versions WHERE dataset_id = ANY($1)`, func(r pgx.Rows) error {
		var id, ds int64
		var v int
		if err := r.Scan(&id, &ds, &v); err != nil {
			return err
		}
		ids.dv[datasetIdx[ds]*T+v-1] = id
		return nil
	}, datasetID); err != nil {
		return nil, err
	}

	// runs
	J := len(g.jobs)
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"runs"},
		[]string{"orchestrator", "external_id", "name", "namespace", "status", "started_at", "ended_at"},
		pgx.CopyFromSlice(J*T, func(i int) ([]any, error) {
			t, j := i/J, i%J
			start := day0.Add(time.Duration(t)*24*time.Hour + time.Duration(g.jobs[j].layer)*10*time.Minute)
			return []any{"bench", fmt.Sprintf("lin-%d-%d", t, j), g.jobs[j].name, "bench", "completed",
				start, start.Add(time.Duration(1+rng.IntN(600)) * time.Second)}, nil
		})); err != nil {
		return nil, fmt.Errorf("copy runs: %w", err)
	}
	if err := eachRow(ctx, conn, `SELECT id, external_id FROM runs WHERE orchestrator = 'bench' AND external_id LIKE 'lin-%'`, func(r pgx.Rows) error {
		var id int64
		var ext string
		if err := r.Scan(&id, &ext); err != nil {
			return err
		}
		var t, j int
		fmt.Sscanf(ext, "lin-%d-%d", &t, &j)
		ids.run[t*J+j] = id
		return nil
	}); err != nil {
		return nil, err
	}

	// models and their versions
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"models"}, []string{"name", "description", "next_version"},
		pgx.CopyFromSlice(len(g.models), func(i int) ([]any, error) {
			return []any{g.models[i], "lineage benchmark", g.trainers[i]*T + 1}, nil
		})); err != nil {
		return nil, fmt.Errorf("copy models: %w", err)
	}
	modelIdx := map[int64]int{}
	modelID := make([]int64, len(g.models))
	if err := eachRow(ctx, conn, `SELECT id, name FROM models WHERE name LIKE 'lin-model-%'`, func(r pgx.Rows) error {
		var id int64
		var name string
		if err := r.Scan(&id, &name); err != nil {
			return err
		}
		var m int
		fmt.Sscanf(name, "lin-model-%d", &m)
		modelIdx[id], modelID[m] = m, id
		return nil
	}); err != nil {
		return nil, err
	}
	var mvRows [][]any
	for m, n := range g.trainers {
		for v := 1; v <= n*T; v++ {
			at := day0.Add(time.Duration((v-1)/max(1, n)) * 24 * time.Hour).Add(6 * time.Hour)
			mvRows = append(mvRows, []any{modelID[m], v, "ready", "model", fmt.Sprintf("lineage-bench/%s/%d", g.models[m], v), at, at})
		}
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"model_versions"},
		[]string{"model_id", "version", "status", "kind", "storage_prefix", "created_at", "ready_at"}, pgx.CopyFromRows(mvRows)); err != nil {
		return nil, fmt.Errorf("copy model versions: %w", err)
	}
	if err := eachRow(ctx, conn, `SELECT id, model_id, version FROM model_versions WHERE model_id = ANY($1)`, func(r pgx.Rows) error {
		var id, m int64
		var v int
		if err := r.Scan(&id, &m, &v); err != nil {
			return err
		}
		ids.mv[modelIdx[m]<<32|v] = id
		return nil
	}, modelID); err != nil {
		return nil, err
	}

	// edges
	cols := map[string]int{"dataset_version": 0, "run": 1, "model_version": 2}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"lineage_edges"},
		[]string{"src_dataset_version", "src_run", "src_model_version", "dst_dataset_version", "dst_run", "dst_model_version"},
		pgx.CopyFromSlice(len(g.edges), func(i int) ([]any, error) {
			row := make([]any, 6)
			e := g.edges[i]
			row[cols[e[0].kind]] = ids.of(e[0])
			row[3+cols[e[1].kind]] = ids.of(e[1])
			return row, nil
		})); err != nil {
		return nil, fmt.Errorf("copy lineage edges: %w", err)
	}
	// as autovacuum would have left them: statistics, and a visibility map
	// for index-only scans
	_, err := conn.Exec(ctx, `VACUUM (ANALYZE) datasets, dataset_versions, runs, models, model_versions, lineage_edges`)
	return ids, err
}

func eachRow(ctx context.Context, conn *pgx.Conn, sql string, f func(pgx.Rows) error, args ...any) error {
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// walkSQL is the upstream walk of internal/lineage/graph.go (walk), as is.
const walkSQL = `
		WITH RECURSIVE walk(kind, id, depth) AS (
			SELECT $1::text, $2::bigint, 0
			UNION
			SELECT e.src_kind, e.src_id, w.depth + 1
			FROM walk w JOIN lineage_edges e ON e.dst_kind = w.kind AND e.dst_id = w.id
			WHERE w.depth < $3
		), budget AS (SELECT * FROM walk LIMIT $4)
		SELECT kind, id, min(depth), (SELECT count(*) FROM budget) FROM budget
		GROUP BY kind, id ORDER BY min(depth), kind, id LIMIT $5`

const lineageMaxNodes = 500 // the API's default max_nodes

// walkArgs are the walk's arguments as graph.go passes them.
func walkArgs(kind string, id int64) []any {
	return []any{kind, id, lineageDepth, lineageMaxNodes * 8, lineageMaxNodes + 1}
}

type lineageRoot struct {
	ref  string // for the API
	kind string
	id   int64
}

// lineageResult is what one set of roots measured.
type lineageResult struct {
	http, sql      []time.Duration
	nodes          int // returned, over all roots
	truncated      int
	sqlRows        int // walk rows (before the API's cut to max_nodes)
	errors         int
	firstErr       string
	medianRoot     lineageRoot
	slowestSQLRoot lineageRoot
}

func benchLineage(ctx context.Context, c *client, dbURL string, pid int, o lineageOptions) ([]string, error) {
	start := time.Now()
	g := genLineage(o.nodes, o.edges)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	ids, err := seedLineage(ctx, conn, g)
	if err != nil {
		return nil, err
	}
	nDV, nRun, nMV := len(g.datasets)*g.steps, len(g.jobs)*g.steps, len(ids.mv)
	kinds := map[[2]string]int{}
	for _, e := range g.edges {
		kinds[[2]string{e[0].kind, e[1].kind}]++
	}
	var dbEdges int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM lineage_edges`).Scan(&dbEdges); err != nil {
		return nil, err
	}
	inputs := 0
	for _, j := range g.jobs {
		inputs += len(j.inputs)
	}
	graph := fmt.Sprintf("%d nodes (%d dataset versions of %d datasets, %d runs of %d jobs, %d model versions of %d models), %d edges "+
		"(dataset_version→run %d, model_version→run %d, run→dataset_version %d, run→model_version %d); %.2f static dataset inputs per job",
		nDV+nRun+nMV, nDV, len(g.datasets), nRun, len(g.jobs), nMV, len(g.models), dbEdges,
		kinds[[2]string{"dataset_version", "run"}], kinds[[2]string{"model_version", "run"}],
		kinds[[2]string{"run", "dataset_version"}], kinds[[2]string{"run", "model_version"}], float64(inputs)/float64(len(g.jobs)))
	progress("lineage graph: %s; generated and seeded in %v", graph, time.Since(start).Round(time.Millisecond))
	if dbEdges != len(g.edges) {
		return nil, fmt.Errorf("%d edges generated, %d in the database", len(g.edges), dbEdges)
	}

	// roots: random model versions, and dataset versions of the top layers
	rng := mrand.New(mrand.NewPCG(3, 4))
	var mvRoots, dvRoots []lineageRoot
	for range o.queries {
		m := rng.IntN(len(g.models))
		v := 1 + rng.IntN(g.trainers[m]*g.steps)
		mvRoots = append(mvRoots, lineageRoot{fmt.Sprintf("model_version:%s/%d", g.models[m], v), "model_version", ids.mv[m<<32|v]})
		n := g.deepDVs[rng.IntN(len(g.deepDVs))]
		d, t := n.idx/g.steps, n.idx%g.steps
		dvRoots = append(dvRoots, lineageRoot{fmt.Sprintf("dataset_version:%s/%d", g.datasets[d].name, t+1), "dataset_version", ids.of(n)})
	}

	var rows []string
	for _, set := range []struct {
		what  string
		roots []lineageRoot
	}{{"model versions", mvRoots}, {"dataset versions (top layers)", dvRoots}} {
		r, err := measureLineage(ctx, c, conn, set.roots, pid)
		if err != nil {
			return nil, err
		}
		if r.errors > 0 {
			progress("lineage: %d of %d HTTP queries failed; first: %s", r.errors, len(set.roots), r.firstErr)
		}
		ok := len(r.http)
		sqlP50, httpP50 := pct(r.sql, 50), pct(r.http, 50)
		rows = append(rows, fmt.Sprintf("| lineage upstream depth %d, %d %s, max_nodes %d | walk SQL p50 %v (%.0f rows read mean) | p50 %v, p95 %v, p99 %v; %.1f nodes mean, %d/%d truncated | %.2f× SQL | p50 < 50 ms |",
			lineageDepth, len(set.roots), set.what, lineageMaxNodes, sqlP50, float64(r.sqlRows)/float64(len(set.roots)),
			httpP50, pct(r.http, 95), pct(r.http, 99), float64(r.nodes)/float64(max(1, ok)), r.truncated, ok,
			float64(httpP50)/float64(max(1, sqlP50))))
		if o.explain {
			for _, root := range []lineageRoot{r.medianRoot, r.slowestSQLRoot} {
				if err := explainWalk(ctx, conn, root); err != nil {
					return nil, err
				}
			}
		}
	}
	rows = append([]string{"| lineage graph | | " + graph + " | | 100,000 nodes, 300,000 edges |"}, rows...)
	return rows, nil
}

// measureLineage walks upstream from each root: the SQL alone (a first
// untimed pass warms the cache), then through the API.
func measureLineage(ctx context.Context, c *client, conn *pgx.Conn, roots []lineageRoot, pid int) (lineageResult, error) {
	var r lineageResult
	walk := func(root lineageRoot) (int, error) {
		rows, err := conn.Query(ctx, walkSQL, walkArgs(root.kind, root.id)...)
		if err != nil {
			return 0, err
		}
		n := 0
		for rows.Next() {
			var kind string
			var id int64
			var depth, read int
			if err := rows.Scan(&kind, &id, &depth, &read); err != nil {
				rows.Close()
				return 0, err
			}
			n = read
		}
		rows.Close()
		return n, rows.Err()
	}
	for _, root := range roots {
		if _, err := walk(root); err != nil {
			return r, fmt.Errorf("walk %s: %w", root.ref, err)
		}
	}
	byDur := map[time.Duration]lineageRoot{}
	var slowest time.Duration
	for _, root := range roots {
		t := time.Now()
		n, err := walk(root)
		if err != nil {
			return r, fmt.Errorf("walk %s: %w", root.ref, err)
		}
		d := time.Since(t)
		r.sql = append(r.sql, d)
		r.sqlRows += n
		byDur[d] = root
		if d > slowest {
			slowest, r.slowestSQLRoot = d, root
		}
	}
	sorted := slices.Clone(r.sql)
	slices.Sort(sorted)
	r.medianRoot = byDur[sorted[len(sorted)/2]]

	cpu := sampleCPU(pid)
	defer func() { progress("lineage: %d HTTP queries (%s) in %s", len(roots), roots[0].kind, cpu.since(pid)) }()
	for _, root := range roots {
		q := url.Values{"node": {root.ref}, "direction": {"upstream"}, "depth": {fmt.Sprint(lineageDepth)}}
		t := time.Now()
		res, err := c.do("GET", "/api/v1/lineage?"+q.Encode(), nil, "")
		if err != nil {
			return r, err
		}
		var body struct {
			Nodes     []struct{} `json:"nodes"`
			Truncated bool       `json:"truncated"`
		}
		if res.StatusCode != 200 {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			r.errors++
			if r.firstErr == "" {
				r.firstErr = fmt.Sprintf("%s: %d %s", root.ref, res.StatusCode, strings.TrimSpace(string(b)))
			}
			continue
		}
		err = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if err != nil {
			return r, fmt.Errorf("lineage of %s: %w", root.ref, err)
		}
		r.http = append(r.http, time.Since(t))
		r.nodes += len(body.Nodes)
		if body.Truncated {
			r.truncated++
		}
	}
	return r, nil
}

// edgesSQL is edgesAmong of internal/lineage/graph.go, as is: the edges
// among the nodes found, which the API runs after the walk.
const edgesSQL = `
		SELECT e.src_kind, e.src_id, e.dst_kind, e.dst_id
		FROM unnest($1::text[], $2::bigint[]) AS n(kind, id)
		JOIN lineage_edges e ON e.dst_kind = n.kind AND e.dst_id = n.id
		WHERE (e.src_kind, e.src_id) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))`

// explainWalk prints, on stderr, the plans with timing and buffers of the
// walk from root and of the edges among the nodes it found.
func explainWalk(ctx context.Context, conn *pgx.Conn, root lineageRoot) error {
	var kinds []string
	var nodeIDs []int64
	if err := eachRow(ctx, conn, walkSQL, func(r pgx.Rows) error {
		var kind string
		var id int64
		var depth, read int
		if err := r.Scan(&kind, &id, &depth, &read); err != nil {
			return err
		}
		if len(kinds) < lineageMaxNodes {
			kinds, nodeIDs = append(kinds, kind), append(nodeIDs, id)
		}
		return nil
	}, walkArgs(root.kind, root.id)...); err != nil {
		return err
	}
	for _, q := range []struct {
		what, sql string
		args      []any
	}{
		{"the walk", walkSQL, walkArgs(root.kind, root.id)},
		{fmt.Sprintf("the edges among its %d nodes", len(kinds)), edgesSQL, []any{kinds, nodeIDs}},
	} {
		var b strings.Builder
		if err := eachRow(ctx, conn, "EXPLAIN (ANALYZE, BUFFERS) "+q.sql, func(r pgx.Rows) error {
			var line string
			err := r.Scan(&line)
			b.WriteString(line + "\n")
			return err
		}, q.args...); err != nil {
			return err
		}
		progress("EXPLAIN (ANALYZE, BUFFERS) of %s from %s (id %d):\n%s", q.what, root.ref, root.id, b.String())
	}
	return nil
}
