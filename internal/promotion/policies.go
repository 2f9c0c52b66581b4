package promotion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/validate"
)

// StoredPolicy is one revision of a stage's policy.
type StoredPolicy struct {
	Model    string `json:"model"`
	Stage    string `json:"stage"`
	Revision int    `json:"revision"` // 0: no policy written, the default applies
	Default  bool   `json:"default"`
	Policy
	Comment   string     `json:"comment"`
	CreatedBy string     `json:"created_by"`
	CreatedAt *time.Time `json:"created_at"`
}

func policyOf(ctx context.Context, q querier, st Stage, revision int) (StoredPolicy, error) {
	out := StoredPolicy{Model: st.Model, Stage: st.Name}
	if revision == 0 {
		revision = st.PolicyRevision
	}
	if revision == 0 {
		out.Default, out.Policy = true, DefaultPolicy()
		return out, nil
	}
	var doc []byte
	var at time.Time
	err := q.QueryRow(ctx, `
		SELECT p.revision, p.document, p.comment, coalesce(u.name, ''), p.created_at
		FROM promotion_policies p LEFT JOIN users u ON u.id = p.created_by
		WHERE p.stage_id = $1 AND p.revision = $2`, st.id, revision).Scan(&out.Revision, &doc, &out.Comment, &out.CreatedBy, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return StoredPolicy{}, fmt.Errorf("stage %s of model %q has no policy revision %d: %w", st.Name, st.Model, revision, errs.ErrNotFound)
	}
	if err != nil {
		return StoredPolicy{}, fmt.Errorf("read policy: %w", err)
	}
	out.CreatedAt = &at
	if err := json.Unmarshal(doc, &out.Policy); err != nil {
		return StoredPolicy{}, fmt.Errorf("policy revision %d of %s/%s: %w", revision, st.Model, st.Name, err)
	}
	if out.Rules == nil {
		out.Rules = []Rule{}
	}
	return out, nil
}

// GetPolicy returns the policy in force on a stage, or one revision of it
// (revision > 0).
func (s *Service) GetPolicy(ctx context.Context, model, stage string, revision int) (StoredPolicy, error) {
	st, err := getStage(ctx, s.db, model, stage, false)
	if err != nil {
		return StoredPolicy{}, err
	}
	return policyOf(ctx, s.db, st, revision)
}

// PutPolicy writes a new revision of a stage's policy. ifRevision, when
// not nil, is the revision the writer read: a different current revision
// is a conflict (optimistic concurrency, If-Match).
func (s *Service) PutPolicy(ctx context.Context, model, stage string, p Policy, comment string, ifRevision *int) (StoredPolicy, error) {
	if p.Rules == nil {
		p.Rules = []Rule{}
	}
	var fe errs.FieldErrors
	validate.Text("comment", comment, 2000, true, &fe)
	if err := fe.Err(); err != nil {
		return StoredPolicy{}, err
	}
	if err := p.Validate(); err != nil {
		return StoredPolicy{}, err
	}
	doc, err := json.Marshal(p)
	if err != nil {
		return StoredPolicy{}, err
	}
	var out StoredPolicy
	err = pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		// the stage's lock orders concurrent writers, and promotions read
		// the policy under the same lock
		st, err := getStage(ctx, tx, model, stage, true)
		if err != nil {
			return err
		}
		if ifRevision != nil && *ifRevision != st.PolicyRevision {
			return fmt.Errorf("the policy of %s/%s is at revision %d, not %d: read it again: %w", model, stage, st.PolicyRevision, *ifRevision, errs.ErrPreconditionFailed)
		}
		before, err := policyOf(ctx, tx, st, 0)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO promotion_policies (stage_id, revision, document, comment, created_by) VALUES ($1, $2, $3, $4, nullif($5, 0))`,
			st.id, st.PolicyRevision+1, doc, comment, audit.ActorFrom(ctx).UserID); err != nil {
			return fmt.Errorf("write policy: %w", err)
		}
		st.PolicyRevision++
		if out, err = policyOf(ctx, tx, st, 0); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "policy.update", TargetType: "stage", TargetID: model + "/" + stage,
			Before: map[string]any{"revision": before.Revision, "rules": before.Rules},
			After:  map[string]any{"revision": out.Revision, "rules": out.Rules, "comment": comment}})
	})
	return out, err
}

// PolicyRevisions lists every revision of a stage's policy, newest first.
func (s *Service) PolicyRevisions(ctx context.Context, model, stage string) ([]StoredPolicy, error) {
	st, err := getStage(ctx, s.db, model, stage, false)
	if err != nil {
		return nil, err
	}
	out := []StoredPolicy{}
	for rev := st.PolicyRevision; rev > 0; rev-- {
		p, err := policyOf(ctx, s.db, st, rev)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
