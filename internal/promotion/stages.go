package promotion

import (
	"context"
	"errors"
	"fmt"
	"net/url"
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

// Service holds stages, policies and promotion requests.
type Service struct {
	db    *pgxpool.Pool
	store blob.Store
	now   func() time.Time
}

// NewService returns the promotion service over db; store holds the
// artifacts whose locations a stage's holder is read with.
func NewService(db *pgxpool.Pool, store blob.Store) *Service {
	return &Service{db: db, store: store, now: time.Now}
}

// Stage is a named pointer of a model to at most one of its versions.
type Stage struct {
	id          int64
	modelID     int64
	versionID   *int64
	Model       string     `json:"model"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Version     *int       `json:"version"` // nil: no version holds it
	Since       *time.Time `json:"since"`
	// Policy is the revision of the stage's policy in force (0: none
	// written, the default applies).
	PolicyRevision int `json:"policy_revision"`
	// Artifacts of the holder (one stage read), for the serving layer.
	Artifacts []StageArtifact `json:"artifacts,omitempty"`
}

// StageArtifact is an artifact of the version a stage points to.
type StageArtifact struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// URL downloads it through Slipway's API (a bearer token is needed).
	URL string `json:"url"`
}

const stageColumns = `s.id, s.model_id, s.version_id, m.name, s.name, s.description, v.version, s.since,
	coalesce((SELECT max(revision) FROM promotion_policies p WHERE p.stage_id = s.id), 0)`

const stageFrom = ` FROM stages s JOIN models m ON m.id = s.model_id LEFT JOIN model_versions v ON v.id = s.version_id `

func scanStage(row pgx.Row) (Stage, error) {
	var s Stage
	err := row.Scan(&s.id, &s.modelID, &s.versionID, &s.Model, &s.Name, &s.Description, &s.Version, &s.Since, &s.PolicyRevision)
	return s, err
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// modelID finds a model by name.
func modelID(ctx context.Context, q querier, model string) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `SELECT id FROM models WHERE name = $1`, model).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("model %q: %w", model, errs.ErrNotFound)
	}
	return id, err
}

// ListStages returns a model's stages, by name.
func (s *Service) ListStages(ctx context.Context, model string) ([]Stage, error) {
	mid, err := modelID(ctx, s.db, model)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT `+stageColumns+stageFrom+`WHERE s.model_id = $1 ORDER BY s.name`, mid)
	if err != nil {
		return nil, fmt.Errorf("list stages: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Stage, error) { return scanStage(r) })
}

func getStage(ctx context.Context, q querier, model, stage string, lock bool) (Stage, error) {
	sql := `SELECT ` + stageColumns + stageFrom + `WHERE m.name = $1 AND s.name = $2`
	if lock {
		sql += ` FOR UPDATE OF s`
	}
	st, err := scanStage(q.QueryRow(ctx, sql, model, stage))
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := modelID(ctx, q, model); err != nil {
			return Stage{}, err
		}
		return Stage{}, fmt.Errorf("model %q has no stage %q: %w", model, stage, errs.ErrNotFound)
	}
	if err != nil {
		return Stage{}, fmt.Errorf("get stage: %w", err)
	}
	return st, nil
}

// GetStage returns one stage with the artifacts of the version holding it:
// what the serving layer reads.
func (s *Service) GetStage(ctx context.Context, model, stage string) (Stage, error) {
	st, err := getStage(ctx, s.db, model, stage, false)
	if err != nil {
		return Stage{}, err
	}
	if st.versionID == nil {
		return st, nil
	}
	rows, err := s.db.Query(ctx, `SELECT path, size, sha256 FROM model_artifacts WHERE version_id = $1 ORDER BY path COLLATE "C"`, *st.versionID)
	if err != nil {
		return Stage{}, fmt.Errorf("stage artifacts: %w", err)
	}
	st.Artifacts, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (StageArtifact, error) {
		var a StageArtifact
		err := r.Scan(&a.Path, &a.Size, &a.SHA256)
		a.URL = fmt.Sprintf("/api/v1/models/%s/versions/%d/artifacts/%s", model, *st.Version, (&url.URL{Path: a.Path}).EscapedPath())
		return a, err
	})
	return st, err
}

// NewStage is the input of CreateStage.
type NewStage struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// CreateStage adds a stage to a model (admins: canary, shadow…).
func (s *Service) CreateStage(ctx context.Context, model string, in NewStage) (Stage, error) {
	var fe errs.FieldErrors
	if err := ValidateStageName("name", in.Name); err != nil {
		fe = append(fe, err.(*errs.FieldError))
	}
	validate.Text("description", in.Description, 2000, true, &fe)
	if err := fe.Err(); err != nil {
		return Stage{}, err
	}
	var st Stage
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		mid, err := modelID(ctx, tx, model)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO stages (model_id, name, description) VALUES ($1, $2, $3)`, mid, in.Name, in.Description)
		if database.IsUniqueViolation(err) {
			return fmt.Errorf("model %q already has a stage %q: %w", model, in.Name, errs.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create stage: %w", err)
		}
		if st, err = getStage(ctx, tx, model, in.Name, false); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "stage.create", TargetType: "stage", TargetID: model + "/" + in.Name,
			After: map[string]any{"model": model, "name": in.Name, "description": in.Description}})
	})
	return st, err
}

// Move is one move of a stage's pointer.
type Move struct {
	ID              int64     `json:"id"`
	Model           string    `json:"model"`
	Stage           string    `json:"stage"`
	Version         *int      `json:"version"`          // the new holder; nil when the stage was cleared
	PreviousVersion *int      `json:"previous_version"` // the holder before
	PromotionID     *int64    `json:"promotion_id"`
	Reason          string    `json:"reason"`
	Override        bool      `json:"override"`
	MovedBy         string    `json:"moved_by"`
	MovedAt         time.Time `json:"moved_at"`
}

const moveColumns = `mv.id, m.name, s.name, v.version, pv.version, mv.promotion_id, mv.reason, mv.override, mv.moved_by_name, mv.moved_at`

const moveFrom = ` FROM stage_moves mv JOIN stages s ON s.id = mv.stage_id JOIN models m ON m.id = mv.model_id
	LEFT JOIN model_versions v ON v.id = mv.version_id LEFT JOIN model_versions pv ON pv.id = mv.previous_version_id `

func scanMove(r pgx.Row) (Move, error) {
	var m Move
	err := r.Scan(&m.ID, &m.Model, &m.Stage, &m.Version, &m.PreviousVersion, &m.PromotionID, &m.Reason, &m.Override, &m.MovedBy, &m.MovedAt)
	return m, err
}

// History lists the moves of a model's stages (one stage when stage is
// not ""), newest first, a page at a time.
func (s *Service) History(ctx context.Context, model, stage string, p pagination.Page) ([]Move, string, error) {
	mid, err := modelID(ctx, s.db, model)
	if err != nil {
		return nil, "", err
	}
	if stage != "" {
		if _, err := getStage(ctx, s.db, model, stage, false); err != nil {
			return nil, "", err
		}
	}
	before := int64(1<<63 - 1)
	if _, err := p.Decode(&before); err != nil {
		return nil, "", err
	}
	rows, err := s.db.Query(ctx, `SELECT `+moveColumns+moveFrom+`
		WHERE mv.model_id = $1 AND ($2 = '' OR s.name = $2) AND mv.id < $3 ORDER BY mv.id DESC LIMIT $4`, mid, stage, before, p.Size()+1)
	if err != nil {
		return nil, "", fmt.Errorf("stage history: %w", err)
	}
	moves, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Move, error) { return scanMove(r) })
	if err != nil {
		return nil, "", fmt.Errorf("stage history: %w", err)
	}
	moves, next := pagination.Trim(moves, p, func(m Move) any { return m.ID })
	return moves, next, nil
}

// HolderAt answers "what held the stage at time t": the move in force then
// (nil when the stage had never been set, or was empty).
func (s *Service) HolderAt(ctx context.Context, model, stage string, t time.Time) (*Move, error) {
	st, err := getStage(ctx, s.db, model, stage, false)
	if err != nil {
		return nil, err
	}
	m, err := scanMove(s.db.QueryRow(ctx, `SELECT `+moveColumns+moveFrom+`
		WHERE mv.stage_id = $1 AND mv.moved_at <= $2 ORDER BY mv.moved_at DESC, mv.id DESC LIMIT 1`, st.id, t))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stage holder at %s: %w", t.Format(time.RFC3339), err)
	}
	return &m, nil
}

// moveStage points a locked stage at version (a model_versions id),
// records the move and its event. The caller holds the stage's row lock.
func moveStage(ctx context.Context, tx pgx.Tx, st Stage, versionID int64, promotionID *int64, reason string, override bool, actor string) (Move, error) {
	var id int64
	// the time of the move is read now, under the stage's lock, not at the
	// start of the transaction (now()): a request that waited for the lock
	// moves the stage after the one it waited for, and its date says so
	err := tx.QueryRow(ctx, `
		WITH t AS (SELECT clock_timestamp() AS at),
		u AS (UPDATE stages SET version_id = $2, since = (SELECT at FROM t) WHERE id = $1)
		INSERT INTO stage_moves (stage_id, model_id, version_id, previous_version_id, promotion_id, reason, override, moved_by_name, moved_at)
		VALUES ($1, $3, $2, $4, $5, $6, $7, $8, (SELECT at FROM t)) RETURNING id`,
		st.id, versionID, st.modelID, st.versionID, promotionID, reason, override, actor).Scan(&id)
	if err != nil {
		return Move{}, fmt.Errorf("move stage %s: %w", st.Name, err)
	}
	return scanMove(tx.QueryRow(ctx, `SELECT `+moveColumns+moveFrom+`WHERE mv.id = $1`, id))
}

// holds lists the stretches a version held each stage of its model, from
// the moves.
func holds(ctx context.Context, q querier, modelID, versionID int64) (map[string][]Hold, error) {
	rows, err := q.Query(ctx, `
		SELECT s.name, mv.version_id, mv.moved_at FROM stage_moves mv JOIN stages s ON s.id = mv.stage_id
		WHERE mv.model_id = $1 AND mv.stage_id IN (SELECT stage_id FROM stage_moves WHERE version_id = $2)
		ORDER BY mv.stage_id, mv.moved_at, mv.id`, modelID, versionID)
	if err != nil {
		return nil, fmt.Errorf("stage holds: %w", err)
	}
	defer rows.Close()
	out := map[string][]Hold{}
	for rows.Next() {
		var stage string
		var vid *int64
		var at time.Time
		if err := rows.Scan(&stage, &vid, &at); err != nil {
			return nil, err
		}
		hs := out[stage]
		if n := len(hs); n > 0 && hs[n-1].To == nil {
			t := at
			hs[n-1].To = &t // whatever came next ended the stretch
		}
		if vid != nil && *vid == versionID {
			hs = append(hs, Hold{From: at})
		}
		out[stage] = hs
	}
	return out, rows.Err()
}
