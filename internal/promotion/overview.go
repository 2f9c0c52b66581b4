package promotion

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// RecentMoves lists the latest stage moves of every model, newest first:
// what changed in what runs where, and who moved it why.
func (s *Service) RecentMoves(ctx context.Context, limit int) ([]Move, error) {
	rows, err := s.db.Query(ctx, `SELECT `+moveColumns+moveFrom+` ORDER BY mv.id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("recent stage moves: %w", err)
	}
	moves, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Move, error) { return scanMove(r) })
	if err != nil {
		return nil, fmt.Errorf("recent stage moves: %w", err)
	}
	return moves, nil
}

// Holding is a model's version in one stage, with the stage's key metric.
type Holding struct {
	Model   string    `json:"model"`
	Stage   string    `json:"stage"`
	Version int       `json:"version"`
	Kind    string    `json:"kind"`
	Since   time.Time `json:"since"`
	// MovedBy is who (or what) made the last move of the stage.
	MovedBy string `json:"moved_by"`
	// KeyMetric is the metric the stage's policy names first (a threshold
	// or a comparison with the champion), "" when the policy names none;
	// Value its value in the holder's latest report that has it (NaN as
	// reported).
	KeyMetric string   `json:"key_metric"`
	Value     *float64 `json:"value"`
}

// Holdings lists, model by model, the version that holds stage (e.g.
// production), at most limit models, by model name.
func (s *Service) Holdings(ctx context.Context, stage string, limit int) ([]Holding, error) {
	rows, err := s.db.Query(ctx, `
		SELECT m.name, s.name, v.version, v.kind, s.since, coalesce(mv.moved_by_name, ''), coalesce(k.metric, ''), val.value
		FROM stages s
		JOIN models m ON m.id = s.model_id
		JOIN model_versions v ON v.id = s.version_id
		LEFT JOIN LATERAL (SELECT moved_by_name FROM stage_moves WHERE stage_id = s.id ORDER BY moved_at DESC, id DESC LIMIT 1) mv ON true
		LEFT JOIN LATERAL (SELECT document FROM promotion_policies WHERE stage_id = s.id ORDER BY revision DESC LIMIT 1) p ON true
		LEFT JOIN LATERAL (
			SELECT r.rule->>'metric' AS metric FROM jsonb_array_elements(p.document->'rules') WITH ORDINALITY AS r(rule, i)
			WHERE coalesce(r.rule->>'metric', '') <> '' ORDER BY r.i LIMIT 1) k ON true
		LEFT JOIN LATERAL (
			SELECT em.value FROM evaluation_reports er JOIN evaluation_metrics em ON em.report_id = er.id AND em.key = k.metric
			WHERE er.model_version_id = v.id ORDER BY er.id DESC LIMIT 1) val ON true
		WHERE s.name = $1 AND s.version_id IS NOT NULL
		ORDER BY m.name LIMIT $2`, stage, limit)
	if err != nil {
		return nil, fmt.Errorf("stage holdings: %w", err)
	}
	hs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Holding, error) {
		var h Holding
		err := r.Scan(&h.Model, &h.Stage, &h.Version, &h.Kind, &h.Since, &h.MovedBy, &h.KeyMetric, &h.Value)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("stage holdings: %w", err)
	}
	return hs, nil
}
