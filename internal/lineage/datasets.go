package lineage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/database"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/internal/validate"
)

// Dataset is a named dataset; its content lives in its versions.
type Dataset struct {
	ID          int64             `json:"-"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Owner       string            `json:"owner"`
	Tags        map[string]string `json:"tags"`
	// OpenLineage is the dataset's OpenLineage identity, when an event
	// named it.
	OpenLineage   *OpenLineageName `json:"openlineage"`
	VersionCount  int              `json:"version_count"`
	LatestVersion *int             `json:"latest_version"`
	CreatedBy     string           `json:"created_by"`
	CreatedAt     time.Time        `json:"created_at"`
}

// OpenLineageName is how OpenLineage names a dataset.
type OpenLineageName struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

const datasetColumns = `d.id, d.name, d.description, d.owner, d.tags, d.ol_namespace, d.ol_name,
	d.next_version - 1, nullif(d.next_version - 1, 0), coalesce(u.name, ''), d.created_at`

const datasetFrom = ` FROM datasets d LEFT JOIN users u ON u.id = d.created_by `

func scanDataset(row pgx.Row) (Dataset, error) {
	var ds datasetScan
	err := row.Scan(ds.dest()...)
	return ds.dataset(), err
}

// datasetScan receives the columns of datasetColumns.
type datasetScan struct {
	d        Dataset
	ns, name *string
}

func (s *datasetScan) dest() []any {
	d := &s.d
	return []any{&d.ID, &d.Name, &d.Description, &d.Owner, &d.Tags, &s.ns, &s.name, &d.VersionCount, &d.LatestVersion, &d.CreatedBy, &d.CreatedAt}
}

func (s *datasetScan) dataset() Dataset {
	d := s.d
	if s.ns != nil && s.name != nil {
		d.OpenLineage = &OpenLineageName{Namespace: *s.ns, Name: *s.name}
	}
	if d.Tags == nil {
		d.Tags = map[string]string{}
	}
	return d
}

func (d Dataset) auditView() map[string]any {
	return map[string]any{"name": d.Name, "description": d.Description, "owner": d.Owner, "tags": d.Tags, "openlineage": d.OpenLineage}
}

// NewDataset is the input of CreateDataset.
type NewDataset struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Owner       string            `json:"owner"`
	Tags        map[string]string `json:"tags"`
}

// Validate checks the input and fills defaults.
func (in *NewDataset) Validate() error {
	var fe errs.FieldErrors
	if err := validate.Name("name", in.Name); err != nil {
		fe = append(fe, validate.Flatten(err)...)
	}
	validate.Text("description", in.Description, 10000, true, &fe)
	validate.Text("owner", in.Owner, 128, false, &fe)
	if in.Tags == nil {
		in.Tags = map[string]string{}
	}
	validate.Tags("tags", in.Tags, &fe)
	return fe.Err()
}

// CreateDataset registers a dataset.
func (s *Service) CreateDataset(ctx context.Context, in NewDataset) (Dataset, error) {
	if err := in.Validate(); err != nil {
		return Dataset{}, err
	}
	var d Dataset
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var err error
		d, err = insertDataset(ctx, tx, in, nil)
		return err
	})
	return d, err
}

func insertDataset(ctx context.Context, tx pgx.Tx, in NewDataset, ol *OpenLineageName) (Dataset, error) {
	var ns, olName *string
	if ol != nil {
		ns, olName = &ol.Namespace, &ol.Name
	}
	var id int64
	err := tx.QueryRow(ctx, `
		INSERT INTO datasets (name, description, owner, tags, ol_namespace, ol_name, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, nullif($7, 0)) RETURNING id`,
		in.Name, in.Description, in.Owner, in.Tags, ns, olName, audit.ActorFrom(ctx).UserID).Scan(&id)
	if database.IsUniqueViolation(err) {
		return Dataset{}, fmt.Errorf("dataset %q already exists (names are never reused): %w", in.Name, errs.ErrConflict)
	}
	if err != nil {
		return Dataset{}, fmt.Errorf("create dataset: %w", err)
	}
	d, err := scanDataset(tx.QueryRow(ctx, `SELECT `+datasetColumns+datasetFrom+`WHERE d.id = $1`, id))
	if err != nil {
		return Dataset{}, fmt.Errorf("create dataset: %w", err)
	}
	return d, audit.Record(ctx, tx, audit.Entry{Action: "dataset.create", TargetType: "dataset", TargetID: d.Name, After: d.auditView()})
}

// GetDataset returns the dataset called name.
func (s *Service) GetDataset(ctx context.Context, name string) (Dataset, error) {
	return getDataset(ctx, s.db, name)
}

func getDataset(ctx context.Context, q querier, name string) (Dataset, error) {
	d, err := scanDataset(q.QueryRow(ctx, `SELECT `+datasetColumns+datasetFrom+`WHERE d.name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return Dataset{}, fmt.Errorf("dataset %q: %w", name, errs.ErrNotFound)
	}
	if err != nil {
		return Dataset{}, fmt.Errorf("get dataset: %w", err)
	}
	return d, nil
}

// DatasetFilter selects datasets in a list.
type DatasetFilter struct {
	Prefix string // name prefix
}

// ListDatasets returns datasets by name.
func (s *Service) ListDatasets(ctx context.Context, f DatasetFilter, p pagination.Page) ([]Dataset, string, error) {
	var after struct {
		Name string `json:"n"`
	}
	if _, err := p.Decode(&after); err != nil {
		return nil, "", err
	}
	if len(f.Prefix) > 128 {
		return nil, "", errs.Invalid("q", "must be at most 128 characters")
	}
	rows, err := s.db.Query(ctx, `SELECT `+datasetColumns+datasetFrom+`
		WHERE d.name > $1 AND d.name LIKE $2 ESCAPE '\'
		ORDER BY d.name LIMIT $3`, after.Name, database.EscapeLike(f.Prefix)+"%", p.Size()+1)
	if err != nil {
		return nil, "", fmt.Errorf("list datasets: %w", err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Dataset, error) { return scanDataset(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list datasets: %w", err)
	}
	ds, next := pagination.Trim(ds, p, func(d Dataset) any { return map[string]string{"n": d.Name} })
	return ds, next, nil
}
