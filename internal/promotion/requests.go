package promotion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/events"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/internal/validate"
)

// Statuses of a promotion request: a decision, or cancelled.
const (
	StatusPendingApproval = DecisionPendingApproval
	StatusPromoted        = DecisionPromoted
	StatusRejected        = DecisionRejected
	StatusCancelled       = "cancelled"
)

// Promotion is a request to move a stage of a model to a version, and
// what was decided.
type Promotion struct {
	ID      int64  `json:"id"`
	Model   string `json:"model"`
	Version int    `json:"version"`
	Stage   string `json:"stage"`
	Status  string `json:"status"`
	// Decision is promoted, pending_approval or rejected; cancelled once
	// withdrawn. It is the request's status: a reviewer's rejection
	// decides it as much as a failing rule.
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	// Override: an admin promoted whatever the rules said; the rules that
	// failed are marked skipped.
	Override       bool `json:"override"`
	PolicyRevision int  `json:"policy_revision"` // 0: the default policy
	// Champion is the version that held the stage at the last evaluation.
	Champion          *int         `json:"champion"`
	ApprovalsRequired int          `json:"approvals_required"`
	Approvals         int          `json:"approvals"`
	Rules             []RuleResult `json:"rules"`
	Message           string       `json:"message"`
	RequestedBy       string       `json:"requested_by"`
	Author            string       `json:"author"` // of the version
	CreatedAt         time.Time    `json:"created_at"`
	DecidedAt         *time.Time   `json:"decided_at"`
	DecidedBy         string       `json:"decided_by"`
	// Reviews and Evaluations are set when one request is read.
	Reviews     []Review           `json:"reviews,omitempty"`
	Evaluations []EvaluationRecord `json:"evaluations,omitempty"`

	stageID, modelID, versionID int64
	requesterID, authorID       *int64
}

// Review is a reviewer's word on a request.
type Review struct {
	Reviewer  string    `json:"reviewer"`
	Decision  string    `json:"decision"` // approve or reject
	Comment   string    `json:"comment"`
	CreatedAt time.Time `json:"created_at"`
}

// EvaluationRecord is one evaluation of a request's policy.
type EvaluationRecord struct {
	Decision       string       `json:"decision"`
	PolicyRevision int          `json:"policy_revision"`
	Champion       *int         `json:"champion"`
	Rules          []RuleResult `json:"rules"`
	EvaluatedAt    time.Time    `json:"evaluated_at"`
}

const promotionColumns = `p.id, m.name, v.version, s.name, p.status, p.reason, p.override, coalesce(p.policy_revision, 0),
	cv.version, p.approvals_required,
	(SELECT count(*) FROM promotion_reviews r WHERE r.promotion_id = p.id AND r.decision = 'approve'),
	p.rules, p.decision_message, p.requested_by_name, coalesce(au.name, ''), p.created_at, p.decided_at, coalesce(p.decided_by_name, ''),
	p.stage_id, p.model_id, p.version_id, p.requested_by, v.created_by, p.status`

const promotionFrom = ` FROM promotions p JOIN models m ON m.id = p.model_id JOIN model_versions v ON v.id = p.version_id
	JOIN stages s ON s.id = p.stage_id LEFT JOIN model_versions cv ON cv.id = p.champion_version_id
	LEFT JOIN users au ON au.id = v.created_by `

func scanPromotion(r pgx.Row) (Promotion, error) {
	var p Promotion
	var rules []byte
	err := r.Scan(&p.ID, &p.Model, &p.Version, &p.Stage, &p.Status, &p.Reason, &p.Override, &p.PolicyRevision,
		&p.Champion, &p.ApprovalsRequired, &p.Approvals, &rules, &p.Message, &p.RequestedBy, &p.Author, &p.CreatedAt, &p.DecidedAt, &p.DecidedBy,
		&p.stageID, &p.modelID, &p.versionID, &p.requesterID, &p.authorID, &p.Decision)
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(rules, &p.Rules); err != nil {
		return p, fmt.Errorf("promotion %d: rules: %w", p.ID, err)
	}
	return p, nil
}

func getPromotion(ctx context.Context, q querier, id int64, lock bool) (Promotion, error) {
	sql := `SELECT ` + promotionColumns + promotionFrom + `WHERE p.id = $1`
	if lock {
		sql += ` FOR UPDATE OF p`
	}
	p, err := scanPromotion(q.QueryRow(ctx, sql, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Promotion{}, fmt.Errorf("promotion %d: %w", id, errs.ErrNotFound)
	}
	if err != nil {
		return Promotion{}, fmt.Errorf("read promotion: %w", err)
	}
	return p, nil
}

// NewPromotion is the input of Request.
type NewPromotion struct {
	Stage  string `json:"stage"`
	Reason string `json:"reason"`
	// Override (admins only) promotes whatever the rules say, recording
	// the failing rules as skipped.
	Override bool `json:"override"`
}

// Validate checks the input.
func (in *NewPromotion) Validate() error {
	var fe errs.FieldErrors
	if err := ValidateStageName("stage", in.Stage); err != nil {
		fe = append(fe, err.(*errs.FieldError))
	}
	in.Reason = strings.TrimSpace(in.Reason)
	if in.Reason == "" {
		fe.Add("reason", "is required: say why this version should hold the stage")
	}
	validate.Text("reason", in.Reason, 2000, true, &fe)
	return fe.Err()
}

func requireRole(ctx context.Context, role auth.Role, what string) (auth.Identity, error) {
	id, ok := auth.IdentityFrom(ctx)
	if !ok || !id.User.Role.Allows(role) {
		return id, fmt.Errorf("%s needs the %s role: %w", what, role, errs.ErrForbidden)
	}
	return id, nil
}

// Request asks for a stage of a model to move to a version. The policy is
// evaluated at once, with the stage's row locked so that concurrent
// requests of one stage are decided one after the other, each against the
// champion the previous one left: the answer is promoted (the stage moved),
// pending_approval or rejected, with the result of every rule.
func (s *Service) Request(ctx context.Context, model string, version int, in NewPromotion) (Promotion, error) {
	if err := in.Validate(); err != nil {
		return Promotion{}, err
	}
	if in.Override {
		if _, err := requireRole(ctx, auth.RoleAdmin, "an override"); err != nil {
			return Promotion{}, err
		}
	}
	actor := audit.ActorFrom(ctx)
	var id int64
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		v, err := findVersion(ctx, tx, model, version)
		if err != nil {
			return err
		}
		if v.status != "ready" {
			return fmt.Errorf("%s/%d is a draft: finalize it before promoting it: %w", model, version, errs.ErrConflict)
		}
		st, err := getStage(ctx, tx, model, in.Stage, true)
		if err != nil {
			return err
		}
		pol, err := policyOf(ctx, tx, st, 0)
		if err != nil {
			return err
		}
		now := s.now()
		ev, err := evaluate(ctx, tx, pol.Policy, st, v, 0, now)
		if err != nil {
			return err
		}
		if in.Override {
			override(&ev)
		}
		status := ev.Decision
		var champion *int64
		if st.versionID != nil {
			champion = st.versionID
		}
		rules, err := json.Marshal(ev.Rules)
		if err != nil {
			return err
		}
		msg := message(ev, in.Override)
		var decidedAt *time.Time
		var decidedBy *string
		if status != StatusPendingApproval {
			decidedAt, decidedBy = &now, &actor.Name
		}
		err = tx.QueryRow(ctx, `
			INSERT INTO promotions (model_id, version_id, stage_id, status, reason, override, policy_revision, approvals_required,
			                        champion_version_id, rules, requested_by, requested_by_name, created_at, decided_at, decided_by_name, decision_message)
			VALUES ($1, $2, $3, $4, $5, $6, nullif($7, 0), $8, $9, $10, nullif($11, 0), $12, $13, $14, $15, $16) RETURNING id`,
			v.modelID, v.id, st.id, status, in.Reason, in.Override, pol.Revision, pol.Approvals(), champion, rules,
			actor.UserID, actor.Name, now, decidedAt, decidedBy, msg).Scan(&id)
		if err != nil {
			return fmt.Errorf("record the promotion: %w", err)
		}
		if err := recordEvaluation(ctx, tx, id, ev, pol.Revision, champion, now); err != nil {
			return err
		}
		p, err := getPromotion(ctx, tx, id, false)
		if err != nil {
			return err
		}
		if _, err := events.Emit(ctx, tx, v.modelID, events.PromotionRequested, promotionPayload(p)); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, audit.Entry{Action: "promotion.request", TargetType: "promotion", TargetID: fmt.Sprint(id),
			After: p.auditView()}); err != nil {
			return err
		}
		return s.conclude(ctx, tx, p, st, status, actor.Name, in.Override)
	})
	if err != nil {
		return Promotion{}, err
	}
	return s.GetPromotion(ctx, id)
}

// conclude applies a decision: the stage moves on promoted, and the
// events of the outcome are recorded.
func (s *Service) conclude(ctx context.Context, tx pgx.Tx, p Promotion, st Stage, decision, actor string, override bool) error {
	switch decision {
	case StatusRejected:
		_, err := events.Emit(ctx, tx, p.modelID, events.PromotionRejected, promotionPayload(p))
		return err
	case StatusPromoted:
		if st.versionID != nil && *st.versionID == p.versionID {
			return nil // it holds the stage already: nothing moves
		}
		mv, err := moveStage(ctx, tx, st, p.versionID, &p.ID, p.Reason, override, actor)
		if err != nil {
			return err
		}
		arts, err := artifactsOf(ctx, tx, p.versionID)
		if err != nil {
			return err
		}
		payload := map[string]any{"model": p.Model, "stage": p.Stage, "version": p.Version, "previous_version": mv.PreviousVersion,
			"promotion_id": p.ID, "reason": p.Reason, "override": override, "moved_by": actor, "artifacts": arts}
		if _, err := events.Emit(ctx, tx, p.modelID, events.StageMoved, payload); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "stage.move", TargetType: "stage", TargetID: p.Model + "/" + p.Stage,
			Before: map[string]any{"version": mv.PreviousVersion}, After: map[string]any{"version": p.Version, "promotion_id": p.ID, "reason": p.Reason, "override": override}})
	}
	return nil
}

type artifactRef struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

func artifactsOf(ctx context.Context, q querier, versionID int64) ([]artifactRef, error) {
	rows, err := q.Query(ctx, `SELECT path, size, sha256 FROM model_artifacts WHERE version_id = $1 ORDER BY path COLLATE "C"`, versionID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (artifactRef, error) {
		var a artifactRef
		err := r.Scan(&a.Path, &a.Size, &a.SHA256)
		return a, err
	})
}

// override marks the failing rules of an evaluation skipped, approvals
// included, and promotes.
func override(ev *Evaluation) {
	for i := range ev.Rules {
		r := &ev.Rules[i]
		if !r.Passed {
			r.Skipped, r.Pending = true, false
		}
	}
	ev.Decision = DecisionPromoted
}

func message(ev Evaluation, override bool) string {
	var failed, skipped []string
	for _, r := range ev.Rules {
		switch {
		case r.Skipped:
			skipped = append(skipped, r.Name)
		case !r.Passed && !r.Pending:
			failed = append(failed, r.Name+": "+r.Message)
		}
	}
	switch {
	case override && len(skipped) > 0:
		return "override: promoted skipping " + strings.Join(skipped, "; ")
	case override:
		return "override: promoted (every rule passed)"
	case ev.Decision == DecisionRejected:
		return "rejected: " + strings.Join(failed, "; ")
	case ev.Decision == DecisionPendingApproval:
		return "every rule passed; waiting for approval"
	}
	return "every rule passed"
}

func recordEvaluation(ctx context.Context, tx pgx.Tx, id int64, ev Evaluation, revision int, champion *int64, at time.Time) error {
	rules, err := json.Marshal(ev.Rules)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO promotion_evaluations (promotion_id, decision, policy_revision, champion_version_id, rules, evaluated_at)
		VALUES ($1, $2, nullif($3, 0), $4, $5, $6)`, id, ev.Decision, revision, champion, rules, at)
	if err != nil {
		return fmt.Errorf("record the evaluation: %w", err)
	}
	return nil
}

func (p Promotion) auditView() map[string]any {
	return map[string]any{"model": p.Model, "version": p.Version, "stage": p.Stage, "status": p.Status, "reason": p.Reason,
		"override": p.Override, "policy_revision": p.PolicyRevision, "champion": p.Champion, "message": p.Message}
}

func promotionPayload(p Promotion) map[string]any {
	return map[string]any{"promotion_id": p.ID, "model": p.Model, "version": p.Version, "stage": p.Stage, "status": p.Status,
		"reason": p.Reason, "requested_by": p.RequestedBy, "champion": p.Champion, "message": p.Message}
}

// NewReview is the input of Review.
type NewReview struct {
	Decision string `json:"decision"` // approve or reject
	Comment  string `json:"comment"`
}

// Review records a reviewer's approval or rejection of an open request.
// The requester and the version's author may not review it. A rejection
// decides the request. The approval that completes the required number
// evaluates the policy again, in the transaction that moves the stage and
// with the stage locked, against the champion of that moment: the request
// may still be rejected. A reviewer who submits twice is counted once.
func (s *Service) Review(ctx context.Context, id int64, in NewReview) (Promotion, error) {
	var fe errs.FieldErrors
	if in.Decision != "approve" && in.Decision != "reject" {
		fe.Add("decision", "must be approve or reject")
	}
	validate.Text("comment", in.Comment, 10000, true, &fe)
	if err := fe.Err(); err != nil {
		return Promotion{}, err
	}
	who, err := requireRole(ctx, auth.RoleReviewer, "reviewing a promotion")
	if err != nil {
		return Promotion{}, err
	}
	actor := audit.ActorFrom(ctx)
	err = pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		p, err := getPromotion(ctx, tx, id, false)
		if err != nil {
			return err
		}
		// the stage first, then the request: the order Request takes
		st, err := getStage(ctx, tx, p.Model, p.Stage, true)
		if err != nil {
			return err
		}
		if p, err = getPromotion(ctx, tx, id, true); err != nil {
			return err
		}
		switch {
		case p.requesterID != nil && *p.requesterID == who.User.ID:
			return fmt.Errorf("you requested promotion %d: another reviewer must decide it (four eyes): %w", id, errs.ErrForbidden)
		case p.authorID != nil && *p.authorID == who.User.ID:
			return fmt.Errorf("you registered %s/%d: another reviewer must decide its promotion (four eyes): %w", p.Model, p.Version, errs.ErrForbidden)
		}
		var prior string
		err = tx.QueryRow(ctx, `SELECT decision FROM promotion_reviews WHERE promotion_id = $1 AND reviewer_id = $2`, id, who.User.ID).Scan(&prior)
		switch {
		case err == nil && prior == in.Decision:
			return nil // a repeated submission: counted once
		case err == nil:
			return fmt.Errorf("you already chose to %s promotion %d: %w", prior, id, errs.ErrConflict)
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("read reviews: %w", err)
		}
		if p.Status != StatusPendingApproval {
			return fmt.Errorf("promotion %d is %s: only open requests are reviewed: %w", id, p.Status, errs.ErrConflict)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO promotion_reviews (promotion_id, reviewer_id, decision, comment) VALUES ($1, $2, $3, $4)`,
			id, who.User.ID, in.Decision, in.Comment); err != nil {
			return fmt.Errorf("record the review: %w", err)
		}
		if err := audit.Record(ctx, tx, audit.Entry{Action: "promotion.review", TargetType: "promotion", TargetID: fmt.Sprint(id),
			After: map[string]any{"decision": in.Decision, "comment": in.Comment}}); err != nil {
			return err
		}
		now := s.now()
		if in.Decision == "reject" {
			p.Status, p.Message = StatusRejected, "rejected by "+actor.Name
			if c := strings.TrimSpace(in.Comment); c != "" {
				p.Message += ": " + c
			}
			if err := decideRequest(ctx, tx, p, nil, now, actor.Name); err != nil {
				return err
			}
			return s.conclude(ctx, tx, p, st, StatusRejected, actor.Name, false)
		}
		approvals := p.Approvals + 1
		pol, err := policyOf(ctx, tx, st, 0)
		if err != nil {
			return err
		}
		if approvals < pol.Approvals() {
			// not yet: the approvals rule shows the count
			for i := range p.Rules {
				if p.Rules[i].Rule == KindApprovals {
					p.Rules[i].Approvals = &Approvals{Have: approvals, Need: pol.Approvals()}
					p.Rules[i].Message = fmt.Sprintf("waiting for approval: %d of %d", approvals, pol.Approvals())
				}
			}
			rules, err := json.Marshal(p.Rules)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `UPDATE promotions SET rules = $2, approvals_required = $3, policy_revision = nullif($4, 0) WHERE id = $1`,
				id, rules, pol.Approvals(), pol.Revision)
			return err
		}
		// the last approval: decide against the stage as it is now
		cand, err := versionByID(ctx, tx, p.versionID)
		if err != nil {
			return err
		}
		ev, err := evaluate(ctx, tx, pol.Policy, st, cand, approvals, now)
		if err != nil {
			return err
		}
		var champion *int64
		if st.versionID != nil {
			champion = st.versionID
		}
		if err := recordEvaluation(ctx, tx, id, ev, pol.Revision, champion, now); err != nil {
			return err
		}
		p.Status, p.Rules, p.Message = ev.Decision, ev.Rules, message(ev, false)
		if ev.Decision == DecisionPendingApproval {
			// the policy in force now asks for more approvals
			rules, err := json.Marshal(ev.Rules)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `UPDATE promotions SET rules = $2, approvals_required = $3, champion_version_id = $4, policy_revision = nullif($5, 0),
				decision_message = $6 WHERE id = $1`, id, rules, pol.Approvals(), champion, pol.Revision, p.Message)
			return err
		}
		if err := decideRequest(ctx, tx, p, &ev, now, actor.Name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE promotions SET champion_version_id = $2, policy_revision = nullif($3, 0), approvals_required = $4 WHERE id = $1`,
			id, champion, pol.Revision, pol.Approvals()); err != nil {
			return err
		}
		if p, err = getPromotion(ctx, tx, id, false); err != nil {
			return err
		}
		if ev.Decision == DecisionPromoted {
			if _, err := events.Emit(ctx, tx, p.modelID, events.PromotionApproved, promotionPayload(p)); err != nil {
				return err
			}
		}
		return s.conclude(ctx, tx, p, st, ev.Decision, actor.Name, false)
	})
	if err != nil {
		return Promotion{}, err
	}
	return s.GetPromotion(ctx, id)
}

// decideRequest closes an open request with p.Status and p.Message (and
// the rules of ev, when the policy was evaluated).
func decideRequest(ctx context.Context, tx pgx.Tx, p Promotion, ev *Evaluation, at time.Time, by string) error {
	var rules []byte
	if ev != nil {
		var err error
		if rules, err = json.Marshal(ev.Rules); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, `
		UPDATE promotions SET status = $2, decision_message = $3, decided_at = $4, decided_by_name = $5, rules = coalesce($6, rules)
		WHERE id = $1`, p.ID, p.Status, p.Message, at, by, rules)
	if err != nil {
		return fmt.Errorf("decide promotion %d: %w", p.ID, err)
	}
	return audit.Record(ctx, tx, audit.Entry{Action: "promotion.decide", TargetType: "promotion", TargetID: fmt.Sprint(p.ID),
		After: map[string]any{"status": p.Status, "message": p.Message}})
}

// Cancel withdraws an open request: its requester or an admin may.
func (s *Service) Cancel(ctx context.Context, id int64, reason string) (Promotion, error) {
	var fe errs.FieldErrors
	validate.Text("reason", reason, 2000, true, &fe)
	if err := fe.Err(); err != nil {
		return Promotion{}, err
	}
	who, _ := auth.IdentityFrom(ctx)
	actor := audit.ActorFrom(ctx)
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		p, err := getPromotion(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if (p.requesterID == nil || *p.requesterID != who.User.ID) && !who.User.Role.Allows(auth.RoleAdmin) {
			return fmt.Errorf("only the requester or an admin may cancel promotion %d: %w", id, errs.ErrForbidden)
		}
		if p.Status != StatusPendingApproval {
			return fmt.Errorf("promotion %d is %s: only open requests are cancelled: %w", id, p.Status, errs.ErrConflict)
		}
		p.Status, p.Message = StatusCancelled, "cancelled by "+actor.Name
		if reason != "" {
			p.Message += ": " + reason
		}
		if err := decideRequest(ctx, tx, p, nil, s.now(), actor.Name); err != nil {
			return err
		}
		_, err = events.Emit(ctx, tx, p.modelID, events.PromotionCancelled, promotionPayload(p))
		return err
	})
	if err != nil {
		return Promotion{}, err
	}
	return s.GetPromotion(ctx, id)
}

// GetPromotion returns a request with its reviews and evaluations.
func (s *Service) GetPromotion(ctx context.Context, id int64) (Promotion, error) {
	p, err := getPromotion(ctx, s.db, id, false)
	if err != nil {
		return Promotion{}, err
	}
	rows, err := s.db.Query(ctx, `
		SELECT u.name, r.decision, r.comment, r.created_at FROM promotion_reviews r JOIN users u ON u.id = r.reviewer_id
		WHERE r.promotion_id = $1 ORDER BY r.created_at, u.name`, id)
	if err != nil {
		return Promotion{}, fmt.Errorf("read reviews: %w", err)
	}
	if p.Reviews, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Review]); err != nil {
		return Promotion{}, fmt.Errorf("read reviews: %w", err)
	}
	rows, err = s.db.Query(ctx, `
		SELECT e.decision, coalesce(e.policy_revision, 0), cv.version, e.rules, e.evaluated_at
		FROM promotion_evaluations e LEFT JOIN model_versions cv ON cv.id = e.champion_version_id
		WHERE e.promotion_id = $1 ORDER BY e.id`, id)
	if err != nil {
		return Promotion{}, fmt.Errorf("read evaluations: %w", err)
	}
	p.Evaluations, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (EvaluationRecord, error) {
		var e EvaluationRecord
		var rules []byte
		if err := r.Scan(&e.Decision, &e.PolicyRevision, &e.Champion, &rules, &e.EvaluatedAt); err != nil {
			return e, err
		}
		return e, json.Unmarshal(rules, &e.Rules)
	})
	if err != nil {
		return Promotion{}, fmt.Errorf("read evaluations: %w", err)
	}
	return p, nil
}

// Filter narrows ListPromotions; empty fields match everything.
type Filter struct {
	Status  string
	Model   string
	Stage   string
	Version int
	// OldestFirst lists in the order the requests were made: the review
	// queue, where what has waited longest comes first.
	OldestFirst bool
}

// ListPromotions lists requests, newest first (or oldest first), a page at
// a time. The review queue is Status pending_approval, oldest first.
func (s *Service) ListPromotions(ctx context.Context, f Filter, p pagination.Page) ([]Promotion, string, error) {
	switch f.Status {
	case "", StatusPendingApproval, StatusPromoted, StatusRejected, StatusCancelled:
	default:
		return nil, "", errs.Invalid("status", "must be pending_approval, promoted, rejected or cancelled")
	}
	if f.Stage != "" {
		if err := ValidateStageName("stage", f.Stage); err != nil {
			return nil, "", err
		}
	}
	// the cursor is the id of the last request of the page before
	past, order, last := "<", "DESC", int64(1<<63-1)
	if f.OldestFirst {
		past, order, last = ">", "ASC", 0
	}
	if _, err := p.Decode(&last); err != nil {
		return nil, "", err
	}
	rows, err := s.db.Query(ctx, `SELECT `+promotionColumns+promotionFrom+`
		WHERE p.id `+past+` $1 AND ($2 = '' OR p.status = $2) AND ($3 = '' OR m.name = $3) AND ($4 = '' OR s.name = $4) AND ($5 = 0 OR v.version = $5)
		ORDER BY p.id `+order+` LIMIT $6`, last, f.Status, f.Model, f.Stage, f.Version, p.Size()+1)
	if err != nil {
		return nil, "", fmt.Errorf("list promotions: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Promotion, error) { return scanPromotion(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list promotions: %w", err)
	}
	items, next := pagination.Trim(items, p, func(x Promotion) any { return x.ID })
	return items, next, nil
}
