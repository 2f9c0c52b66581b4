package lineage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/validate"
)

// QualityResult is the outcome of one data-quality suite (Great
// Expectations, dbt tests, Soda, Deequ…) on one dataset version. Results
// are appended, never changed; the latest result of a suite counts.
type QualityResult struct {
	ID           int64           `json:"id"`
	Dataset      string          `json:"dataset"`
	Version      int             `json:"version"`
	Suite        string          `json:"suite"`
	Producer     string          `json:"producer"`
	Passed       bool            `json:"passed"`
	FailedChecks []FailedCheck   `json:"failed_checks"`
	Statistics   json.RawMessage `json:"statistics"`
	URL          string          `json:"url"`
	// Raw is where the raw result document is kept, if one was sent.
	RawSHA256 *string   `json:"raw_sha256"`
	RawSize   *int64    `json:"raw_size"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	rawKey    *string
}

// FailedCheck is one check that failed.
type FailedCheck struct {
	Name    string `json:"name"`
	Column  string `json:"column,omitempty"`
	Message string `json:"message,omitempty"`
}

// NewQualityResult is a result being attached.
type NewQualityResult struct {
	Suite        string          `json:"suite"`
	Producer     string          `json:"producer"`
	Passed       *bool           `json:"passed"`
	FailedChecks []FailedCheck   `json:"failed_checks"`
	Statistics   json.RawMessage `json:"statistics"`
	URL          string          `json:"url"`
	// Raw is the producer's own result document (e.g. a Great
	// Expectations validation result), kept as sent in the object store.
	Raw json.RawMessage `json:"raw"`
}

const maxFailedChecks = 1000

// Validate checks a result.
func (in *NewQualityResult) Validate() error {
	var fe errs.FieldErrors
	if in.Suite == "" {
		fe.Add("suite", "is required: the name of the expectation suite or test selection")
	}
	validate.Text("suite", in.Suite, 256, false, &fe)
	validate.Text("producer", in.Producer, 256, false, &fe)
	if in.Passed == nil {
		fe.Add("passed", "is required: true or false")
	}
	if len(in.FailedChecks) > maxFailedChecks {
		fe.Add("failed_checks", "must hold at most %d checks", maxFailedChecks)
	}
	for i, c := range in.FailedChecks {
		field := fmt.Sprintf("failed_checks[%d]", i)
		if c.Name == "" {
			fe.Add(field+".name", "is required")
		}
		validate.Text(field+".name", c.Name, 512, false, &fe)
		validate.Text(field+".column", c.Column, 256, false, &fe)
		validate.Text(field+".message", c.Message, 4000, true, &fe)
	}
	if in.Passed != nil && *in.Passed && len(in.FailedChecks) > 0 {
		fe.Add("failed_checks", "a passed result lists no failed checks")
	}
	if in.FailedChecks == nil {
		in.FailedChecks = []FailedCheck{}
	}
	if !isObject(in.Statistics) {
		fe.Add("statistics", "must be a JSON object, e.g. {\"evaluated\": 12, \"successful\": 11}")
	} else if len(in.Statistics) == 0 || string(in.Statistics) == "null" {
		in.Statistics = json.RawMessage("{}")
	}
	if in.URL != "" {
		if err := validate.LinkURL(in.URL); err != nil {
			fe.Add("url", "%s", err.Error())
		}
	}
	return fe.Err()
}

// AddQualityResult attaches a result to a dataset version. The raw
// document goes to the object store first; the row that points to it is
// written only once it is there.
func (s *Service) AddQualityResult(ctx context.Context, dataset string, number int, in NewQualityResult) (QualityResult, error) {
	if err := in.Validate(); err != nil {
		return QualityResult{}, err
	}
	v, err := s.GetDatasetVersion(ctx, dataset, number)
	if err != nil {
		return QualityResult{}, err
	}
	var rawKey, rawSHA *string
	var rawSize *int64
	if len(in.Raw) > 0 && string(in.Raw) != "null" {
		b := make([]byte, 16)
		rand.Read(b)
		key := fmt.Sprintf("quality/%d/%s.json", v.id, hex.EncodeToString(b))
		info, err := s.store.Put(ctx, key, bytes.NewReader(in.Raw), blob.PutOptions{ContentType: "application/json", Size: int64(len(in.Raw))})
		if err != nil {
			return QualityResult{}, fmt.Errorf("keep the raw quality result: %w", err)
		}
		rawKey, rawSHA, rawSize = &key, &info.SHA256, &info.Size
	}
	var r QualityResult
	err = pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `
			INSERT INTO dataset_quality_results (dataset_version_id, suite, producer, passed, failed_checks, statistics, url,
			                                     raw_object_key, raw_sha256, raw_size, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, nullif($11, 0)) RETURNING id`,
			v.id, in.Suite, in.Producer, *in.Passed, in.FailedChecks, in.Statistics, in.URL, rawKey, rawSHA, rawSize,
			audit.ActorFrom(ctx).UserID).Scan(&id)
		if err != nil {
			return fmt.Errorf("record the quality result: %w", err)
		}
		r, err = scanQualityResult(tx.QueryRow(ctx, `SELECT `+qualityColumns+qualityFrom+`WHERE r.id = $1`, id))
		if err != nil {
			return fmt.Errorf("record the quality result: %w", err)
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "dataset_quality.create", TargetType: "dataset_version",
			TargetID: fmt.Sprintf("%s/%d", dataset, number),
			After:    map[string]any{"id": r.ID, "suite": r.Suite, "producer": r.Producer, "passed": r.Passed, "failed_checks": len(r.FailedChecks)}})
	})
	if err != nil && rawKey != nil {
		s.store.Delete(context.WithoutCancel(ctx), *rawKey)
	}
	return r, err
}

const qualityColumns = `r.id, d.name, dv.version, r.suite, r.producer, r.passed, r.failed_checks, r.statistics, r.url,
	r.raw_sha256, r.raw_size, coalesce(u.name, ''), r.created_at, r.raw_object_key`

const qualityFrom = ` FROM dataset_quality_results r JOIN dataset_versions dv ON dv.id = r.dataset_version_id
	JOIN datasets d ON d.id = dv.dataset_id LEFT JOIN users u ON u.id = r.created_by `

func scanQualityResult(row pgx.Row) (QualityResult, error) {
	var r QualityResult
	err := row.Scan(&r.ID, &r.Dataset, &r.Version, &r.Suite, &r.Producer, &r.Passed, &r.FailedChecks, &r.Statistics, &r.URL,
		&r.RawSHA256, &r.RawSize, &r.CreatedBy, &r.CreatedAt, &r.rawKey)
	return r, err
}

// ListQualityResults returns every result of a dataset version, newest
// first (a version collects a handful: no pages).
func (s *Service) ListQualityResults(ctx context.Context, dataset string, number int) ([]QualityResult, error) {
	v, err := s.GetDatasetVersion(ctx, dataset, number)
	if err != nil {
		return nil, err
	}
	return listQualityResults(ctx, s.db, []int64{v.id})
}

func listQualityResults(ctx context.Context, q querier, versionIDs []int64) ([]QualityResult, error) {
	rows, err := q.Query(ctx, `SELECT `+qualityColumns+qualityFrom+`WHERE r.dataset_version_id = ANY($1) ORDER BY r.id DESC LIMIT 1000`, versionIDs)
	if err != nil {
		return nil, fmt.Errorf("list quality results: %w", err)
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (QualityResult, error) { return scanQualityResult(r) })
	if err != nil {
		return nil, fmt.Errorf("list quality results: %w", err)
	}
	if rs == nil {
		rs = []QualityResult{}
	}
	return rs, nil
}

// OpenRawQualityResult opens the raw document of a result; the caller
// closes it.
func (s *Service) OpenRawQualityResult(ctx context.Context, dataset string, number int, id int64) (QualityResult, io.ReadCloser, error) {
	rs, err := s.ListQualityResults(ctx, dataset, number)
	if err != nil {
		return QualityResult{}, nil, err
	}
	for _, r := range rs {
		if r.ID != id {
			continue
		}
		if r.rawKey == nil {
			return r, nil, fmt.Errorf("quality result %d has no raw document: %w", id, errs.ErrNotFound)
		}
		rc, _, err := s.store.Get(ctx, *r.rawKey, nil)
		if err != nil {
			return r, nil, fmt.Errorf("raw quality result %d: %w", id, err)
		}
		return r, rc, nil
	}
	return QualityResult{}, nil, fmt.Errorf("dataset %q version %d has no quality result %d: %w", dataset, number, id, errs.ErrNotFound)
}

// VersionRef names a model version.
type VersionRef struct {
	Model   string
	Version int
}

// UpstreamFailure is a failing data-quality suite on a dataset version
// upstream of a model version: the latest result of the suite failed.
type UpstreamFailure struct {
	Model          string    `json:"model"`
	Version        int       `json:"version"`
	Dataset        string    `json:"dataset"`
	DatasetVersion int       `json:"dataset_version"`
	Suite          string    `json:"suite"`
	Producer       string    `json:"producer"`
	FailedChecks   int       `json:"failed_checks"`
	Depth          int       `json:"depth"`
	At             time.Time `json:"at"`
}

// UpstreamQualityFailures finds, in one walk of the graph from every
// version given (up to MaxDepth), the dataset versions whose latest result
// of a suite failed; at most limit, nearest first.
func (s *Service) UpstreamQualityFailures(ctx context.Context, roots []VersionRef, limit int) ([]UpstreamFailure, error) {
	if len(roots) == 0 {
		return nil, nil
	}
	models := make([]string, len(roots))
	numbers := make([]int32, len(roots))
	for i, r := range roots {
		models[i], numbers[i] = r.Model, int32(r.Version)
	}
	rows, err := s.db.Query(ctx, `
		WITH RECURSIVE roots AS (
			SELECT v.id FROM unnest($1::text[], $2::int[]) AS r(model, version)
			JOIN models m ON m.name = r.model JOIN model_versions v ON v.model_id = m.id AND v.version = r.version
		), walk(root, kind, id, depth) AS (
			SELECT id, 'model_version', id, 0 FROM roots
			UNION
			SELECT w.root, e.src_kind, e.src_id, w.depth + 1
			FROM walk w JOIN lineage_edges e ON e.dst_kind = w.kind AND e.dst_id = w.id
			WHERE w.depth < $3
		), budget AS (SELECT * FROM walk LIMIT $4),
		upstream AS (SELECT root, id, min(depth) AS depth FROM budget WHERE kind = 'dataset_version' GROUP BY root, id),
		latest AS (
			SELECT DISTINCT ON (q.dataset_version_id, q.suite) q.dataset_version_id, q.suite, q.producer, q.passed,
				jsonb_array_length(q.failed_checks) AS failed, q.created_at
			FROM dataset_quality_results q WHERE q.dataset_version_id IN (SELECT id FROM upstream)
			ORDER BY q.dataset_version_id, q.suite, q.id DESC
		)
		SELECT m.name, v.version, d.name, dv.version, l.suite, l.producer, l.failed, u.depth, l.created_at
		FROM upstream u
		JOIN latest l ON l.dataset_version_id = u.id AND NOT l.passed
		JOIN model_versions v ON v.id = u.root JOIN models m ON m.id = v.model_id
		JOIN dataset_versions dv ON dv.id = u.id JOIN datasets d ON d.id = dv.dataset_id
		ORDER BY u.depth, m.name, d.name, dv.version, l.suite LIMIT $5`,
		models, numbers, MaxDepth, MaxNodes*8, limit)
	if err != nil {
		return nil, fmt.Errorf("upstream quality failures: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (UpstreamFailure, error) {
		var f UpstreamFailure
		err := r.Scan(&f.Model, &f.Version, &f.Dataset, &f.DatasetVersion, &f.Suite, &f.Producer, &f.FailedChecks, &f.Depth, &f.At)
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("upstream quality failures: %w", err)
	}
	return out, nil
}
