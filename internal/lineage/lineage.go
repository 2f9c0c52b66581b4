// Package lineage holds what produced Slipway's models: datasets and their
// immutable versions (uploaded or registered by reference), data-quality
// results, pipeline runs with their inputs and outputs, and the graph that
// joins them to model versions. It answers the two questions of lineage —
// what data and code produced this model version (provenance), and which
// model versions depend on this dataset version (impact) — and ingests
// OpenLineage run events. Validation, decisions and SQL live here, behind
// one Service that the API and the UI both call.
package lineage

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/validate"
)

// Service is the lineage store.
type Service struct {
	db    *pgxpool.Pool
	store blob.Store
}

// NewService returns the lineage service over db, with uploaded datasets
// and raw quality results in store.
func NewService(db *pgxpool.Pool, store blob.Store) *Service { return &Service{db: db, store: store} }

// Kinds of node in the lineage graph.
const (
	KindDatasetVersion = "dataset_version"
	KindRun            = "run"
	KindModelVersion   = "model_version"
)

// NodeRef names a node the way clients do: dataset_version:<dataset>/<n>,
// run:<id> or model_version:<model>/<n>.
type NodeRef struct {
	Kind    string
	Name    string // dataset or model name
	Version int    // dataset or model version number
	RunID   int64
}

func (r NodeRef) String() string {
	if r.Kind == KindRun {
		return KindRun + ":" + strconv.FormatInt(r.RunID, 10)
	}
	return r.Kind + ":" + r.Name + "/" + strconv.Itoa(r.Version)
}

const nodeRefRule = "must be dataset_version:<dataset>/<version>, model_version:<model>/<version> or run:<id>"

// ParseNodeRef reads a node reference. field names the input in errors.
func ParseNodeRef(field, s string) (NodeRef, error) {
	kind, ref, ok := strings.Cut(s, ":")
	if !ok {
		return NodeRef{}, errs.Invalid(field, nodeRefRule)
	}
	switch kind {
	case KindRun:
		id, err := strconv.ParseInt(ref, 10, 64)
		if err != nil || id <= 0 {
			return NodeRef{}, errs.Invalid(field, "run:<id> needs a positive integer id")
		}
		return NodeRef{Kind: kind, RunID: id}, nil
	case KindDatasetVersion, KindModelVersion:
		name, num, ok := strings.Cut(ref, "/")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n <= 0 || validate.Name(field, name) != nil {
			return NodeRef{}, errs.Invalid(field, "%s:<name>/<version> needs a valid name and a positive version number", kind)
		}
		return NodeRef{Kind: kind, Name: name, Version: n}, nil
	}
	return NodeRef{}, errs.Invalid(field, "unknown node type %q: %s", kind, nodeRefRule)
}

// node is a row of the graph: its kind and the id of its row.
type node struct {
	Kind string
	ID   int64
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// resolve finds the row a reference names.
func resolve(ctx context.Context, q querier, r NodeRef) (node, error) {
	var id int64
	var err error
	switch r.Kind {
	case KindRun:
		err = q.QueryRow(ctx, `SELECT id FROM runs WHERE id = $1`, r.RunID).Scan(&id)
	case KindDatasetVersion:
		err = q.QueryRow(ctx, `SELECT dv.id FROM dataset_versions dv JOIN datasets d ON d.id = dv.dataset_id
			WHERE d.name = $1 AND dv.version = $2`, r.Name, r.Version).Scan(&id)
	case KindModelVersion:
		err = q.QueryRow(ctx, `SELECT v.id FROM model_versions v JOIN models m ON m.id = v.model_id
			WHERE m.name = $1 AND v.version = $2`, r.Name, r.Version).Scan(&id)
	default:
		return node{}, errs.Invalid("node", "unknown node type %q", r.Kind)
	}
	if err == pgx.ErrNoRows {
		return node{}, fmt.Errorf("%s: %w", describe(r), errs.ErrNotFound)
	}
	if err != nil {
		return node{}, fmt.Errorf("resolve %s: %w", r, err)
	}
	return node{r.Kind, id}, nil
}

func describe(r NodeRef) string {
	switch r.Kind {
	case KindRun:
		return fmt.Sprintf("run %d", r.RunID)
	case KindDatasetVersion:
		return fmt.Sprintf("dataset %q version %d", r.Name, r.Version)
	}
	return fmt.Sprintf("model %q version %d", r.Name, r.Version)
}
