package lineage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/database"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/internal/validate"
)

// Types of dataset version: uploaded to Slipway, or registered by
// reference to where the data lives.
const (
	TypeUpload         = "upload"          // the bytes are in Slipway's object store
	TypeObject         = "object"          // an object elsewhere: URI + content hash
	TypeWarehouseQuery = "warehouse_query" // SQL hash + parameters + as-of time
	TypeDBTRun         = "dbt_run"         // a dbt job run: ids + manifest hash + target
	TypeLakehouseRef   = "lakehouse_ref"   // an Iceberg snapshot, a Nessie or lakeFS commit
	TypeOpenLineage    = "openlineage"     // seen in an OpenLineage event
)

// Reference says where a version's data lives. Which fields apply depends
// on the version's type. URIs are stored as text and never fetched by
// Slipway, whatever their scheme.
type Reference struct {
	// object
	URI string `json:"uri,omitempty"`
	// warehouse_query
	Warehouse  string          `json:"warehouse,omitempty"`
	SQL        string          `json:"sql,omitempty"`
	SQLSHA256  string          `json:"sql_sha256,omitempty"`
	Parameters json.RawMessage `json:"parameters,omitempty"`
	AsOf       *time.Time      `json:"as_of,omitempty"`
	// dbt_run
	Project        string `json:"project,omitempty"`
	JobID          string `json:"job_id,omitempty"`
	RunID          string `json:"run_id,omitempty"`
	ManifestSHA256 string `json:"manifest_sha256,omitempty"`
	Target         string `json:"target,omitempty"`
	// lakehouse_ref
	Format     string `json:"format,omitempty"` // iceberg, delta, hudi, nessie, lakefs
	Catalog    string `json:"catalog,omitempty"`
	Repository string `json:"repository,omitempty"`
	Table      string `json:"table,omitempty"`
	SnapshotID string `json:"snapshot_id,omitempty"`
	Commit     string `json:"commit,omitempty"`
	Branch     string `json:"branch,omitempty"`
	// openlineage
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	// upload
	Filename string `json:"filename,omitempty"`
}

// Column is one column of a version's schema.
type Column struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Nullable    *bool  `json:"nullable,omitempty"`
	Description string `json:"description,omitempty"`
}

// Statistics are per-column figures: column -> statistic -> value, e.g.
// {"price": {"mean": 12.5, "null_count": 0}}. Values are numbers, strings
// or booleans.
type Statistics map[string]map[string]any

// Split describes how a version was cut from its source.
type Split struct {
	Role        string          `json:"role,omitempty"`     // train, validation, test, holdout…
	Strategy    string          `json:"strategy,omitempty"` // time, random, group, stratified…
	Description string          `json:"description,omitempty"`
	Boundaries  json.RawMessage `json:"boundaries,omitempty"` // e.g. {"from": "2026-01-01", "to": "2026-10-01"}
}

// QualitySummary sums up the latest data-quality result of each suite.
type QualitySummary struct {
	Status string `json:"status"` // passed, failed or none
	Passed int    `json:"passed"` // suites whose latest result passed
	Failed int    `json:"failed"` // suites whose latest result failed
}

// Quality statuses.
const (
	QualityPassed = "passed"
	QualityFailed = "failed"
	QualityNone   = "none"
)

// DatasetVersion is an immutable version of a dataset.
type DatasetVersion struct {
	id              int64
	Dataset         string            `json:"dataset"`
	Version         int               `json:"version"`
	Type            string            `json:"type"`
	Reference       Reference         `json:"reference"`
	SHA256          *string           `json:"sha256"`
	Size            *int64            `json:"size"`
	ContentType     string            `json:"content_type,omitempty"`
	Schema          []Column          `json:"schema"`
	RowCount        *int64            `json:"row_count"`
	Statistics      Statistics        `json:"statistics"`
	Split           Split             `json:"split"`
	Description     string            `json:"description"`
	Tags            map[string]string `json:"tags"`
	ExternalVersion *string           `json:"external_version"`
	// Facets are the OpenLineage dataset facets the version arrived with.
	Facets json.RawMessage `json:"facets"`
	// ProducedBy is the run whose output this version is, if known.
	ProducedBy *int64         `json:"produced_by"`
	Quality    QualitySummary `json:"quality"`
	CreatedBy  string         `json:"created_by"`
	CreatedAt  time.Time      `json:"created_at"`
	objectKey  *string
}

// Ref is the version's node reference.
func (v DatasetVersion) Ref() NodeRef {
	return NodeRef{Kind: KindDatasetVersion, Name: v.Dataset, Version: v.Version}
}

func (v DatasetVersion) auditView() map[string]any {
	return map[string]any{"dataset": v.Dataset, "version": v.Version, "type": v.Type, "reference": v.Reference,
		"sha256": v.SHA256, "size": v.Size, "row_count": v.RowCount, "external_version": v.ExternalVersion}
}

// NewDatasetVersion is a version being registered.
type NewDatasetVersion struct {
	Type            string            `json:"type"`
	Reference       Reference         `json:"reference"`
	SHA256          string            `json:"sha256"`
	Size            *int64            `json:"size"`
	Schema          []Column          `json:"schema"`
	RowCount        *int64            `json:"row_count"`
	Statistics      Statistics        `json:"statistics"`
	Split           Split             `json:"split"`
	Description     string            `json:"description"`
	Tags            map[string]string `json:"tags"`
	ExternalVersion string            `json:"external_version"`
	// set by OpenLineage ingestion, not by clients
	facets     json.RawMessage
	producedBy int64
}

const (
	maxColumns        = 2000
	maxStatsPerColumn = 64
	maxSQLBytes       = 1 << 20
	maxParamBytes     = 64 << 10
)

var lakehouseFormats = map[string]bool{"iceberg": true, "delta": true, "hudi": true, "nessie": true, "lakefs": true}

// Validate checks the metadata of a version and fills defaults. An upload
// (the bytes come with the request) has type upload and no reference.
func (in *NewDatasetVersion) Validate() error {
	var fe errs.FieldErrors
	r := &in.Reference
	text := func(field, s string, max int) { validate.Text("reference."+field, s, max, false, &fe) }
	required := func(field, s string) {
		if s == "" {
			fe.Add("reference."+field, "is required for a version of type %s", in.Type)
		}
	}
	for _, f := range []struct {
		name, value string
	}{{"uri", r.URI}, {"warehouse", r.Warehouse}, {"project", r.Project}, {"job_id", r.JobID}, {"run_id", r.RunID},
		{"target", r.Target}, {"catalog", r.Catalog}, {"repository", r.Repository}, {"table", r.Table},
		{"snapshot_id", r.SnapshotID}, {"commit", r.Commit}, {"branch", r.Branch}, {"namespace", r.Namespace},
		{"name", r.Name}, {"filename", r.Filename}} {
		text(f.name, f.value, 2048)
	}
	switch in.Type {
	case TypeUpload, TypeOpenLineage:
		// set by the server
	case TypeObject:
		required("uri", r.URI)
		if !validate.SHA256(in.SHA256) {
			fe.Add("sha256", "is required for a version of type object: the lower-case hex SHA-256 of the object's content")
		}
	case TypeWarehouseQuery:
		required("warehouse", r.Warehouse)
		if len(r.SQL) > maxSQLBytes {
			fe.Add("reference.sql", "must be at most %d bytes", maxSQLBytes)
		} else if r.SQL != "" {
			validate.Text("reference.sql", r.SQL, maxSQLBytes, true, &fe)
			sum := sha256.Sum256([]byte(r.SQL))
			if h := hex.EncodeToString(sum[:]); r.SQLSHA256 == "" {
				r.SQLSHA256 = h
			} else if r.SQLSHA256 != h {
				fe.Add("reference.sql_sha256", "does not match the SHA-256 of reference.sql (%s)", h)
			}
		}
		if !validate.SHA256(r.SQLSHA256) {
			fe.Add("reference.sql_sha256", "is required for a version of type warehouse_query (or send reference.sql and Slipway computes it): lower-case hex SHA-256")
		}
		if r.AsOf == nil {
			fe.Add("reference.as_of", "is required for a version of type warehouse_query: the RFC 3339 time the query reads the warehouse as of")
		}
		if len(r.Parameters) > maxParamBytes {
			fe.Add("reference.parameters", "must be at most %d bytes of JSON", maxParamBytes)
		} else if !isObject(r.Parameters) {
			fe.Add("reference.parameters", "must be a JSON object")
		}
	case TypeDBTRun:
		if r.JobID == "" && r.RunID == "" {
			fe.Add("reference.run_id", "a version of type dbt_run needs reference.run_id or reference.job_id")
		}
		if !validate.SHA256(r.ManifestSHA256) {
			fe.Add("reference.manifest_sha256", "is required for a version of type dbt_run: the lower-case hex SHA-256 of manifest.json")
		}
	case TypeLakehouseRef:
		if !lakehouseFormats[r.Format] {
			fe.Add("reference.format", "must be one of iceberg, delta, hudi, nessie, lakefs")
		}
		if r.Table == "" && r.Repository == "" {
			fe.Add("reference.table", "a version of type lakehouse_ref needs reference.table or reference.repository")
		}
		if r.SnapshotID == "" && r.Commit == "" {
			fe.Add("reference.snapshot_id", "a version of type lakehouse_ref needs reference.snapshot_id or reference.commit")
		}
	case "":
		fe.Add("type", "is required: one of object, warehouse_query, dbt_run, lakehouse_ref (or upload the file as multipart/form-data)")
	default:
		fe.Add("type", "must be one of object, warehouse_query, dbt_run, lakehouse_ref (or upload the file as multipart/form-data)")
	}
	if in.Type != TypeObject && in.Type != TypeUpload && in.SHA256 != "" {
		fe.Add("sha256", "is the content hash of an object or upload; a version of type %s carries its hashes in reference", in.Type)
	}
	if in.Type != TypeWarehouseQuery && (r.SQL != "" || r.SQLSHA256 != "" || r.AsOf != nil || len(r.Parameters) > 0) {
		fe.Add("reference", "sql, sql_sha256, parameters and as_of belong to a version of type warehouse_query")
	}
	if in.Size != nil && *in.Size < 0 {
		fe.Add("size", "must not be negative")
	}
	if in.RowCount != nil && *in.RowCount < 0 {
		fe.Add("row_count", "must not be negative")
	}
	validateSchema(in.Schema, &fe)
	if in.Schema == nil {
		in.Schema = []Column{}
	}
	validateStatistics(in.Statistics, &fe)
	if in.Statistics == nil {
		in.Statistics = Statistics{}
	}
	validate.Text("split.role", in.Split.Role, 64, false, &fe)
	validate.Text("split.strategy", in.Split.Strategy, 64, false, &fe)
	validate.Text("split.description", in.Split.Description, 2000, true, &fe)
	if len(in.Split.Boundaries) > maxParamBytes {
		fe.Add("split.boundaries", "must be at most %d bytes of JSON", maxParamBytes)
	} else if !isObject(in.Split.Boundaries) {
		fe.Add("split.boundaries", "must be a JSON object")
	}
	validate.Text("description", in.Description, 10000, true, &fe)
	if in.Tags == nil {
		in.Tags = map[string]string{}
	}
	validate.Tags("tags", in.Tags, &fe)
	validate.Text("external_version", in.ExternalVersion, 512, false, &fe)
	return fe.Err()
}

// isObject accepts an absent value or a JSON object.
func isObject(raw json.RawMessage) bool {
	if len(raw) == 0 || string(raw) == "null" {
		return true
	}
	var m map[string]json.RawMessage
	return json.Unmarshal(raw, &m) == nil
}

func validateSchema(cols []Column, fe *errs.FieldErrors) {
	if len(cols) > maxColumns {
		fe.Add("schema", "must hold at most %d columns", maxColumns)
		return
	}
	seen := map[string]bool{}
	for i, c := range cols {
		field := fmt.Sprintf("schema[%d]", i)
		if c.Name == "" {
			fe.Add(field+".name", "is required")
		} else if seen[c.Name] {
			fe.Add(field+".name", "%q appears twice", c.Name)
		}
		seen[c.Name] = true
		validate.Text(field+".name", c.Name, 256, false, fe)
		validate.Text(field+".type", c.Type, 256, false, fe)
		validate.Text(field+".description", c.Description, 2000, true, fe)
	}
}

func validateStatistics(st Statistics, fe *errs.FieldErrors) {
	if len(st) > maxColumns {
		fe.Add("statistics", "must describe at most %d columns", maxColumns)
		return
	}
	for _, col := range sortedKeys(st) {
		stats := st[col]
		field := "statistics." + col
		validate.Text(field, col, 256, false, fe)
		if len(stats) > maxStatsPerColumn {
			fe.Add(field, "must hold at most %d statistics", maxStatsPerColumn)
			continue
		}
		for _, name := range sortedKeys(stats) {
			switch v := stats[name].(type) {
			case float64:
				if math.IsInf(v, 0) || math.IsNaN(v) {
					fe.Add(field+"."+name, "must be a finite number")
				}
			case bool, nil:
			case string:
				validate.Text(field+"."+name, v, 1024, false, fe)
			default:
				fe.Add(field+"."+name, "must be a number, a string or a boolean")
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// CreateDatasetVersion registers a version by reference.
func (s *Service) CreateDatasetVersion(ctx context.Context, dataset string, in NewDatasetVersion) (DatasetVersion, error) {
	if in.Type == TypeUpload || in.Type == TypeOpenLineage {
		return DatasetVersion{}, errs.Invalid("type", "a version of type %s is made by Slipway: upload the file as multipart/form-data, or post an OpenLineage event", in.Type)
	}
	if err := in.Validate(); err != nil {
		return DatasetVersion{}, err
	}
	var v DatasetVersion
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		d, err := lockDataset(ctx, tx, dataset)
		if err != nil {
			return err
		}
		v, err = insertDatasetVersion(ctx, tx, d, in, nil)
		return err
	})
	return v, err
}

// lockDataset reads a dataset and locks its row until the transaction ends:
// versions are numbered one after the other.
func lockDataset(ctx context.Context, tx pgx.Tx, name string) (Dataset, error) {
	d, err := scanDataset(tx.QueryRow(ctx, `SELECT `+datasetColumns+datasetFrom+`WHERE d.name = $1 FOR UPDATE OF d`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return Dataset{}, fmt.Errorf("dataset %q: create it first with POST /api/v1/datasets: %w", name, errs.ErrNotFound)
	}
	if err != nil {
		return Dataset{}, fmt.Errorf("get dataset: %w", err)
	}
	return d, nil
}

// upload is what a streamed upload stored.
type upload struct {
	key         string
	size        int64
	sha256      string
	contentType string
}

// insertDatasetVersion numbers and records a version of d, and audits it.
func insertDatasetVersion(ctx context.Context, tx pgx.Tx, d Dataset, in NewDatasetVersion, up *upload) (DatasetVersion, error) {
	_, number, err := insertVersionRow(ctx, tx, d, in, up)
	if err != nil {
		return DatasetVersion{}, err
	}
	v, err := getDatasetVersion(ctx, tx, d.Name, number)
	if err != nil {
		return DatasetVersion{}, err
	}
	return v, audit.Record(ctx, tx, audit.Entry{Action: "dataset_version.create", TargetType: "dataset_version",
		TargetID: fmt.Sprintf("%s/%d", d.Name, number), After: v.auditView()})
}

// insertVersionRow numbers and records a version of d; the UPDATE that
// takes the number locks the dataset row until the transaction ends, so
// versions are numbered one after the other.
func insertVersionRow(ctx context.Context, tx database.Querier, d Dataset, in NewDatasetVersion, up *upload) (id int64, number int, err error) {
	var sha, objectKey, contentType *string
	size := in.Size
	if in.SHA256 != "" {
		sha = &in.SHA256
	}
	if up != nil {
		sha, objectKey, contentType, size = &up.sha256, &up.key, &up.contentType, &up.size
	}
	var ext *string
	if in.ExternalVersion != "" {
		ext = &in.ExternalVersion
	}
	facets := in.facets
	if len(facets) == 0 {
		facets = json.RawMessage("{}")
	}
	split, err := json.Marshal(in.Split)
	if err != nil {
		return 0, 0, err
	}
	// the number comes from the dataset row, which the statement locks
	// until the transaction ends: versions are numbered without gaps
	err = tx.QueryRow(ctx, `
		WITH n AS (UPDATE datasets SET next_version = next_version + 1 WHERE id = $1 RETURNING next_version - 1 AS version)
		INSERT INTO dataset_versions (dataset_id, version, source_type, reference, sha256, size, object_key, content_type,
		                              schema, row_count, statistics, split, description, tags, facets, external_version,
		                              produced_by, created_by)
		VALUES ($1, (SELECT version FROM n), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, nullif($16, 0), nullif($17, 0))
		RETURNING id, version`,
		d.ID, in.Type, in.Reference, sha, size, objectKey, contentType, in.Schema, in.RowCount, in.Statistics,
		split, in.Description, in.Tags, facets, ext, in.producedBy, audit.ActorFrom(ctx).UserID).Scan(&id, &number)
	if database.IsUniqueViolation(err) {
		return 0, 0, fmt.Errorf("dataset %q already has a version with external_version %q: %w", d.Name, in.ExternalVersion, errs.ErrConflict)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("record the dataset version: %w", err)
	}
	return id, number, nil
}

// maxUploadSize bounds one uploaded dataset file (S3's own object limit).
const maxUploadSize = 5 << 40

// UploadDatasetVersion streams r into the object store, hashing it on the
// way, and records it as a new version of type upload with the metadata of
// in (its type and reference are set here). Memory does not grow with the
// size of the file. confirm, if not nil, runs once the bytes are stored and
// before the version is recorded: an error from it (the request holds more
// than was expected) records nothing.
func (s *Service) UploadDatasetVersion(ctx context.Context, dataset string, in NewDatasetVersion, filename, contentType string, r io.Reader, confirm func() error) (DatasetVersion, error) {
	in.Type = TypeUpload
	in.Reference = Reference{Filename: filename}
	if in.SHA256 != "" && !validate.SHA256(in.SHA256) {
		return DatasetVersion{}, errs.Invalid("sha256", "must be the lower-case hex SHA-256 of the file, when given")
	}
	if err := in.Validate(); err != nil {
		return DatasetVersion{}, err
	}
	d, err := s.GetDataset(ctx, dataset)
	if err != nil {
		return DatasetVersion{}, err
	}
	if contentType == "" {
		contentType = blob.DefaultContentType
	}
	b := make([]byte, 16)
	rand.Read(b)
	key := fmt.Sprintf("datasets/%d/%s/data", d.ID, hex.EncodeToString(b))
	info, err := s.store.Put(ctx, key, io.LimitReader(r, maxUploadSize+1), blob.PutOptions{ContentType: contentType, Size: -1})
	if err != nil {
		return DatasetVersion{}, fmt.Errorf("dataset file: %w", err)
	}
	discard := func() { s.store.Delete(context.WithoutCancel(ctx), key) }
	if info.Size > maxUploadSize {
		discard()
		return DatasetVersion{}, fmt.Errorf("the dataset file is larger than 5 TiB: %w", errs.ErrTooLarge)
	}
	if in.SHA256 != "" && in.SHA256 != info.SHA256 {
		discard()
		return DatasetVersion{}, errs.Invalid("sha256", "the file's SHA-256 is %s, not %s as declared: the upload was damaged or the declaration is wrong", info.SHA256, in.SHA256)
	}
	if in.Size != nil && *in.Size != info.Size {
		discard()
		return DatasetVersion{}, errs.Invalid("size", "the file has %d bytes, not %d as declared", info.Size, *in.Size)
	}
	if confirm != nil {
		if err := confirm(); err != nil {
			discard()
			return DatasetVersion{}, err
		}
	}
	var v DatasetVersion
	err = pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		d, err := lockDataset(ctx, tx, dataset)
		if err != nil {
			return err
		}
		v, err = insertDatasetVersion(ctx, tx, d, in, &upload{key: key, size: info.Size, sha256: info.SHA256, contentType: contentType})
		return err
	})
	if err != nil {
		discard()
	}
	return v, err
}

const datasetVersionColumns = `dv.id, d.name, dv.version, dv.source_type, dv.reference, dv.sha256, dv.size, coalesce(dv.content_type, ''),
	dv.schema, dv.row_count, dv.statistics, dv.split, dv.description, dv.tags, dv.external_version, dv.facets, dv.produced_by,
	coalesce(u.name, ''), dv.created_at, dv.object_key,
	q.passed, q.failed`

// datasetVersionFrom joins the summary of the latest result of each quality suite.
const datasetVersionFrom = ` FROM dataset_versions dv JOIN datasets d ON d.id = dv.dataset_id LEFT JOIN users u ON u.id = dv.created_by
	CROSS JOIN LATERAL (
		SELECT count(*) FILTER (WHERE passed) AS passed, count(*) FILTER (WHERE NOT passed) AS failed
		FROM (SELECT DISTINCT ON (suite) passed FROM dataset_quality_results r
		      WHERE r.dataset_version_id = dv.id ORDER BY suite, id DESC) latest) q `

func scanDatasetVersion(row pgx.Row) (DatasetVersion, error) {
	var v DatasetVersion
	var split []byte
	err := row.Scan(&v.id, &v.Dataset, &v.Version, &v.Type, &v.Reference, &v.SHA256, &v.Size, &v.ContentType,
		&v.Schema, &v.RowCount, &v.Statistics, &split, &v.Description, &v.Tags, &v.ExternalVersion, &v.Facets, &v.ProducedBy,
		&v.CreatedBy, &v.CreatedAt, &v.objectKey, &v.Quality.Passed, &v.Quality.Failed)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(split, &v.Split); err != nil {
		return v, fmt.Errorf("dataset version split: %w", err)
	}
	v.Quality.Status = qualityStatus(v.Quality.Passed, v.Quality.Failed)
	if v.Schema == nil {
		v.Schema = []Column{}
	}
	if v.Statistics == nil {
		v.Statistics = Statistics{}
	}
	if v.Tags == nil {
		v.Tags = map[string]string{}
	}
	return v, nil
}

func qualityStatus(passed, failed int) string {
	switch {
	case failed > 0:
		return QualityFailed
	case passed > 0:
		return QualityPassed
	}
	return QualityNone
}

func getDatasetVersion(ctx context.Context, q querier, dataset string, number int) (DatasetVersion, error) {
	v, err := scanDatasetVersion(q.QueryRow(ctx, `SELECT `+datasetVersionColumns+datasetVersionFrom+`WHERE d.name = $1 AND dv.version = $2`, dataset, number))
	if errors.Is(err, pgx.ErrNoRows) {
		return DatasetVersion{}, fmt.Errorf("dataset %q version %d: %w", dataset, number, errs.ErrNotFound)
	}
	if err != nil {
		return DatasetVersion{}, fmt.Errorf("get dataset version: %w", err)
	}
	return v, nil
}

// GetDatasetVersion returns one version of a dataset.
func (s *Service) GetDatasetVersion(ctx context.Context, dataset string, number int) (DatasetVersion, error) {
	if _, err := s.GetDataset(ctx, dataset); err != nil {
		return DatasetVersion{}, err
	}
	return getDatasetVersion(ctx, s.db, dataset, number)
}

// ListDatasetVersions returns a dataset's versions, newest first.
func (s *Service) ListDatasetVersions(ctx context.Context, dataset string, p pagination.Page) ([]DatasetVersion, string, error) {
	var after struct {
		Version int `json:"v"`
	}
	if _, err := p.Decode(&after); err != nil {
		return nil, "", err
	}
	d, err := s.GetDataset(ctx, dataset)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.db.Query(ctx, `SELECT `+datasetVersionColumns+datasetVersionFrom+`
		WHERE dv.dataset_id = $1 AND ($2::integer = 0 OR dv.version < $2)
		ORDER BY dv.version DESC LIMIT $3`, d.ID, after.Version, p.Size()+1)
	if err != nil {
		return nil, "", fmt.Errorf("list dataset versions: %w", err)
	}
	vs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DatasetVersion, error) { return scanDatasetVersion(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list dataset versions: %w", err)
	}
	vs, next := pagination.Trim(vs, p, func(v DatasetVersion) any { return map[string]int{"v": v.Version} })
	return vs, next, nil
}

// OpenDatasetFile opens the uploaded file of a version, whole (rng nil) or
// a range.
func (s *Service) OpenDatasetFile(ctx context.Context, v DatasetVersion, rng *blob.Range) (io.ReadCloser, error) {
	if v.objectKey == nil {
		return nil, fmt.Errorf("dataset %q version %d is registered by reference (%s): Slipway does not hold its bytes: %w", v.Dataset, v.Version, v.Type, errs.ErrNotFound)
	}
	rc, _, err := s.store.Get(ctx, *v.objectKey, rng)
	if err != nil {
		return nil, fmt.Errorf("dataset %q version %d: %w", v.Dataset, v.Version, err)
	}
	return rc, nil
}
