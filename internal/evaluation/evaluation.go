// Package evaluation keeps evaluation reports: immutable evidence about one
// model version, from one suite, on one evaluation dataset version. The raw
// bytes go to the object store with their SHA-256 (downloadable, byte for
// byte); their values are normalised (package evalreport) into metric and
// test rows that promotion policies address.
package evaluation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/evalreport"
	"github.com/slipway-ml/slipway/internal/events"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/internal/validate"
)

// MaxReportSize bounds one report's raw bytes.
const MaxReportSize = 256 << 20

// Service keeps evaluation reports.
type Service struct {
	db    *pgxpool.Pool
	store blob.Store
}

// NewService returns the report service over db and store.
func NewService(db *pgxpool.Pool, store blob.Store) *Service { return &Service{db: db, store: store} }

// DatasetRef names the evaluation dataset version of a report.
type DatasetRef struct {
	Dataset string `json:"dataset"`
	Version int    `json:"version"`
}

// Report is a stored evaluation report.
type Report struct {
	ID          int64             `json:"id"`
	Model       string            `json:"model"`
	Version     int               `json:"version"`
	Suite       string            `json:"suite"`
	Format      string            `json:"format"`
	Producer    string            `json:"producer"`
	Dataset     *DatasetRef       `json:"evaluation_dataset"`
	SHA256      string            `json:"sha256"`
	Size        int64             `json:"size"`
	ContentType string            `json:"content_type"`
	Meta        map[string]string `json:"meta"`
	MetricCount int               `json:"metric_count"`
	TestCount   int               `json:"test_count"`
	TestsFailed int               `json:"tests_failed"`
	CreatedBy   string            `json:"created_by"`
	CreatedAt   time.Time         `json:"created_at"`
	// Metrics and Tests are set when one report is read.
	Metrics []Metric `json:"metrics,omitempty"`
	Tests   []Test   `json:"tests,omitempty"`

	objectKey string
}

// Metric is one normalised value of a report.
type Metric struct {
	Key   string            `json:"key"`
	Test  string            `json:"test"`
	Path  string            `json:"path"`
	Value evalreport.Number `json:"value"`
}

// Test is one behavioural test of a report.
type Test struct {
	Name    string `json:"name"`
	Passed  bool   `json:"passed"`
	Message string `json:"message"`
}

// NewReport describes a report being attached.
type NewReport struct {
	Suite    string `json:"suite"`
	Format   string `json:"format"` // "" detects it
	Producer string `json:"producer"`
	// Dataset and DatasetVersion name the evaluation data.
	Dataset        string `json:"evaluation_dataset"`
	DatasetVersion int    `json:"evaluation_dataset_version"`
	// ContentType of the raw bytes; application/json by default.
	ContentType string `json:"-"`
}

// Validate checks the description.
func (in *NewReport) Validate() (evalreport.Format, error) {
	var fe errs.FieldErrors
	if in.Suite == "" {
		fe.Add("suite", "is required: the evaluation suite, e.g. reclist or offline-metrics")
	} else if err := validate.Name("suite", in.Suite); err != nil {
		fe = append(fe, err.(*errs.FieldError))
	}
	format, err := evalreport.ParseFormat(in.Format)
	if err != nil {
		fe = append(fe, validate.Flatten(err)...)
	}
	validate.Text("producer", in.Producer, 256, false, &fe)
	switch {
	case in.Dataset == "" && in.DatasetVersion != 0:
		fe.Add("evaluation_dataset", "is required with evaluation_dataset_version")
	case in.Dataset != "":
		if err := validate.Name("evaluation_dataset", in.Dataset); err != nil {
			fe = append(fe, err.(*errs.FieldError))
		}
		if in.DatasetVersion < 1 {
			fe.Add("evaluation_dataset_version", "is required with evaluation_dataset: a version number (1, 2, …)")
		}
	}
	if in.ContentType == "" {
		in.ContentType = "application/json"
	}
	return format, fe.Err()
}

type versionRow struct {
	id, modelID int64
	status      string
}

func findVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, model string, number int) (versionRow, error) {
	var v versionRow
	err := q.QueryRow(ctx, `SELECT v.id, v.model_id, v.status FROM model_versions v JOIN models m ON m.id = v.model_id
		WHERE m.name = $1 AND v.version = $2`, model, number).Scan(&v.id, &v.modelID, &v.status)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, fmt.Errorf("model %q version %d: %w", model, number, errs.ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("find version: %w", err)
	}
	return v, nil
}

// Attach stores a report of a model version: the raw bytes stream to the
// object store while they are parsed, and the rows are written only once
// both succeeded. A body that is not a report of a known shape is
// errs.ErrUnprocessable, and nothing is kept.
func (s *Service) Attach(ctx context.Context, model string, version int, in NewReport, body io.Reader) (Report, error) {
	format, err := in.Validate()
	if err != nil {
		return Report{}, err
	}
	v, err := findVersion(ctx, s.db, model, version)
	if err != nil {
		return Report{}, err
	}
	if v.status != "ready" {
		return Report{}, fmt.Errorf("%s/%d is a draft: finalize it before attaching reports: %w", model, version, errs.ErrConflict)
	}
	var datasetVersionID *int64
	if in.Dataset != "" {
		var id int64
		err := s.db.QueryRow(ctx, `SELECT dv.id FROM dataset_versions dv JOIN datasets d ON d.id = dv.dataset_id
			WHERE d.name = $1 AND dv.version = $2`, in.Dataset, in.DatasetVersion).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return Report{}, fmt.Errorf("evaluation dataset %s version %d: %w", in.Dataset, in.DatasetVersion, errs.ErrNotFound)
		}
		if err != nil {
			return Report{}, fmt.Errorf("find the evaluation dataset: %w", err)
		}
		datasetVersionID = &id
	}

	key := newKey(v.id)
	parsed, info, err := s.store2(ctx, key, in.ContentType, format, body)
	if err != nil {
		return Report{}, err
	}
	var out Report
	err = pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		failed := 0
		for _, t := range parsed.Tests {
			if !t.Passed {
				failed++
			}
		}
		var id int64
		err := tx.QueryRow(ctx, `
			INSERT INTO evaluation_reports (model_id, model_version_id, suite, format, producer, dataset_version_id, object_key, sha256, size,
			                                content_type, meta, metric_count, test_count, tests_failed, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, nullif($15, 0)) RETURNING id`,
			v.modelID, v.id, in.Suite, string(parsed.Format), in.Producer, datasetVersionID, key, info.SHA256, info.Size, in.ContentType,
			metaOf(parsed.Meta), len(parsed.Metrics), len(parsed.Tests), failed, audit.ActorFrom(ctx).UserID).Scan(&id)
		if err != nil {
			return fmt.Errorf("record the report: %w", err)
		}
		metrics := make([][]any, len(parsed.Metrics))
		for i, m := range parsed.Metrics {
			metrics[i] = []any{id, m.Key, m.Test, m.Path, m.Value, i}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"evaluation_metrics"}, []string{"report_id", "key", "test", "path", "value", "ord"},
			pgx.CopyFromRows(metrics)); err != nil {
			return fmt.Errorf("record the metrics: %w", err)
		}
		tests := make([][]any, len(parsed.Tests))
		for i, t := range parsed.Tests {
			tests[i] = []any{id, t.Name, t.Passed, noNUL(t.Message), i}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"evaluation_tests"}, []string{"report_id", "name", "passed", "message", "ord"},
			pgx.CopyFromRows(tests)); err != nil {
			return fmt.Errorf("record the tests: %w", err)
		}
		if out, err = getReport(ctx, tx, id); err != nil {
			return err
		}
		if _, err := events.Emit(ctx, tx, v.modelID, events.EvaluationCreated, map[string]any{
			"model": model, "version": version, "report_id": id, "suite": in.Suite, "format": out.Format,
			"evaluation_dataset": out.Dataset, "sha256": out.SHA256, "metric_count": out.MetricCount, "tests_failed": out.TestsFailed}); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "evaluation.create", TargetType: "model_version", TargetID: fmt.Sprintf("%s/%d", model, version),
			After: map[string]any{"id": id, "suite": in.Suite, "format": out.Format, "sha256": out.SHA256, "size": out.Size,
				"evaluation_dataset": out.Dataset, "metric_count": out.MetricCount, "test_count": out.TestCount, "tests_failed": out.TestsFailed}})
	})
	if err != nil {
		s.store.Delete(context.WithoutCancel(ctx), key)
		return Report{}, err
	}
	return out, nil
}

// store2 streams body into the object store under key while the parser
// reads the same bytes, and returns what each made of them. When either
// fails, nothing stays in the store.
func (s *Service) store2(ctx context.Context, key, contentType string, format evalreport.Format, body io.Reader) (evalreport.Report, blob.Info, error) {
	pr, pw := io.Pipe()
	var (
		wg   sync.WaitGroup
		info blob.Info
		perr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		info, perr = s.store.Put(ctx, key, pr, blob.PutOptions{ContentType: contentType, Size: -1})
		pr.CloseWithError(perr) // unblock the parser if the store gave up
	}()
	limited := &limitReader{r: body, left: MaxReportSize}
	parsed, err := evalreport.Parse(io.TeeReader(limited, pw), format)
	if err == nil {
		// what the parser left unread (nothing, normally) still belongs to the raw bytes
		_, err = io.Copy(pw, limited)
	}
	pw.CloseWithError(err)
	wg.Wait()
	if limited.over {
		err = fmt.Errorf("a report is at most %d bytes: %w", MaxReportSize, errs.ErrTooLarge)
	}
	if err == nil {
		err = perr
	}
	if err != nil {
		if perr == nil {
			s.store.Delete(context.WithoutCancel(ctx), key)
		}
		return evalreport.Report{}, blob.Info{}, err
	}
	return parsed, info, nil
}

type limitReader struct {
	r    io.Reader
	left int64
	over bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			l.over = true
			return 0, fmt.Errorf("a report is at most %d bytes: %w", MaxReportSize, errs.ErrTooLarge)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

func newKey(versionID int64) string {
	b := make([]byte, 16)
	rand.Read(b)
	return fmt.Sprintf("reports/%d/%s", versionID, hex.EncodeToString(b))
}

// metaOf keeps a report's descriptive fields; PostgreSQL's text cannot
// hold NUL, which JSON allows.
func metaOf(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[noNUL(k)] = noNUL(v)
	}
	return out
}

func noNUL(s string) string { return strings.ReplaceAll(s, "\x00", "") }

const reportColumns = `r.id, m.name, v.version, r.suite, r.format, r.producer, d.name, dv.version, r.sha256, r.size, r.content_type,
	r.meta, r.metric_count, r.test_count, r.tests_failed, coalesce(u.name, ''), r.created_at, r.object_key`

const reportFrom = ` FROM evaluation_reports r JOIN model_versions v ON v.id = r.model_version_id JOIN models m ON m.id = r.model_id
	LEFT JOIN dataset_versions dv ON dv.id = r.dataset_version_id LEFT JOIN datasets d ON d.id = dv.dataset_id
	LEFT JOIN users u ON u.id = r.created_by `

func scanReport(row pgx.Row) (Report, error) {
	var r Report
	var dname *string
	var dver *int
	err := row.Scan(&r.ID, &r.Model, &r.Version, &r.Suite, &r.Format, &r.Producer, &dname, &dver, &r.SHA256, &r.Size, &r.ContentType,
		&r.Meta, &r.MetricCount, &r.TestCount, &r.TestsFailed, &r.CreatedBy, &r.CreatedAt, &r.objectKey)
	if dname != nil && dver != nil {
		r.Dataset = &DatasetRef{Dataset: *dname, Version: *dver}
	}
	return r, err
}

type queryer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func getReport(ctx context.Context, q queryer, id int64) (Report, error) {
	r, err := scanReport(q.QueryRow(ctx, `SELECT `+reportColumns+reportFrom+`WHERE r.id = $1`, id))
	if err != nil {
		return Report{}, fmt.Errorf("read report %d: %w", id, err)
	}
	rows, err := q.Query(ctx, `SELECT key, test, path, value FROM evaluation_metrics WHERE report_id = $1 ORDER BY ord`, id)
	if err != nil {
		return Report{}, fmt.Errorf("read metrics: %w", err)
	}
	if r.Metrics, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Metric]); err != nil {
		return Report{}, fmt.Errorf("read metrics: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT name, passed, message FROM evaluation_tests WHERE report_id = $1 ORDER BY ord`, id)
	if err != nil {
		return Report{}, fmt.Errorf("read tests: %w", err)
	}
	if r.Tests, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Test]); err != nil {
		return Report{}, fmt.Errorf("read tests: %w", err)
	}
	return r, nil
}

// List returns the reports of a model version, newest first, a page at a
// time, without their metrics.
func (s *Service) List(ctx context.Context, model string, version int, p pagination.Page) ([]Report, string, error) {
	v, err := findVersion(ctx, s.db, model, version)
	if err != nil {
		return nil, "", err
	}
	before := int64(1<<63 - 1)
	if _, err := p.Decode(&before); err != nil {
		return nil, "", err
	}
	rows, err := s.db.Query(ctx, `SELECT `+reportColumns+reportFrom+`WHERE r.model_version_id = $1 AND r.id < $2 ORDER BY r.id DESC LIMIT $3`,
		v.id, before, p.Size()+1)
	if err != nil {
		return nil, "", fmt.Errorf("list reports: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Report, error) { return scanReport(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list reports: %w", err)
	}
	items, next := pagination.Trim(items, p, func(r Report) any { return r.ID })
	return items, next, nil
}

// Get returns one report of a model version with its metrics and tests.
func (s *Service) Get(ctx context.Context, model string, version int, id int64) (Report, error) {
	v, err := findVersion(ctx, s.db, model, version)
	if err != nil {
		return Report{}, err
	}
	var one int
	err = s.db.QueryRow(ctx, `SELECT 1 FROM evaluation_reports WHERE id = $1 AND model_version_id = $2`, id, v.id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return Report{}, fmt.Errorf("%s/%d has no evaluation report %d: %w", model, version, id, errs.ErrNotFound)
	}
	if err != nil {
		return Report{}, err
	}
	return getReport(ctx, s.db, id)
}

// Head returns one report of a model version without its metrics and
// tests.
func (s *Service) Head(ctx context.Context, model string, version int, id int64) (Report, error) {
	r, err := scanReport(s.db.QueryRow(ctx, `SELECT `+reportColumns+reportFrom+`WHERE r.id = $1 AND m.name = $2 AND v.version = $3`, id, model, version))
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := findVersion(ctx, s.db, model, version); err != nil {
			return Report{}, err
		}
		return Report{}, fmt.Errorf("%s/%d has no evaluation report %d: %w", model, version, id, errs.ErrNotFound)
	}
	if err != nil {
		return Report{}, fmt.Errorf("read report %d: %w", id, err)
	}
	return r, nil
}

// OpenRaw opens the raw bytes of a report, as they were sent; the caller
// closes the reader.
func (s *Service) OpenRaw(ctx context.Context, model string, version int, id int64, rng *blob.Range) (Report, io.ReadCloser, blob.Info, error) {
	r, err := s.Head(ctx, model, version, id)
	if err != nil {
		return Report{}, nil, blob.Info{}, err
	}
	rc, info, err := s.store.Get(ctx, r.objectKey, rng)
	if err != nil {
		return Report{}, nil, blob.Info{}, fmt.Errorf("raw report %d: %w", id, err)
	}
	return r, rc, info, nil
}

// ReapOrphans deletes raw reports that no row references and that are
// older than grace (what a crash between the upload and its transaction
// leaves behind), and the unfinished uploads of raw reports.
func (s *Service) ReapOrphans(ctx context.Context, grace time.Duration) (blob.ReapStats, error) {
	return blob.ReapUnreferenced(ctx, s.store, "reports/", time.Now().Add(-grace), func(ctx context.Context, key string) (bool, error) {
		var ok bool
		err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT FROM evaluation_reports WHERE object_key = $1)`, key).Scan(&ok)
		return ok, err
	})
}
