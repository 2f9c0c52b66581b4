package lineage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/internal/validate"
)

// Run statuses. A run that completed, failed or was aborted is finished:
// its status does not change again.
const (
	RunRunning   = "running"
	RunCompleted = "completed"
	RunFailed    = "failed"
	RunAborted   = "aborted"
)

func finished(status string) bool {
	return status == RunCompleted || status == RunFailed || status == RunAborted
}

// Git says which code a run executed.
type Git struct {
	Repo   string `json:"repo"`
	Commit string `json:"commit"`
	Dirty  *bool  `json:"dirty"`
}

// Link points to a tracker or orchestrator page: stored, not copied.
type Link struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// RunKey names a run: by Slipway's id, or by its orchestrator's id.
type RunKey struct {
	ID           int64  `json:"id,omitempty"`
	Orchestrator string `json:"orchestrator,omitempty"`
	ExternalID   string `json:"external_id,omitempty"`
}

func (k RunKey) validate(field string, fe *errs.FieldErrors) {
	if (k.ID != 0) == (k.Orchestrator != "" || k.ExternalID != "") || (k.ID == 0 && (k.Orchestrator == "" || k.ExternalID == "")) {
		fe.Add(field, "must be {\"id\": <run id>} or {\"orchestrator\": …, \"external_id\": …}")
	}
	validate.Text(field+".orchestrator", k.Orchestrator, 64, false, fe)
	validate.Text(field+".external_id", k.ExternalID, 512, false, fe)
}

// ValidateLinks checks tracker links: at most max, each with a name and an
// absolute http(s) URL.
func ValidateLinks(field string, links []Link, max int, fe *errs.FieldErrors) {
	if len(links) > max {
		fe.Add(field, "must hold at most %d links", max)
	}
	for i, l := range links {
		f := fmt.Sprintf("%s[%d]", field, i)
		if l.Name == "" {
			fe.Add(f+".name", "is required")
		}
		validate.Text(f+".name", l.Name, 100, false, fe)
		if err := validate.LinkURL(l.URL); err != nil {
			fe.Add(f+".url", "%s", err.Error())
		}
	}
}

// IORef is an input or output of a run: a dataset version or a model
// version.
type IORef struct {
	Dataset string `json:"dataset,omitempty"`
	Model   string `json:"model,omitempty"`
	Version int    `json:"version"`
}

// Ref is the node the reference names.
func (r IORef) Ref() NodeRef {
	if r.Model != "" {
		return NodeRef{Kind: KindModelVersion, Name: r.Model, Version: r.Version}
	}
	return NodeRef{Kind: KindDatasetVersion, Name: r.Dataset, Version: r.Version}
}

func (r IORef) validate(field string, fe *errs.FieldErrors) {
	if (r.Dataset == "") == (r.Model == "") {
		fe.Add(field, "must name either a dataset or a model, with a version: {\"dataset\": \"train\", \"version\": 3}")
		return
	}
	name := r.Dataset + r.Model
	if err := validate.Name(field, name); err != nil {
		fe.Add(field, "names no valid dataset or model: %s", err.(*errs.FieldError).Rule)
	}
	if r.Version <= 0 {
		fe.Add(field+".version", "must be a positive version number")
	}
}

// Run is one execution of a pipeline.
type Run struct {
	ID           int64           `json:"id"`
	Orchestrator string          `json:"orchestrator"`
	ExternalID   string          `json:"external_id"`
	Name         string          `json:"name"`
	Namespace    string          `json:"namespace"`
	Status       string          `json:"status"`
	Git          Git             `json:"git"`
	Image        string          `json:"image"`
	Parameters   json.RawMessage `json:"parameters"`
	Links        []Link          `json:"links"`
	ErrorMessage string          `json:"error_message"`
	// Facets and JobFacets are the OpenLineage facets the run arrived
	// with, unknown ones included.
	Facets    json.RawMessage `json:"facets"`
	JobFacets json.RawMessage `json:"job_facets"`
	Parent    *RunKey         `json:"parent"`
	StartedAt *time.Time      `json:"started_at"`
	EndedAt   *time.Time      `json:"ended_at"`
	CreatedBy string          `json:"created_by"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	// Inputs and Outputs are set when one run is read, not in lists.
	Inputs  []IORef `json:"inputs,omitempty"`
	Outputs []IORef `json:"outputs,omitempty"`
}

// Ref is the run's node reference.
func (r Run) Ref() NodeRef { return NodeRef{Kind: KindRun, RunID: r.ID} }

// Label names the run for people.
func (r Run) Label() string {
	if r.Name != "" {
		return r.Name
	}
	return r.Orchestrator + " " + r.ExternalID
}

func (r Run) auditView() map[string]any {
	return map[string]any{"id": r.ID, "orchestrator": r.Orchestrator, "external_id": r.ExternalID, "name": r.Name,
		"status": r.Status, "git": r.Git, "image": r.Image, "parent": r.Parent, "started_at": r.StartedAt, "ended_at": r.EndedAt}
}

// NewRun reports a run: created if its orchestrator and external id are
// new, updated otherwise. Absent fields keep their value; inputs and
// outputs are added to those already known, never removed.
type NewRun struct {
	Orchestrator string          `json:"orchestrator"`
	ExternalID   string          `json:"external_id"`
	Name         string          `json:"name"`
	Status       string          `json:"status"`
	Git          Git             `json:"git"`
	Image        string          `json:"image"`
	Parameters   json.RawMessage `json:"parameters"`
	Links        []Link          `json:"links"`
	ErrorMessage string          `json:"error_message"`
	Parent       *RunKey         `json:"parent"`
	StartedAt    *time.Time      `json:"started_at"`
	EndedAt      *time.Time      `json:"ended_at"`
	Inputs       []IORef         `json:"inputs"`
	Outputs      []IORef         `json:"outputs"`
}

const (
	maxRunIO    = 1000
	maxRunLinks = 20
)

// Validate checks a run report.
func (in *NewRun) Validate() error {
	var fe errs.FieldErrors
	if in.Orchestrator == "" {
		fe.Add("orchestrator", "is required: what ran the pipeline, e.g. metaflow, airflow, github-actions")
	}
	validate.Text("orchestrator", in.Orchestrator, 64, false, &fe)
	if in.ExternalID == "" {
		fe.Add("external_id", "is required: the orchestrator's id of the run, e.g. a Metaflow pathspec or an Airflow dag_run_id")
	}
	validate.Text("external_id", in.ExternalID, 512, false, &fe)
	validate.Text("name", in.Name, 1024, false, &fe)
	switch in.Status {
	case "", RunRunning, RunCompleted, RunFailed, RunAborted:
	default:
		fe.Add("status", "must be one of running, completed, failed, aborted")
	}
	validate.Text("git.repo", in.Git.Repo, 512, false, &fe)
	validate.Commit("git.commit", in.Git.Commit, &fe)
	validate.Text("image", in.Image, 512, false, &fe)
	validate.Text("error_message", in.ErrorMessage, 10000, true, &fe)
	if len(in.Parameters) > maxParamBytes {
		fe.Add("parameters", "must be at most %d bytes of JSON", maxParamBytes)
	} else if !isObject(in.Parameters) {
		fe.Add("parameters", "must be a JSON object")
	}
	ValidateLinks("links", in.Links, maxRunLinks, &fe)
	if p := in.Parent; p != nil {
		p.validate("parent", &fe)
		if p.Orchestrator == in.Orchestrator && p.ExternalID == in.ExternalID && p.ID == 0 {
			fe.Add("parent", "a run cannot be its own parent")
		}
	}
	if in.StartedAt != nil && in.EndedAt != nil && in.EndedAt.Before(*in.StartedAt) {
		fe.Add("ended_at", "must not be before started_at")
	}
	if len(in.Inputs)+len(in.Outputs) > maxRunIO {
		fe.Add("inputs", "a report holds at most %d inputs and outputs together", maxRunIO)
	}
	seen := map[NodeRef]string{}
	for i, r := range in.Inputs {
		field := fmt.Sprintf("inputs[%d]", i)
		r.validate(field, &fe)
		seen[r.Ref()] = field
	}
	for i, r := range in.Outputs {
		field := fmt.Sprintf("outputs[%d]", i)
		r.validate(field, &fe)
		if other, ok := seen[r.Ref()]; ok && other[0] == 'i' {
			fe.Add(field, "is also %s: a run cannot read and write the same version", other)
		}
	}
	return fe.Err()
}

const runColumns = `r.id, r.orchestrator, r.external_id, r.name, r.namespace, r.status, r.git_repo, r.git_commit, r.git_dirty,
	r.image, r.parameters, r.links, r.error_message, r.facets, r.job_facets, r.parent_id, p.orchestrator, p.external_id,
	r.started_at, r.ended_at, coalesce(u.name, ''), r.created_at, r.updated_at`

const runFrom = ` FROM runs r LEFT JOIN runs p ON p.id = r.parent_id LEFT JOIN users u ON u.id = r.created_by `

func scanRun(row pgx.Row) (Run, error) {
	var r Run
	var parentID *int64
	var parentOrch, parentExt *string
	err := row.Scan(&r.ID, &r.Orchestrator, &r.ExternalID, &r.Name, &r.Namespace, &r.Status, &r.Git.Repo, &r.Git.Commit, &r.Git.Dirty,
		&r.Image, &r.Parameters, &r.Links, &r.ErrorMessage, &r.Facets, &r.JobFacets, &parentID, &parentOrch, &parentExt,
		&r.StartedAt, &r.EndedAt, &r.CreatedBy, &r.CreatedAt, &r.UpdatedAt)
	if parentID != nil {
		r.Parent = &RunKey{ID: *parentID, Orchestrator: *parentOrch, ExternalID: *parentExt}
	}
	if r.Links == nil {
		r.Links = []Link{}
	}
	return r, err
}

// ReportRun creates or updates a run from a report and adds its inputs
// and outputs to the graph. created says whether the run is new.
func (s *Service) ReportRun(ctx context.Context, in NewRun) (run Run, created bool, err error) {
	if err := in.Validate(); err != nil {
		return Run{}, false, err
	}
	err = pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var parentID int64
		if in.Parent != nil {
			p, err := findRun(ctx, tx, *in.Parent)
			if errors.Is(err, errs.ErrNotFound) {
				return errs.Invalid("parent", "%s; report the parent run first", err.Error())
			}
			if err != nil {
				return err
			}
			parentID = p.ID
		}
		inputs, err := resolveAll(ctx, tx, "inputs", in.Inputs)
		if err != nil {
			return err
		}
		outputs, err := resolveAll(ctx, tx, "outputs", in.Outputs)
		if err != nil {
			return err
		}
		var before *Run
		run, before, created, err = upsertRun(ctx, tx, in, parentID)
		if err != nil {
			return err
		}
		me := node{KindRun, run.ID}
		var edges []edge
		for _, n := range inputs {
			edges = append(edges, edge{n, me})
		}
		for _, n := range outputs {
			edges = append(edges, edge{me, n})
		}
		added, err := insertEdges(ctx, tx, edges)
		if err != nil {
			return err
		}
		if !created && before == nil && added == 0 {
			return nil // the same report again: nothing changed, nothing to audit
		}
		run.Inputs, run.Outputs, err = runIO(ctx, tx, run.ID)
		if err != nil {
			return err
		}
		after := run.auditView()
		if added > 0 {
			after["edges_added"] = added
		}
		e := audit.Entry{Action: "run.update", TargetType: "run", TargetID: strconv.FormatInt(run.ID, 10), After: after}
		if created {
			e.Action = "run.create"
		} else if before != nil {
			e.Before = before.auditView()
		}
		return audit.Record(ctx, tx, e)
	})
	if err != nil {
		return Run{}, false, err
	}
	if run.Inputs == nil {
		run.Inputs, run.Outputs, err = runIO(ctx, s.db, run.ID)
	}
	return run, created, err
}

// upsertRun inserts the run or merges the report into the existing row,
// which it locks. before is the run as it was when the report changed it.
func upsertRun(ctx context.Context, tx pgx.Tx, in NewRun, parentID int64) (run Run, before *Run, created bool, err error) {
	status := in.Status
	if status == "" {
		status = RunRunning
	}
	params := in.Parameters
	if len(params) == 0 || string(params) == "null" {
		params = json.RawMessage("{}")
	}
	links := in.Links
	if links == nil {
		links = []Link{}
	}
	var id int64
	err = tx.QueryRow(ctx, `
		INSERT INTO runs (orchestrator, external_id, name, status, git_repo, git_commit, git_dirty, image, parameters, links,
		                  error_message, parent_id, started_at, ended_at, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, nullif($12, 0), $13, $14, nullif($15, 0))
		ON CONFLICT (orchestrator, external_id) DO NOTHING RETURNING id`,
		in.Orchestrator, in.ExternalID, in.Name, status, in.Git.Repo, in.Git.Commit, in.Git.Dirty, in.Image, params, links,
		in.ErrorMessage, parentID, in.StartedAt, in.EndedAt, audit.ActorFrom(ctx).UserID).Scan(&id)
	if err == nil {
		run, err = getRun(ctx, tx, id)
		return run, nil, true, err
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Run{}, nil, false, fmt.Errorf("record the run: %w", err)
	}
	old, err := scanRun(tx.QueryRow(ctx, `SELECT `+runColumns+runFrom+`WHERE r.orchestrator = $1 AND r.external_id = $2 FOR UPDATE OF r`, in.Orchestrator, in.ExternalID))
	if err != nil {
		return Run{}, nil, false, fmt.Errorf("read the run: %w", err)
	}
	if in.Status != "" && in.Status != old.Status && finished(old.Status) {
		return Run{}, nil, false, fmt.Errorf("run %d (%s %s) finished as %s: its status cannot become %s: %w",
			old.ID, old.Orchestrator, old.ExternalID, old.Status, in.Status, errs.ErrConflict)
	}
	if parentID == old.ID {
		return Run{}, nil, false, errs.Invalid("parent", "a run cannot be its own parent")
	}
	next := old
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&next.Name, in.Name)
	set(&next.Status, in.Status)
	set(&next.Git.Repo, in.Git.Repo)
	set(&next.Git.Commit, in.Git.Commit)
	set(&next.Image, in.Image)
	set(&next.ErrorMessage, in.ErrorMessage)
	if in.Git.Dirty != nil {
		next.Git.Dirty = in.Git.Dirty
	}
	if len(in.Parameters) > 0 && string(in.Parameters) != "null" {
		next.Parameters = in.Parameters
	}
	if in.Links != nil {
		next.Links = in.Links
	}
	if in.StartedAt != nil {
		next.StartedAt = in.StartedAt
	}
	if in.EndedAt != nil {
		next.EndedAt = in.EndedAt
	}
	nextParent := int64(0)
	if old.Parent != nil {
		nextParent = old.Parent.ID
	}
	if parentID != 0 {
		nextParent = parentID
	}
	if next.StartedAt != nil && next.EndedAt != nil && next.EndedAt.Before(*next.StartedAt) {
		return Run{}, nil, false, errs.Invalid("ended_at", "must not be before started_at (%s)", next.StartedAt.Format(time.RFC3339))
	}
	if sameRun(old, next) && (old.Parent == nil && nextParent == 0 || old.Parent != nil && old.Parent.ID == nextParent) {
		return old, nil, false, nil
	}
	if _, err := tx.Exec(ctx, `
		UPDATE runs SET name = $2, status = $3, git_repo = $4, git_commit = $5, git_dirty = $6, image = $7, parameters = $8,
		                links = $9, error_message = $10, parent_id = nullif($11, 0), started_at = $12, ended_at = $13, updated_at = now()
		WHERE id = $1`,
		old.ID, next.Name, next.Status, next.Git.Repo, next.Git.Commit, next.Git.Dirty, next.Image, next.Parameters,
		next.Links, next.ErrorMessage, nextParent, next.StartedAt, next.EndedAt); err != nil {
		return Run{}, nil, false, fmt.Errorf("update the run: %w", err)
	}
	run, err = getRun(ctx, tx, old.ID)
	return run, &old, false, err
}

func sameRun(a, b Run) bool {
	// PostgreSQL keeps microseconds: a report's nanoseconds are no change
	eqTime := func(x, y *time.Time) bool {
		return x == nil && y == nil || x != nil && y != nil && x.Truncate(time.Microsecond).Equal(y.Truncate(time.Microsecond))
	}
	eqBool := func(x, y *bool) bool { return x == nil && y == nil || x != nil && y != nil && *x == *y }
	la, _ := json.Marshal(a.Links)
	lb, _ := json.Marshal(b.Links)
	return a.Name == b.Name && a.Status == b.Status && a.Git.Repo == b.Git.Repo && a.Git.Commit == b.Git.Commit &&
		eqBool(a.Git.Dirty, b.Git.Dirty) && a.Image == b.Image && a.ErrorMessage == b.ErrorMessage &&
		jsonEqual(a.Parameters, b.Parameters) && string(la) == string(lb) &&
		eqTime(a.StartedAt, b.StartedAt) && eqTime(a.EndedAt, b.EndedAt)
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

func getRun(ctx context.Context, q querier, id int64) (Run, error) {
	r, err := scanRun(q.QueryRow(ctx, `SELECT `+runColumns+runFrom+`WHERE r.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Run{}, fmt.Errorf("run %d: %w", id, errs.ErrNotFound)
	}
	if err != nil {
		return Run{}, fmt.Errorf("get run: %w", err)
	}
	return r, nil
}

// findRun finds a run by either of its keys.
func findRun(ctx context.Context, q querier, k RunKey) (Run, error) {
	if k.ID != 0 {
		return getRun(ctx, q, k.ID)
	}
	r, err := scanRun(q.QueryRow(ctx, `SELECT `+runColumns+runFrom+`WHERE r.orchestrator = $1 AND r.external_id = $2`, k.Orchestrator, k.ExternalID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Run{}, fmt.Errorf("no run %s %s: %w", k.Orchestrator, k.ExternalID, errs.ErrNotFound)
	}
	if err != nil {
		return Run{}, fmt.Errorf("get run: %w", err)
	}
	return r, nil
}

// GetRun returns a run with its inputs and outputs.
func (s *Service) GetRun(ctx context.Context, id int64) (Run, error) {
	r, err := getRun(ctx, s.db, id)
	if err != nil {
		return Run{}, err
	}
	r.Inputs, r.Outputs, err = runIO(ctx, s.db, id)
	return r, err
}

// runIO lists the inputs and outputs of a run.
func runIO(ctx context.Context, q querier, id int64) (inputs, outputs []IORef, err error) {
	rows, err := q.Query(ctx, `
		SELECT e.dst_kind = 'run', coalesce(d.name, m.name), coalesce(dv.version, mv.version), d.name IS NOT NULL
		FROM lineage_edges e
		LEFT JOIN dataset_versions dv ON dv.id = coalesce(e.src_dataset_version, e.dst_dataset_version)
		LEFT JOIN datasets d ON d.id = dv.dataset_id
		LEFT JOIN model_versions mv ON mv.id = coalesce(e.src_model_version, e.dst_model_version)
		LEFT JOIN models m ON m.id = mv.model_id
		WHERE (e.dst_kind = 'run' AND e.dst_id = $1) OR (e.src_kind = 'run' AND e.src_id = $1)
		ORDER BY 1, 4 DESC, 2, 3`, id)
	if err != nil {
		return nil, nil, fmt.Errorf("run inputs and outputs: %w", err)
	}
	defer rows.Close()
	inputs, outputs = []IORef{}, []IORef{}
	for rows.Next() {
		var isInput, isDataset bool
		var name string
		var version int
		if err := rows.Scan(&isInput, &name, &version, &isDataset); err != nil {
			return nil, nil, fmt.Errorf("run inputs and outputs: %w", err)
		}
		r := IORef{Model: name, Version: version}
		if isDataset {
			r = IORef{Dataset: name, Version: version}
		}
		if isInput {
			inputs = append(inputs, r)
		} else {
			outputs = append(outputs, r)
		}
	}
	return inputs, outputs, rows.Err()
}

// resolveAll finds the nodes a list of references names.
func resolveAll(ctx context.Context, q querier, field string, refs []IORef) ([]node, error) {
	nodes := make([]node, 0, len(refs))
	for i, r := range refs {
		n, err := resolve(ctx, q, r.Ref())
		if errors.Is(err, errs.ErrNotFound) {
			return nil, errs.Invalid(fmt.Sprintf("%s[%d]", field, i), "%s does not exist", describe(r.Ref()))
		}
		if err != nil {
			return nil, err
		}
		if !slices.Contains(nodes, n) {
			nodes = append(nodes, n)
		}
	}
	return nodes, nil
}

// RunFilter selects runs in a list.
type RunFilter struct {
	Orchestrator string
	Name         string
	Status       string
	Parent       int64
}

// ListRuns returns runs, newest first.
func (s *Service) ListRuns(ctx context.Context, f RunFilter, p pagination.Page) ([]Run, string, error) {
	var after struct {
		ID int64 `json:"id"`
	}
	if _, err := p.Decode(&after); err != nil {
		return nil, "", err
	}
	switch f.Status {
	case "", RunRunning, RunCompleted, RunFailed, RunAborted:
	default:
		return nil, "", errs.Invalid("status", "must be one of running, completed, failed, aborted")
	}
	rows, err := s.db.Query(ctx, `SELECT `+runColumns+runFrom+`
		WHERE ($1 = 0 OR r.id < $1) AND ($2 = '' OR r.orchestrator = $2) AND ($3 = '' OR r.name = $3)
		  AND ($4 = '' OR r.status = $4) AND ($5 = 0 OR r.parent_id = $5)
		ORDER BY r.id DESC LIMIT $6`, after.ID, f.Orchestrator, f.Name, f.Status, f.Parent, p.Size()+1)
	if err != nil {
		return nil, "", fmt.Errorf("list runs: %w", err)
	}
	runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Run, error) { return scanRun(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list runs: %w", err)
	}
	runs, next := pagination.Trim(runs, p, func(r Run) any { return map[string]int64{"id": r.ID} })
	return runs, next, nil
}

// edge is an edge of the graph, data flowing from From to To.
type edge struct{ From, To node }

// insertEdges adds edges that are not there yet, in one statement, and
// says how many were new.
func insertEdges(ctx context.Context, tx pgx.Tx, edges []edge) (int64, error) {
	if len(edges) == 0 {
		return 0, nil
	}
	sql, args := edgesInsert(edges)
	tag, err := tx.Exec(ctx, sql, args...)
	if err != nil {
		return 0, fmt.Errorf("record lineage: %w", err)
	}
	return tag.RowsAffected(), nil
}

// edgesInsert is the statement of insertEdges.
func edgesInsert(edges []edge) (string, []any) {
	sk, si, dk, di := make([]string, len(edges)), make([]int64, len(edges)), make([]string, len(edges)), make([]int64, len(edges))
	for i, e := range edges {
		sk[i], si[i], dk[i], di[i] = e.From.Kind, e.From.ID, e.To.Kind, e.To.ID
	}
	return `
		INSERT INTO lineage_edges (src_dataset_version, src_run, src_model_version, dst_dataset_version, dst_run, dst_model_version)
		SELECT CASE WHEN sk = 'dataset_version' THEN si END, CASE WHEN sk = 'run' THEN si END, CASE WHEN sk = 'model_version' THEN si END,
		       CASE WHEN dk = 'dataset_version' THEN di END, CASE WHEN dk = 'run' THEN di END, CASE WHEN dk = 'model_version' THEN di END
		FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[]) AS t(sk, si, dk, di)
		ON CONFLICT DO NOTHING`, []any{sk, si, dk, di}
}
