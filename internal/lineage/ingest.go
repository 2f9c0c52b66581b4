package lineage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/database"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/lineage/openlineage"
)

// OrchestratorOpenLineage is the orchestrator of runs that OpenLineage
// events report; their external id is the event's runId.
const OrchestratorOpenLineage = "openlineage"

// Ingested says what an OpenLineage event did.
type Ingested struct {
	RunID   int64  `json:"run_id"`
	Status  string `json:"status"`
	Created bool   `json:"created"` // the run is new
	Changed bool   `json:"changed"` // anything was written; false for a repeated event
	// Inputs and Outputs are the dataset versions this event named.
	Inputs  []IORef `json:"inputs"`
	Outputs []IORef `json:"outputs"`
}

var commitLike = regexp.MustCompile(`^[0-9a-f]{7,64}$`)

// IngestOpenLineage applies one OpenLineage RunEvent, in one transaction:
// the job's run (keyed by runId) is created or brought up to date, its
// parent run recorded, its input and output datasets created as needed
// (named after their OpenLineage namespace and name), and edges added.
//
//   - Inputs resolve to the version named by the dataset's version facet,
//     else to the version this run already read, else to the latest
//     version, else to a first version observed here.
//   - Outputs become versions on COMPLETE only (the data exists then): one
//     version per run and dataset, so a repeated event adds nothing.
//   - Facets are kept as received, unknown ones included; a later event's
//     facet replaces the same facet of an earlier one.
//   - A finished run keeps its status; an older event arriving late does
//     not move it back.
func (s *Service) IngestOpenLineage(ctx context.Context, body []byte) (Ingested, error) {
	if bytes.Contains(body, []byte(`\u0000`)) {
		return Ingested{}, errs.Invalid("body", `must not hold the escape \u0000: PostgreSQL's JSON cannot store it`)
	}
	ev, err := openlineage.Parse(body)
	if err != nil {
		return Ingested{}, err
	}
	parent, err := ev.Run.Parent()
	if err != nil {
		return Ingested{}, err
	}
	items := eventDatasets(ev)
	var out Ingested
	// An event takes few round trips to the database, whatever it names:
	// BEGIN and one batch read the parent run, the run (locked), its
	// datasets and their versions; statements write only what is new; a
	// last batch updates the run, adds the edges and the audit entry, and
	// commits.
	first := &pgx.Batch{}
	if parent != nil {
		first.Queue(`SELECT id FROM runs WHERE orchestrator = $1 AND external_id = $2`, OrchestratorOpenLineage, parent.RunID)
	}
	first.Queue(lockRunSQL, OrchestratorOpenLineage, ev.Run.RunID)
	if len(items) > 0 {
		sql, args := resolveDatasets(items, OrchestratorOpenLineage, ev.Run.RunID)
		first.Queue(sql, args...)
	}
	err = database.Pipeline(ctx, s.db, first, func(tx database.Querier, br pgx.BatchResults) (*pgx.Batch, error) {
		out = Ingested{Inputs: []IORef{}, Outputs: []IORef{}}
		var parentID int64
		if parent != nil {
			if err := br.QueryRow().Scan(&parentID); err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return nil, fmt.Errorf("record the parent run: %w", err)
			}
		}
		old, err := scanRunState(br.QueryRow())
		if err != nil {
			return nil, err
		}
		var known []resolved
		if len(items) > 0 {
			rows, err := br.Query()
			if err != nil {
				return nil, fmt.Errorf("find the event's datasets: %w", err)
			}
			if known, err = scanResolved(rows, len(items)); err != nil {
				return nil, err
			}
		}
		if err := br.Close(); err != nil {
			return nil, fmt.Errorf("read the event's run and datasets: %w", err)
		}
		if parent != nil && parentID == 0 {
			// the first word of the parent run
			if parentID, err = ensureRun(ctx, tx, parent.RunID, parent.JobNamespace, parent.JobName); err != nil {
				return nil, err
			}
		}

		writes := &pgx.Batch{}
		run, created, changed, raced, err := applyRunEvent(ctx, tx, ev, parentID, old, writes)
		if err != nil {
			return nil, err
		}
		if raced && len(items) > 0 {
			// a concurrent event created the run after the batch read its
			// datasets: read them again, now that the run is locked
			sql, args := resolveDatasets(items, OrchestratorOpenLineage, ev.Run.RunID)
			rows, err := tx.Query(ctx, sql, args...)
			if err != nil {
				return nil, fmt.Errorf("find the event's datasets: %w", err)
			}
			if known, err = scanResolved(rows, len(items)); err != nil {
				return nil, err
			}
		}
		out.RunID, out.Status, out.Created = run.ID, run.Status, created
		me := node{KindRun, run.ID}
		var edges []edge
		linked := false // an edge is new
		made := &madeLog{}
		// in the order of eventDatasets, so that concurrent events take the
		// locks of dataset rows in one order
		for i, it := range items {
			dv, ref, err := s.eventVersion(ctx, tx, it, known[i], run.ID, made)
			if err != nil {
				return nil, err
			}
			linked = linked || !known[i].linked
			if it.output {
				edges = append(edges, edge{me, dv})
				out.Outputs = append(out.Outputs, ref)
			} else {
				edges = append(edges, edge{dv, me})
				out.Inputs = append(out.Inputs, ref)
			}
		}
		out.Changed = changed || linked || len(made.datasets)+len(made.versions) > 0
		if !out.Changed {
			return writes, nil
		}
		if len(edges) > 0 {
			sql, args := edgesInsert(edges)
			writes.Queue(sql, args...)
		}
		// one audit entry per event, naming what it created
		return writes, audit.Queue(ctx, writes, audit.Entry{Action: "openlineage.event", TargetType: "run", TargetID: fmt.Sprint(run.ID),
			After: map[string]any{"event_type": ev.EventType, "event_time": ev.EventTime, "run_id": ev.Run.RunID,
				"job": ev.Job.Namespace + "/" + ev.Job.Name, "status": run.Status, "inputs": out.Inputs, "outputs": out.Outputs,
				"datasets_created": made.datasets, "dataset_versions_created": made.versions}})
	})
	return out, err
}

// eventVersion resolves the dataset version an event reads or writes,
// creating the dataset and the version as needed; known is what the
// event's first batch found of them.
func (s *Service) eventVersion(ctx context.Context, tx database.Querier, it eventDataset, known resolved, runID int64, made *madeLog) (node, IORef, error) {
	if !known.found {
		// unknown when the batch ran: create it, or find it if a concurrent
		// event did, and resolve the version from scratch
		ds, err := s.olDataset(ctx, tx, it.Dataset, made)
		if err != nil {
			return node{}, IORef{}, err
		}
		if it.output {
			return outputVersion(ctx, tx, ds, runID, it.Dataset, made)
		}
		return inputVersion(ctx, tx, ds, runID, it.Dataset, made)
	}
	ds := known.dataset
	switch {
	case known.versionID != 0:
		return node{KindDatasetVersion, known.versionID}, IORef{Dataset: ds.Name, Version: known.version}, nil
	case it.Version() != "":
		var producer int64
		if it.output {
			producer = runID
		}
		return versionByExternal(ctx, tx, ds, it.Dataset, it.Version(), producer, made)
	case it.output:
		// the run is locked: no other event makes this run's version
		return newOLVersion(ctx, tx, ds, it.Dataset, runID, "", made)
	}
	// an input of a dataset that has no version yet
	return newOLVersion(ctx, tx, ds, it.Dataset, 0, "", made)
}

// resolved is what the first batch found of one dataset of an event.
type resolved struct {
	found     bool
	dataset   Dataset
	versionID int64 // 0: no version found
	version   int
	linked    bool // the run's edge to that version exists
}

// resolveDatasets is the statement that finds the datasets of an event by
// their OpenLineage names and, for each, the version the event means: for
// a version facet, the version of that external id; for an output, the
// version the run wrote; for an input, the version the run read already,
// else the latest. It answers one row per dataset found, with its position
// in items (from 1), and whether the run's edge to the version exists.
func resolveDatasets(items []eventDataset, orchestrator, externalID string) (string, []any) {
	ns, names, ext, output := make([]string, len(items)), make([]string, len(items)), make([]string, len(items)), make([]bool, len(items))
	for i, it := range items {
		ns[i], names[i], ext[i], output[i] = it.Namespace, it.Name, it.Version(), it.output
	}
	return `
		WITH r AS (SELECT (SELECT id FROM runs WHERE orchestrator = $5 AND external_id = $6) AS id)
		SELECT t.ord, ` + datasetColumns + `, v.id, v.version,
		       EXISTS (SELECT FROM lineage_edges e WHERE t.output AND e.src_kind = 'run' AND e.src_id = r.id
		                                                AND e.dst_kind = 'dataset_version' AND e.dst_id = v.id
		               UNION ALL
		               SELECT FROM lineage_edges e WHERE NOT t.output AND e.src_kind = 'dataset_version' AND e.src_id = v.id
		                                                AND e.dst_kind = 'run' AND e.dst_id = r.id)
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[]) WITH ORDINALITY AS t(ns, name, ext, output, ord)
		CROSS JOIN r
		JOIN datasets d ON d.ol_namespace = t.ns AND d.ol_name = t.name
		LEFT JOIN users u ON u.id = d.created_by
		LEFT JOIN LATERAL (
			SELECT c.id, c.version FROM (
				(SELECT dv.id, dv.version, 0 AS pref FROM dataset_versions dv
				 WHERE t.ext <> '' AND dv.dataset_id = d.id AND dv.external_version = t.ext)
				UNION ALL
				(SELECT dv.id, dv.version, 1 FROM dataset_versions dv
				 WHERE t.ext = '' AND t.output AND dv.dataset_id = d.id AND dv.produced_by = r.id)
				UNION ALL
				(SELECT dv.id, dv.version, 2 FROM lineage_edges e JOIN dataset_versions dv ON dv.id = e.src_dataset_version
				 WHERE t.ext = '' AND NOT t.output AND e.dst_kind = 'run' AND e.dst_id = r.id AND e.src_kind = 'dataset_version'
				   AND dv.dataset_id = d.id
				 ORDER BY dv.version DESC LIMIT 1)
				UNION ALL
				(SELECT dv.id, dv.version, 3 FROM dataset_versions dv
				 WHERE t.ext = '' AND NOT t.output AND dv.dataset_id = d.id
				 ORDER BY dv.version DESC LIMIT 1)
			) c ORDER BY c.pref LIMIT 1) v ON true`, []any{ns, names, ext, output, orchestrator, externalID}
}

func scanResolved(rows pgx.Rows, n int) ([]resolved, error) {
	defer rows.Close()
	out := make([]resolved, n)
	for rows.Next() {
		var ord int
		var ds datasetScan
		var vid *int64
		var version *int
		var linked bool
		if err := rows.Scan(append(append([]any{&ord}, ds.dest()...), &vid, &version, &linked)...); err != nil {
			return nil, fmt.Errorf("find the event's datasets: %w", err)
		}
		r := resolved{found: true, dataset: ds.dataset(), linked: linked}
		if vid != nil {
			r.versionID, r.version = *vid, *version
		}
		out[ord-1] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find the event's datasets: %w", err)
	}
	return out, nil
}

// madeLog lists what an event created, for its audit entry.
type madeLog struct {
	datasets []string
	versions []string
}

type eventDataset struct {
	openlineage.Dataset
	output bool
}

// eventDatasets lists the datasets an event reads, and those it wrote if
// it completes the run, ordered by namespace and name.
func eventDatasets(ev openlineage.RunEvent) []eventDataset {
	var out []eventDataset
	for _, d := range ev.Inputs {
		out = append(out, eventDataset{d, false})
	}
	if ev.EventType == openlineage.Complete {
		for _, d := range ev.Outputs {
			out = append(out, eventDataset{d, true})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out
}

// ensureRun returns the run of an OpenLineage runId, recording it if this
// is the first word of it (a parent named before it reports).
func ensureRun(ctx context.Context, tx database.Querier, runID, namespace, name string) (int64, error) {
	// ON CONFLICT waits for a concurrent event inserting the same run, and
	// then a second statement sees its row
	var id int64
	err := tx.QueryRow(ctx, `
		INSERT INTO runs (orchestrator, external_id, name, namespace, status)
		VALUES ($1, $2, $3, $4, 'running') ON CONFLICT (orchestrator, external_id) DO NOTHING RETURNING id`,
		OrchestratorOpenLineage, runID, name, namespace).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		err = tx.QueryRow(ctx, `SELECT id FROM runs WHERE orchestrator = $1 AND external_id = $2`, OrchestratorOpenLineage, runID).Scan(&id)
	}
	if err != nil {
		return 0, fmt.Errorf("record the parent run: %w", err)
	}
	return id, nil
}

// lockRunSQL reads a run with the fields an event may change, and locks
// it until the transaction ends.
const lockRunSQL = `
	SELECT id, name, namespace, status, git_repo, git_commit, error_message, facets, job_facets, parent_id, started_at, ended_at, event_time
	FROM runs WHERE orchestrator = $1 AND external_id = $2 FOR UPDATE`

// runState is a run as lockRunSQL reads it.
type runState struct {
	Run
	parent    *int64
	eventTime *time.Time
}

// scanRunState reads the row of lockRunSQL: nil when there is none.
func scanRunState(row pgx.Row) (*runState, error) {
	var old runState
	err := row.Scan(&old.ID, &old.Name, &old.Namespace, &old.Status, &old.Git.Repo, &old.Git.Commit, &old.ErrorMessage, &old.Facets,
		&old.JobFacets, &old.parent, &old.StartedAt, &old.EndedAt, &old.eventTime)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the run: %w", err)
	}
	return &old, nil
}

func statusOf(eventType string) string {
	switch eventType {
	case openlineage.Start, openlineage.Running:
		return RunRunning
	case openlineage.Complete:
		return RunCompleted
	case openlineage.Fail:
		return RunFailed
	case openlineage.Abort:
		return RunAborted
	}
	return "" // OTHER: no word on the status
}

// applyRunEvent creates the run an event reports on (old is nil), or
// queues the update of it on writes. raced reports that a concurrent event
// created the run first; the event then updates the run that one made.
func applyRunEvent(ctx context.Context, tx database.Querier, ev openlineage.RunEvent, parentID int64, old *runState, writes *pgx.Batch) (run Run, created, changed, raced bool, err error) {
	if old == nil {
		next, _, err := nextRun(runState{Run: Run{Status: RunRunning, Name: ev.Job.Name, Namespace: ev.Job.Namespace}}, ev, parentID)
		if err != nil {
			return Run{}, false, false, false, err
		}
		err = tx.QueryRow(ctx, `
			INSERT INTO runs (orchestrator, external_id, name, namespace, status, git_repo, git_commit, error_message,
			                  facets, job_facets, parent_id, started_at, ended_at, event_time)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
			ON CONFLICT (orchestrator, external_id) DO NOTHING RETURNING id`,
			OrchestratorOpenLineage, ev.Run.RunID, next.Name, next.Namespace, next.Status, next.Git.Repo, next.Git.Commit, next.ErrorMessage,
			next.Facets, next.JobFacets, next.parent, next.StartedAt, next.EndedAt, next.eventTime).Scan(&next.ID)
		if err == nil {
			return next.Run, true, true, false, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return Run{}, false, false, false, fmt.Errorf("record the run: %w", err)
		}
		// the insert waited for a concurrent event's run, which is
		// committed now
		raced = true
		if old, err = scanRunState(tx.QueryRow(ctx, lockRunSQL, OrchestratorOpenLineage, ev.Run.RunID)); err != nil {
			return Run{}, false, false, false, err
		}
		if old == nil {
			return Run{}, false, false, false, fmt.Errorf("run %s vanished while being recorded: %w", ev.Run.RunID, errs.ErrConflict)
		}
	}
	next, changed, err := nextRun(*old, ev, parentID)
	if err != nil {
		return Run{}, false, false, false, err
	}
	if changed || !sameTime(next.eventTime, old.eventTime) {
		writes.Queue(`
			UPDATE runs SET name = $2, namespace = $3, status = $4, git_repo = $5, git_commit = $6, error_message = $7,
			                facets = $8, job_facets = $9, parent_id = $10, started_at = $11, ended_at = $12, event_time = $13,
			                updated_at = CASE WHEN $14 THEN now() ELSE updated_at END
			WHERE id = $1`, old.ID, next.Name, next.Namespace, next.Status, next.Git.Repo, next.Git.Commit, next.ErrorMessage,
			next.Facets, next.JobFacets, next.parent, next.StartedAt, next.EndedAt, next.eventTime, changed)
	}
	return next.Run, false, changed, raced, nil
}

// nextRun is the state of a run once an event is applied to old, and
// whether anything but the time of the latest event changed.
func nextRun(old runState, ev openlineage.RunEvent, parentID int64) (runState, bool, error) {
	next := old
	at := ev.EventTime.UTC()
	latest := old.eventTime == nil || !at.Before(*old.eventTime)
	if st := statusOf(ev.EventType); st != "" && !finished(old.Status) && (latest || finished(st)) {
		next.Status = st
	}
	if ev.EventType == openlineage.Start && (next.StartedAt == nil || at.Before(*next.StartedAt)) {
		next.StartedAt = &at
	}
	if next.StartedAt == nil {
		if ns := ev.Run.NominalStart(); ns != nil {
			t := ns.UTC()
			next.StartedAt = &t
		}
	}
	if ev.Terminal() && next.EndedAt == nil {
		next.EndedAt = &at
	}
	// clocks of producers differ: a start reported after the end is taken
	// as the end, so the run's times stay in order
	if next.StartedAt != nil && next.EndedAt != nil && next.StartedAt.After(*next.EndedAt) {
		if next.EndedAt == old.EndedAt {
			next.StartedAt = next.EndedAt
		} else {
			next.EndedAt = next.StartedAt
		}
	}
	if next.Name == "" {
		next.Name, next.Namespace = ev.Job.Name, ev.Job.Namespace
	}
	if msg := ev.Run.ErrorMessage(); msg != "" {
		next.ErrorMessage = msg
	}
	if sc := ev.Job.SourceCode(); sc != nil {
		if repo := firstNonEmpty(sc.RepoURL, sc.URL); repo != "" && next.Git.Repo == "" {
			next.Git.Repo = repo
		}
		if commitLike.MatchString(sc.Version) && next.Git.Commit == "" {
			next.Git.Commit = sc.Version
		}
	}
	var err error
	if next.Facets, err = mergeFacets(old.Facets, ev.Run.Facets, latest); err != nil {
		return runState{}, false, err
	}
	if next.JobFacets, err = mergeFacets(old.JobFacets, ev.Job.Facets, latest); err != nil {
		return runState{}, false, err
	}
	if parentID != 0 && parentID != old.ID {
		next.parent = &parentID
	}
	if latest {
		next.eventTime = &at
	}
	changed := next.Status != old.Status || next.Name != old.Name || next.ErrorMessage != old.ErrorMessage ||
		next.Git != old.Git || !sameTime(next.StartedAt, old.StartedAt) || !sameTime(next.EndedAt, old.EndedAt) ||
		!jsonEqual(next.Facets, old.Facets) || !jsonEqual(next.JobFacets, old.JobFacets) ||
		(next.parent == nil) != (old.parent == nil) || (next.parent != nil && old.parent != nil && *next.parent != *old.parent)
	return next, changed, nil
}

func sameTime(a, b *time.Time) bool {
	return a == nil && b == nil || a != nil && b != nil && a.Equal(*b)
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// mergeFacets lays the facets of an event over those kept: all of them when
// the event is the latest of its run, only new ones when an older event
// arrives late.
func mergeFacets(kept json.RawMessage, add openlineage.Facets, latest bool) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(kept) > 0 {
		if err := json.Unmarshal(kept, &m); err != nil {
			return nil, fmt.Errorf("kept facets: %w", err)
		}
	}
	for k, v := range add {
		if _, ok := m[k]; ok && !latest {
			continue
		}
		m[k] = v
	}
	return json.Marshal(m)
}

// olDataset finds or creates the dataset an OpenLineage dataset names. Its
// row is not locked: numbering a new version locks it.
func (s *Service) olDataset(ctx context.Context, tx database.Querier, d openlineage.Dataset, made *madeLog) (Dataset, error) {
	find := func() (Dataset, error) {
		return scanDataset(tx.QueryRow(ctx, `SELECT `+datasetColumns+datasetFrom+`
			WHERE d.ol_namespace = $1 AND d.ol_name = $2`, d.Namespace, d.Name))
	}
	ds, err := find()
	if err == nil {
		return ds, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Dataset{}, fmt.Errorf("find dataset: %w", err)
	}
	for _, name := range datasetNames(d.Namespace, d.Name) {
		var id int64
		err := tx.QueryRow(ctx, `
			INSERT INTO datasets (name, description, ol_namespace, ol_name, created_by)
			VALUES ($1, '', $2, $3, nullif($4, 0)) ON CONFLICT DO NOTHING RETURNING id`,
			name, d.Namespace, d.Name, audit.ActorFrom(ctx).UserID).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			// the name is taken, or a concurrent event created this dataset
			if ds, err := find(); err == nil {
				return ds, nil
			}
			continue
		}
		if err != nil {
			return Dataset{}, fmt.Errorf("create dataset: %w", err)
		}
		made.datasets = append(made.datasets, name)
		return Dataset{ID: id, Name: name, Tags: map[string]string{}, OpenLineage: &OpenLineageName{Namespace: d.Namespace, Name: d.Name}}, nil
	}
	return Dataset{}, fmt.Errorf("no free name for OpenLineage dataset %s %s: %w", d.Namespace, d.Name, errs.ErrConflict)
}

var unsafeNameChars = regexp.MustCompile(`[^a-z0-9._-]+`)

// datasetNames proposes Slipway names for an OpenLineage dataset: its name
// in lower case with other characters as '-', then the same with a short
// hash of namespace and name when that is taken.
func datasetNames(namespace, name string) []string {
	base := strings.Trim(unsafeNameChars.ReplaceAllString(strings.ToLower(name), "-"), "-._")
	if base == "" {
		base = "dataset"
	}
	sum := sha256.Sum256([]byte(namespace + "\x00" + name))
	suffix := "-" + hex.EncodeToString(sum[:4])
	short := base
	if len(short) > 128 {
		short = short[:128]
	}
	hashed := base
	if len(hashed) > 128-len(suffix) {
		hashed = hashed[:128-len(suffix)]
	}
	return []string{strings.TrimRight(short, "-._"), strings.TrimRight(hashed, "-._") + suffix, strings.TrimRight(hashed, "-._") + "-" + hex.EncodeToString(sum[4:8])}
}

// olVersionInput is a version observed in an event: its schema and figures.
func olVersionInput(d openlineage.Dataset, runID int64, external string) (NewDatasetVersion, error) {
	in := NewDatasetVersion{Type: TypeOpenLineage, Reference: Reference{Namespace: d.Namespace, Name: d.Name}, ExternalVersion: external,
		RowCount: d.RowCount(), Size: d.Bytes(), producedBy: runID}
	for _, f := range d.Schema() {
		in.Schema = append(in.Schema, Column{Name: f.Name, Type: f.Type, Description: f.Description})
	}
	if stats := d.ColumnStats(); len(stats) > 0 {
		in.Statistics = Statistics{}
		for col, cs := range stats {
			m := map[string]any{}
			put := func(k string, v *float64) {
				if v != nil {
					m[k] = *v
				}
			}
			if cs.NullCount != nil {
				m["null_count"] = float64(*cs.NullCount)
			}
			if cs.DistinctCount != nil {
				m["distinct_count"] = float64(*cs.DistinctCount)
			}
			put("sum", cs.Sum)
			put("count", cs.Count)
			put("min", cs.Min)
			put("max", cs.Max)
			in.Statistics[col] = m
		}
	}
	facets := map[string]json.RawMessage{}
	for k, v := range d.Facets {
		facets[k] = v
	}
	for k, v := range d.InputFacets {
		facets["input:"+k] = v
	}
	for k, v := range d.OutputFacets {
		facets["output:"+k] = v
	}
	var err error
	if in.facets, err = json.Marshal(facets); err != nil {
		return in, err
	}
	// names and types from another system may break Slipway's rules
	// (lengths, duplicates): keep what fits rather than refuse the event
	in.Schema = fitSchema(in.Schema)
	return in, in.Validate()
}

func fitSchema(cols []Column) []Column {
	out := []Column{}
	seen := map[string]bool{}
	for _, c := range cols {
		if c.Name == "" || seen[c.Name] || len(c.Name) > 256 || len(out) == maxColumns {
			continue
		}
		seen[c.Name] = true
		if len(c.Type) > 256 {
			c.Type = c.Type[:256]
		}
		if len(c.Description) > 2000 {
			c.Description = ""
		}
		out = append(out, c)
	}
	return out
}

// newOLVersion records a version an event observed or wrote.
func newOLVersion(ctx context.Context, tx database.Querier, ds Dataset, d openlineage.Dataset, producer int64, external string, made *madeLog) (node, IORef, error) {
	in, err := olVersionInput(d, producer, external)
	if err != nil {
		return node{}, IORef{}, err
	}
	id, number, err := insertVersionRow(ctx, tx, ds, in, nil)
	if err != nil {
		return node{}, IORef{}, err
	}
	made.versions = append(made.versions, fmt.Sprintf("%s/%d", ds.Name, number))
	return node{KindDatasetVersion, id}, IORef{Dataset: ds.Name, Version: number}, nil
}

// inputVersion resolves the version of an input dataset that a run read:
// the one its version facet names, else the one this run already read,
// else the latest, else a first version observed here.
func inputVersion(ctx context.Context, tx database.Querier, ds Dataset, runID int64, d openlineage.Dataset, made *madeLog) (node, IORef, error) {
	if v := d.Version(); v != "" {
		return versionByExternal(ctx, tx, ds, d, v, 0, made)
	}
	var id int64
	var number int
	err := tx.QueryRow(ctx, `
		SELECT id, version FROM (
			(SELECT dv.id, dv.version, 0 AS pref FROM lineage_edges e JOIN dataset_versions dv ON dv.id = e.src_dataset_version
			 WHERE e.dst_kind = 'run' AND e.dst_id = $1 AND e.src_kind = 'dataset_version' AND dv.dataset_id = $2
			 ORDER BY dv.version DESC LIMIT 1)
			UNION ALL
			(SELECT id, version, 1 FROM dataset_versions WHERE dataset_id = $2 ORDER BY version DESC LIMIT 1)) c
		ORDER BY pref LIMIT 1`, runID, ds.ID).Scan(&id, &number)
	if err == nil {
		return node{KindDatasetVersion, id}, IORef{Dataset: ds.Name, Version: number}, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return node{}, IORef{}, fmt.Errorf("find the input version: %w", err)
	}
	return newOLVersion(ctx, tx, ds, d, 0, "", made)
}

// outputVersion resolves the version a completed run wrote: one per run
// and dataset (or per version facet).
func outputVersion(ctx context.Context, tx database.Querier, ds Dataset, runID int64, d openlineage.Dataset, made *madeLog) (node, IORef, error) {
	if v := d.Version(); v != "" {
		return versionByExternal(ctx, tx, ds, d, v, runID, made)
	}
	var id int64
	var number int
	err := tx.QueryRow(ctx, `SELECT id, version FROM dataset_versions WHERE dataset_id = $1 AND produced_by = $2`, ds.ID, runID).Scan(&id, &number)
	if err == nil {
		return node{KindDatasetVersion, id}, IORef{Dataset: ds.Name, Version: number}, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return node{}, IORef{}, fmt.Errorf("find the output version: %w", err)
	}
	return newOLVersion(ctx, tx, ds, d, runID, "", made)
}

// versionByExternal finds or creates the version a dataset version facet
// names.
func versionByExternal(ctx context.Context, tx database.Querier, ds Dataset, d openlineage.Dataset, external string, producer int64, made *madeLog) (node, IORef, error) {
	if len(external) > 512 {
		return node{}, IORef{}, errs.Invalid("version", "dataset version facets of at most 512 bytes are supported")
	}
	var id int64
	var number int
	var producedBy *int64
	err := tx.QueryRow(ctx, `SELECT id, version FROM dataset_versions WHERE dataset_id = $1 AND external_version = $2`, ds.ID, external).Scan(&id, &number)
	if err == nil {
		return node{KindDatasetVersion, id}, IORef{Dataset: ds.Name, Version: number}, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return node{}, IORef{}, fmt.Errorf("find the dataset version: %w", err)
	}
	if producer != 0 {
		err := tx.QueryRow(ctx, `SELECT produced_by FROM dataset_versions WHERE dataset_id = $1 AND produced_by = $2`, ds.ID, producer).Scan(&producedBy)
		switch {
		case err == nil:
			producer = 0 // a second version written by one run: record it, without the one-per-run key
		case !errors.Is(err, pgx.ErrNoRows):
			return node{}, IORef{}, fmt.Errorf("find the dataset version: %w", err)
		}
	}
	return newOLVersion(ctx, tx, ds, d, producer, external, made)
}
