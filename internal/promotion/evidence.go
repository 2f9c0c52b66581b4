package promotion

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-ml/slipway/internal/errs"
)

// versionRow is what the promotion code needs of a model version.
type versionRow struct {
	id, modelID int64
	number      int
	status      string
	authorID    *int64
	author      string
	tags        map[string]string
}

func findVersion(ctx context.Context, q querier, model string, number int) (versionRow, error) {
	var v versionRow
	err := q.QueryRow(ctx, `
		SELECT v.id, v.model_id, v.version, v.status, v.created_by, coalesce(u.name, ''), v.tags
		FROM model_versions v JOIN models m ON m.id = v.model_id LEFT JOIN users u ON u.id = v.created_by
		WHERE m.name = $1 AND v.version = $2`, model, number).
		Scan(&v.id, &v.modelID, &v.number, &v.status, &v.authorID, &v.author, &v.tags)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := modelID(ctx, q, model); err != nil {
			return versionRow{}, err
		}
		return versionRow{}, fmt.Errorf("model %q version %d: %w", model, number, errs.ErrNotFound)
	}
	if err != nil {
		return versionRow{}, fmt.Errorf("find version: %w", err)
	}
	return v, nil
}

func versionByID(ctx context.Context, q querier, id int64) (versionRow, error) {
	var v versionRow
	err := q.QueryRow(ctx, `
		SELECT v.id, v.model_id, v.version, v.status, v.created_by, coalesce(u.name, ''), v.tags
		FROM model_versions v LEFT JOIN users u ON u.id = v.created_by WHERE v.id = $1`, id).
		Scan(&v.id, &v.modelID, &v.number, &v.status, &v.authorID, &v.author, &v.tags)
	if err != nil {
		return versionRow{}, fmt.Errorf("read version %d: %w", id, err)
	}
	return v, nil
}

// loadEvidence reads what the engine needs of a version: its reports
// (newest first) with their metrics and tests, its training inputs with
// their failing data-quality suites, and its stretches on each stage.
func loadEvidence(ctx context.Context, q querier, v versionRow) (Evidence, error) {
	e := Evidence{Version: v.number, Tags: v.tags}
	rows, err := q.Query(ctx, `
		SELECT r.id, r.suite, r.created_at, dv.id, d.name, dv.version
		FROM evaluation_reports r
		LEFT JOIN dataset_versions dv ON dv.id = r.dataset_version_id LEFT JOIN datasets d ON d.id = dv.dataset_id
		WHERE r.model_version_id = $1 ORDER BY r.id DESC`, v.id)
	if err != nil {
		return Evidence{}, fmt.Errorf("read reports: %w", err)
	}
	byID := map[int64]int{}
	e.Reports, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Report, error) {
		var rep Report
		var dvID *int64
		var dname *string
		var dver *int
		if err := r.Scan(&rep.ID, &rep.Suite, &rep.CreatedAt, &dvID, &dname, &dver); err != nil {
			return rep, err
		}
		if dvID != nil {
			rep.Dataset = &DatasetRef{ID: *dvID, Name: *dname, Version: *dver}
		}
		rep.Metrics = map[string]float64{}
		return rep, nil
	})
	if err != nil {
		return Evidence{}, fmt.Errorf("read reports: %w", err)
	}
	for i, r := range e.Reports {
		byID[r.ID] = i
	}
	if len(e.Reports) > 0 {
		ids := make([]int64, len(e.Reports))
		for i, r := range e.Reports {
			ids[i] = r.ID
		}
		rows, err := q.Query(ctx, `SELECT report_id, key, value FROM evaluation_metrics WHERE report_id = ANY($1)`, ids)
		if err != nil {
			return Evidence{}, fmt.Errorf("read metrics: %w", err)
		}
		var rid int64
		var key string
		var val float64
		if _, err := pgx.ForEachRow(rows, []any{&rid, &key, &val}, func() error {
			e.Reports[byID[rid]].Metrics[key] = val
			return nil
		}); err != nil {
			return Evidence{}, fmt.Errorf("read metrics: %w", err)
		}
		rows, err = q.Query(ctx, `SELECT report_id, name, passed FROM evaluation_tests WHERE report_id = ANY($1) ORDER BY report_id, ord`, ids)
		if err != nil {
			return Evidence{}, fmt.Errorf("read tests: %w", err)
		}
		var name string
		var passed bool
		if _, err := pgx.ForEachRow(rows, []any{&rid, &name, &passed}, func() error {
			r := &e.Reports[byID[rid]]
			r.Tests = append(r.Tests, Test{Name: name, Passed: passed})
			return nil
		}); err != nil {
			return Evidence{}, fmt.Errorf("read tests: %w", err)
		}
	}

	// training inputs: datasets read by the run that produced the version,
	// and datasets named directly as its training data
	rows, err = q.Query(ctx, `
		WITH inputs AS (
			SELECT e.src_id AS id FROM lineage_edges e
			WHERE e.dst_kind = 'model_version' AND e.dst_id = $1 AND e.src_kind = 'dataset_version'
			UNION
			SELECT e.src_id FROM lineage_edges e
			WHERE e.dst_kind = 'run' AND e.src_kind = 'dataset_version' AND e.dst_id IN (
				SELECT p.src_id FROM lineage_edges p WHERE p.dst_kind = 'model_version' AND p.dst_id = $1 AND p.src_kind = 'run'))
		SELECT dv.id, d.name, dv.version,
		       coalesce((SELECT array_agg(q.suite ORDER BY q.suite) FROM (
		           SELECT DISTINCT ON (suite) suite, passed FROM dataset_quality_results
		           WHERE dataset_version_id = dv.id ORDER BY suite, id DESC) q WHERE NOT q.passed), '{}')
		FROM inputs i JOIN dataset_versions dv ON dv.id = i.id JOIN datasets d ON d.id = dv.dataset_id
		ORDER BY d.name, dv.version`, v.id)
	if err != nil {
		return Evidence{}, fmt.Errorf("read training inputs: %w", err)
	}
	e.TrainingInputs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (DatasetRef, error) {
		var d DatasetRef
		err := r.Scan(&d.ID, &d.Name, &d.Version, &d.FailedQuality)
		return d, err
	})
	if err != nil {
		return Evidence{}, fmt.Errorf("read training inputs: %w", err)
	}
	if e.Holds, err = holds(ctx, q, v.modelID, v.id); err != nil {
		return Evidence{}, err
	}
	return e, nil
}

// evaluate loads the evidence of the candidate and of the stage's holder
// and applies the policy.
func evaluate(ctx context.Context, q querier, p Policy, st Stage, cand versionRow, approvals int, now time.Time) (Evaluation, error) {
	ce, err := loadEvidence(ctx, q, cand)
	if err != nil {
		return Evaluation{}, err
	}
	in := Input{Candidate: ce, Approvals: approvals, Now: now}
	if st.versionID != nil {
		holder, err := versionByID(ctx, q, *st.versionID)
		if err != nil {
			return Evaluation{}, err
		}
		he, err := loadEvidence(ctx, q, holder)
		if err != nil {
			return Evaluation{}, err
		}
		in.Champion = &he
	}
	return Evaluate(p, in), nil
}
