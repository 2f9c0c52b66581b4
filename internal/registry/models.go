// Package registry holds Slipway's model registry: models, their numbered
// versions and the artifacts of each version. Validation, decisions and SQL
// live here, behind one Service that the API and the UI both call.
package registry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/database"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/internal/validate"
)

// Service is the model registry.
type Service struct {
	db    *pgxpool.Pool
	store blob.Store
}

// NewService returns the registry over db, with artifacts in store.
func NewService(db *pgxpool.Pool, store blob.Store) *Service { return &Service{db: db, store: store} }

// NamePattern is the grammar of model (and dataset) names.
const NamePattern = validate.NamePattern

// ValidateName checks a model name against the grammar.
func ValidateName(field, name string) error { return validate.Name(field, name) }

// Tags are free key/value labels, e.g. {"team": "search", "task": "ranking"}.
type Tags map[string]string

// Model is a named model.
type Model struct {
	ID          int64      `json:"-"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Owner       string     `json:"owner"`
	Tags        Tags       `json:"tags"`
	CreatedBy   string     `json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	Archived    bool       `json:"archived"`
	ArchivedAt  *time.Time `json:"archived_at"`
	Revision    int64      `json:"revision"`
}

// ETag is the entity tag of the model's current revision.
func (m Model) ETag() string { return `"` + strconv.FormatInt(m.Revision, 10) + `"` }

func (m Model) auditView() map[string]any {
	return map[string]any{"name": m.Name, "description": m.Description, "owner": m.Owner, "tags": m.Tags, "archived": m.Archived, "revision": m.Revision}
}

const modelColumns = `m.id, m.name, m.description, m.owner, m.tags, coalesce(u.name, ''), m.created_at, m.updated_at, m.archived_at, m.revision`

const modelFrom = ` FROM models m LEFT JOIN users u ON u.id = m.created_by `

// modelFromCTE reads the row a data-modifying CTE named m returned (the
// table itself does not show it to the same statement).
const modelFromCTE = ` FROM m LEFT JOIN users u ON u.id = m.created_by `

func scanModel(row pgx.Row) (Model, error) {
	var m Model
	err := row.Scan(&m.ID, &m.Name, &m.Description, &m.Owner, &m.Tags, &m.CreatedBy, &m.CreatedAt, &m.UpdatedAt, &m.ArchivedAt, &m.Revision)
	m.Archived = m.ArchivedAt != nil
	if m.Tags == nil {
		m.Tags = Tags{}
	}
	return m, err
}

// NewModel is the input of CreateModel.
type NewModel struct {
	Name        string
	Description string
	Owner       string
	Tags        Tags
}

// CreateModel registers a model.
func (s *Service) CreateModel(ctx context.Context, in NewModel) (Model, error) {
	var fe errs.FieldErrors
	if err := ValidateName("name", in.Name); err != nil {
		fe = append(fe, err.(*errs.FieldError))
	}
	validate.Text("description", in.Description, 10000, true, &fe)
	validate.Text("owner", in.Owner, 128, false, &fe)
	validate.Tags("tags", in.Tags, &fe)
	if err := fe.Err(); err != nil {
		return Model{}, err
	}
	if in.Tags == nil {
		in.Tags = Tags{}
	}
	actor := audit.ActorFrom(ctx)
	var m Model
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var err error
		m, err = scanModel(tx.QueryRow(ctx, `
			WITH m AS (
				INSERT INTO models (name, description, owner, tags, created_by)
				VALUES ($1, $2, $3, $4, nullif($5, 0)) RETURNING *)
			SELECT `+modelColumns+modelFromCTE, in.Name, in.Description, in.Owner, in.Tags, actor.UserID))
		if database.IsUniqueViolation(err) {
			return fmt.Errorf("model %q already exists (names are never reused, archived models keep theirs): %w", in.Name, errs.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create model: %w", err)
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "model.create", TargetType: "model", TargetID: m.Name, After: m.auditView()})
	})
	return m, err
}

// GetModel returns the model called name, archived or not.
func (s *Service) GetModel(ctx context.Context, name string) (Model, error) {
	m, err := scanModel(s.db.QueryRow(ctx, `SELECT `+modelColumns+modelFrom+`WHERE m.name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return Model{}, fmt.Errorf("model %q: %w", name, errs.ErrNotFound)
	}
	if err != nil {
		return Model{}, fmt.Errorf("get model: %w", err)
	}
	return m, nil
}

// ModelFilter selects models in a list.
type ModelFilter struct {
	Prefix   string // name prefix
	Tag      string // "key" (has the tag) or "key=value" (the tag with that value)
	Archived bool   // list archived models instead of live ones
}

// ListModels returns models by name.
func (s *Service) ListModels(ctx context.Context, f ModelFilter, p pagination.Page) ([]Model, string, error) {
	var after struct {
		Name string `json:"name"`
	}
	if _, err := p.Decode(&after); err != nil {
		return nil, "", err
	}
	var fe errs.FieldErrors
	if len(f.Prefix) > 128 {
		fe.Add("q", "must be at most 128 characters")
	}
	var tagKey, tagValue string
	hasValue := false
	if f.Tag != "" {
		tagKey, tagValue, hasValue = strings.Cut(f.Tag, "=")
		if !validate.TagKey(tagKey) {
			fe.Add("tag", "must be key or key=value, with a key matching ^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")
		}
	}
	if err := fe.Err(); err != nil {
		return nil, "", err
	}
	var contains Tags // key=value: the tag with that value
	hasKey := ""      // key: the tag, whatever its value
	if hasValue {
		contains = Tags{tagKey: tagValue}
	} else {
		hasKey = tagKey
	}
	rows, err := s.db.Query(ctx, `SELECT `+modelColumns+modelFrom+`
		WHERE m.name > $1
		  AND (m.archived_at IS NOT NULL) = $2
		  AND ($3 = '' OR m.name LIKE $3 || '%')
		  AND ($4::jsonb IS NULL OR m.tags @> $4)
		  AND ($5 = '' OR m.tags ? $5)
		ORDER BY m.name LIMIT $6`,
		after.Name, f.Archived, database.EscapeLike(f.Prefix), nullTags(contains), hasKey, p.Size()+1)
	if err != nil {
		return nil, "", fmt.Errorf("list models: %w", err)
	}
	models, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Model, error) { return scanModel(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list models: %w", err)
	}
	models, next := pagination.Trim(models, p, func(m Model) any { return map[string]string{"name": m.Name} })
	return models, next, nil
}

func nullTags(t Tags) any {
	if t == nil {
		return nil
	}
	return t
}

// ModelUpdate changes a model; nil fields stay as they are.
type ModelUpdate struct {
	Description *string
	Owner       *string
	Tags        *Tags // replaces all tags
	Archived    *bool
}

// UpdateModel changes a model if it is still at revision ifMatch
// (optimistic concurrency: ErrPreconditionFailed when someone changed it
// since the caller read it).
func (s *Service) UpdateModel(ctx context.Context, name string, ifMatch int64, in ModelUpdate) (Model, error) {
	var fe errs.FieldErrors
	if in.Description != nil {
		validate.Text("description", *in.Description, 10000, true, &fe)
	}
	if in.Owner != nil {
		validate.Text("owner", *in.Owner, 128, false, &fe)
	}
	if in.Tags != nil {
		if *in.Tags == nil {
			*in.Tags = Tags{}
		}
		validate.Tags("tags", *in.Tags, &fe)
	}
	if in.Description == nil && in.Owner == nil && in.Tags == nil && in.Archived == nil {
		fe.Add("body", "must set at least one of description, owner, tags, archived")
	}
	if err := fe.Err(); err != nil {
		return Model{}, err
	}
	var after Model
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		before, err := scanModel(tx.QueryRow(ctx, `SELECT `+modelColumns+modelFrom+`WHERE m.name = $1 FOR UPDATE OF m`, name))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("model %q: %w", name, errs.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("update model: %w", err)
		}
		if before.Revision != ifMatch {
			return fmt.Errorf("model %q is at revision %d, not %d: someone changed it since you read it; read it again: %w",
				name, before.Revision, ifMatch, errs.ErrPreconditionFailed)
		}
		if unchanged(before, in) {
			after = before // nothing changes: nothing to write or audit
			return nil
		}
		var tags any
		if in.Tags != nil {
			tags = *in.Tags
		}
		after, err = scanModel(tx.QueryRow(ctx, `
			WITH m AS (
				UPDATE models SET
					description = coalesce($2, description),
					owner = coalesce($3, owner),
					tags = coalesce($4::jsonb, tags),
					archived_at = CASE WHEN $5::bool IS NULL THEN archived_at WHEN $5 THEN coalesce(archived_at, now()) ELSE NULL END,
					updated_at = now(),
					revision = revision + 1
				WHERE id = $1 RETURNING *)
			SELECT `+modelColumns+modelFromCTE, before.ID, in.Description, in.Owner, tags, in.Archived))
		if err != nil {
			return fmt.Errorf("update model: %w", err)
		}
		action := "model.update"
		if in.Archived != nil && before.Archived != after.Archived {
			action = map[bool]string{true: "model.archive", false: "model.unarchive"}[after.Archived]
		}
		return audit.Record(ctx, tx, audit.Entry{Action: action, TargetType: "model", TargetID: name, Before: before.auditView(), After: after.auditView()})
	})
	return after, err
}

// CountModels counts live models (for the dashboard).
func (s *Service) CountModels(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM models WHERE archived_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count models: %w", err)
	}
	return n, nil
}

// unchanged reports whether applying in to m would change nothing.
func unchanged(m Model, in ModelUpdate) bool {
	if in.Description != nil && *in.Description != m.Description {
		return false
	}
	if in.Owner != nil && *in.Owner != m.Owner {
		return false
	}
	if in.Archived != nil && *in.Archived != m.Archived {
		return false
	}
	if in.Tags != nil {
		if len(*in.Tags) != len(m.Tags) {
			return false
		}
		for k, v := range *in.Tags {
			if mv, ok := m.Tags[k]; !ok || mv != v {
				return false
			}
		}
	}
	return true
}
