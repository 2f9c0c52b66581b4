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
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/lineage/openlineage"
)

// OrchestratorOpenLineage is the orchestrator of runs that OpenLineage
// events report; their external id is the event's runId.
const OrchestratorOpenLineage = "openlineage"

// Ingested says what an OpenLineage event did.
type Ingested struct {
	RunID   int64   `json:"run_id"`
	Status  string  `json:"status"`
	Created bool    `json:"created"` // the run is new
	Changed bool    `json:"changed"` // anything was written; false for a repeated event
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
	var out Ingested
	err = pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		out = Ingested{}
		var parentID int64
		if parent != nil {
			parentID, err = ensureOpenLineageRun(ctx, tx, parent.RunID, parent.JobNamespace, parent.JobName)
			if err != nil {
				return err
			}
		}
		run, created, changed, err := applyRunEvent(ctx, tx, ev, parentID)
		if err != nil {
			return err
		}
		out.RunID, out.Status, out.Created, out.Changed = run.ID, run.Status, created, changed
		me := node{KindRun, run.ID}
		var edges []edge
		for _, d := range sortedDatasets(ev.Inputs) {
			dv, made, err := s.inputVersion(ctx, tx, run.ID, d)
			if err != nil {
				return err
			}
			out.Changed = out.Changed || made
			edges = append(edges, edge{dv, me})
		}
		if ev.EventType == openlineage.Complete {
			for _, d := range sortedDatasets(ev.Outputs) {
				dv, made, err := s.outputVersion(ctx, tx, run.ID, d)
				if err != nil {
					return err
				}
				out.Changed = out.Changed || made
				edges = append(edges, edge{me, dv})
			}
		}
		added, err := insertEdges(ctx, tx, edges)
		if err != nil {
			return err
		}
		out.Changed = out.Changed || added > 0
		if out.Inputs, out.Outputs, err = runIO(ctx, tx, run.ID); err != nil {
			return err
		}
		if !out.Changed {
			return nil
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "openlineage.event", TargetType: "run", TargetID: fmt.Sprint(run.ID),
			After: map[string]any{"event_type": ev.EventType, "event_time": ev.EventTime, "run_id": ev.Run.RunID,
				"job": ev.Job.Namespace + "/" + ev.Job.Name, "status": run.Status, "edges_added": added}})
	})
	return out, err
}

// sortedDatasets orders datasets by namespace and name, so concurrent
// events lock dataset rows in one order.
func sortedDatasets(ds []openlineage.Dataset) []openlineage.Dataset {
	out := append([]openlineage.Dataset(nil), ds...)
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].Namespace+"\x00"+out[i].Name < out[j].Namespace+"\x00"+out[j].Name
	})
	return out
}

// ensureOpenLineageRun returns the run of an OpenLineage runId, recording
// it if this is the first word of it (a parent named before it reports).
func ensureOpenLineageRun(ctx context.Context, tx pgx.Tx, runID, namespace, name string) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO runs (orchestrator, external_id, name, namespace, status)
			VALUES ($1, $2, $3, $4, 'running') ON CONFLICT (orchestrator, external_id) DO NOTHING RETURNING id)
		SELECT id FROM ins UNION ALL SELECT id FROM runs WHERE orchestrator = $1 AND external_id = $2 LIMIT 1`,
		OrchestratorOpenLineage, runID, name, namespace).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("record the parent run: %w", err)
	}
	return id, nil
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

// applyRunEvent creates or updates the run an event reports on.
func applyRunEvent(ctx context.Context, tx pgx.Tx, ev openlineage.RunEvent, parentID int64) (Run, bool, bool, error) {
	var id int64
	err := tx.QueryRow(ctx, `
		INSERT INTO runs (orchestrator, external_id, name, namespace, status)
		VALUES ($1, $2, $3, $4, 'running') ON CONFLICT (orchestrator, external_id) DO NOTHING RETURNING id`,
		OrchestratorOpenLineage, ev.Run.RunID, ev.Job.Name, ev.Job.Namespace).Scan(&id)
	created := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Run{}, false, false, fmt.Errorf("record the run: %w", err)
	}
	var old struct {
		Run
		eventTime *time.Time
	}
	var parent *int64
	err = tx.QueryRow(ctx, `
		SELECT id, name, namespace, status, git_repo, git_commit, error_message, facets, job_facets, parent_id, started_at, ended_at, event_time
		FROM runs WHERE orchestrator = $1 AND external_id = $2 FOR UPDATE`, OrchestratorOpenLineage, ev.Run.RunID).Scan(
		&old.ID, &old.Name, &old.Namespace, &old.Status, &old.Git.Repo, &old.Git.Commit, &old.ErrorMessage, &old.Facets, &old.JobFacets,
		&parent, &old.StartedAt, &old.EndedAt, &old.eventTime)
	if err != nil {
		return Run{}, false, false, fmt.Errorf("read the run: %w", err)
	}
	next := old.Run
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
	facets, err := mergeFacets(old.Facets, ev.Run.Facets, latest)
	if err != nil {
		return Run{}, false, false, err
	}
	jobFacets, err := mergeFacets(old.JobFacets, ev.Job.Facets, latest)
	if err != nil {
		return Run{}, false, false, err
	}
	nextParent := parent
	if parentID != 0 && parentID != old.ID {
		nextParent = &parentID
	}
	eventTime := old.eventTime
	if latest {
		eventTime = &at
	}
	changed := created || next.Status != old.Status || next.Name != old.Name || next.ErrorMessage != old.ErrorMessage ||
		next.Git != old.Git || !sameTime(next.StartedAt, old.StartedAt) || !sameTime(next.EndedAt, old.EndedAt) ||
		!jsonEqual(facets, old.Facets) || !jsonEqual(jobFacets, old.JobFacets) ||
		(nextParent == nil) != (parent == nil) || (nextParent != nil && parent != nil && *nextParent != *parent)
	if changed || !sameTime(eventTime, old.eventTime) {
		if _, err := tx.Exec(ctx, `
			UPDATE runs SET name = $2, namespace = $3, status = $4, git_repo = $5, git_commit = $6, error_message = $7,
			                facets = $8, job_facets = $9, parent_id = $10, started_at = $11, ended_at = $12, event_time = $13,
			                updated_at = CASE WHEN $14 THEN now() ELSE updated_at END
			WHERE id = $1`, old.ID, next.Name, next.Namespace, next.Status, next.Git.Repo, next.Git.Commit, next.ErrorMessage,
			facets, jobFacets, nextParent, next.StartedAt, next.EndedAt, eventTime, changed); err != nil {
			return Run{}, false, false, fmt.Errorf("update the run: %w", err)
		}
	}
	return next, created, changed, nil
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

// olDataset finds or creates the dataset an OpenLineage dataset names,
// locked for the rest of the transaction.
func (s *Service) olDataset(ctx context.Context, tx pgx.Tx, d openlineage.Dataset) (Dataset, bool, error) {
	find := func() (Dataset, error) {
		return scanDataset(tx.QueryRow(ctx, `SELECT `+datasetColumns+datasetFrom+`
			WHERE d.ol_namespace = $1 AND d.ol_name = $2 FOR UPDATE OF d`, d.Namespace, d.Name))
	}
	ds, err := find()
	if err == nil {
		return ds, false, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Dataset{}, false, fmt.Errorf("find dataset: %w", err)
	}
	for _, name := range datasetNames(d.Namespace, d.Name) {
		var id int64
		err := tx.QueryRow(ctx, `
			INSERT INTO datasets (name, description, ol_namespace, ol_name, created_by)
			VALUES ($1, $2, $3, $4, nullif($5, 0)) ON CONFLICT DO NOTHING RETURNING id`,
			name, "", d.Namespace, d.Name, audit.ActorFrom(ctx).UserID).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			// the name is taken, or a concurrent event created this dataset
			if ds, err := find(); err == nil {
				return ds, false, nil
			}
			continue
		}
		if err != nil {
			return Dataset{}, false, fmt.Errorf("create dataset: %w", err)
		}
		ds, err := find()
		if err != nil {
			return Dataset{}, false, fmt.Errorf("create dataset: %w", err)
		}
		return ds, true, audit.Record(ctx, tx, audit.Entry{Action: "dataset.create", TargetType: "dataset", TargetID: ds.Name, After: ds.auditView()})
	}
	return Dataset{}, false, fmt.Errorf("no free name for OpenLineage dataset %s %s: %w", d.Namespace, d.Name, errs.ErrConflict)
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

// inputVersion resolves the version of an input dataset that a run read.
func (s *Service) inputVersion(ctx context.Context, tx pgx.Tx, runID int64, d openlineage.Dataset) (node, bool, error) {
	ds, created, err := s.olDataset(ctx, tx, d)
	if err != nil {
		return node{}, false, err
	}
	var id int64
	if v := d.Version(); v != "" {
		return s.versionByExternal(ctx, tx, ds, d, v, 0, created)
	}
	// the version this run already read, else the latest
	err = tx.QueryRow(ctx, `
		SELECT coalesce(
			(SELECT dv.id FROM lineage_edges e JOIN dataset_versions dv ON dv.id = e.src_dataset_version
			 WHERE e.dst_kind = 'run' AND e.dst_id = $1 AND e.src_kind = 'dataset_version' AND dv.dataset_id = $2
			 ORDER BY dv.version DESC LIMIT 1),
			(SELECT id FROM dataset_versions WHERE dataset_id = $2 ORDER BY version DESC LIMIT 1), 0)`, runID, ds.ID).Scan(&id)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return node{}, false, fmt.Errorf("find the input version: %w", err)
	}
	if id != 0 {
		return node{KindDatasetVersion, id}, created, nil
	}
	in, err := olVersionInput(d, 0, "")
	if err != nil {
		return node{}, false, err
	}
	v, err := insertDatasetVersion(ctx, tx, ds, in, nil)
	if err != nil {
		return node{}, false, err
	}
	return node{KindDatasetVersion, v.id}, true, nil
}

// outputVersion resolves the version a completed run wrote: one per run
// and dataset.
func (s *Service) outputVersion(ctx context.Context, tx pgx.Tx, runID int64, d openlineage.Dataset) (node, bool, error) {
	ds, created, err := s.olDataset(ctx, tx, d)
	if err != nil {
		return node{}, false, err
	}
	if v := d.Version(); v != "" {
		return s.versionByExternal(ctx, tx, ds, d, v, runID, created)
	}
	var id int64
	err = tx.QueryRow(ctx, `SELECT id FROM dataset_versions WHERE dataset_id = $1 AND produced_by = $2`, ds.ID, runID).Scan(&id)
	if err == nil {
		return node{KindDatasetVersion, id}, created, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return node{}, false, fmt.Errorf("find the output version: %w", err)
	}
	in, err := olVersionInput(d, runID, "")
	if err != nil {
		return node{}, false, err
	}
	v, err := insertDatasetVersion(ctx, tx, ds, in, nil)
	if err != nil {
		return node{}, false, err
	}
	return node{KindDatasetVersion, v.id}, true, nil
}

// versionByExternal finds or creates the version the dataset version facet
// names.
func (s *Service) versionByExternal(ctx context.Context, tx pgx.Tx, ds Dataset, d openlineage.Dataset, external string, producer int64, created bool) (node, bool, error) {
	if len(external) > 512 {
		return node{}, false, errs.Invalid("version", "dataset version facets of at most 512 bytes are supported")
	}
	var id int64
	err := tx.QueryRow(ctx, `SELECT id FROM dataset_versions WHERE dataset_id = $1 AND external_version = $2`, ds.ID, external).Scan(&id)
	if err == nil {
		return node{KindDatasetVersion, id}, created, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return node{}, false, fmt.Errorf("find the dataset version: %w", err)
	}
	var exists bool
	if producer != 0 {
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM dataset_versions WHERE dataset_id = $1 AND produced_by = $2)`, ds.ID, producer).Scan(&exists); err != nil {
			return node{}, false, fmt.Errorf("find the dataset version: %w", err)
		}
		if exists {
			producer = 0 // a second version written by one run: record it, without the one-per-run key
		}
	}
	in, err := olVersionInput(d, producer, external)
	if err != nil {
		return node{}, false, err
	}
	v, err := insertDatasetVersion(ctx, tx, ds, in, nil)
	if err != nil {
		return node{}, false, err
	}
	return node{KindDatasetVersion, v.id}, true, nil
}
