package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/internal/promotion"
	"github.com/slipway-ml/slipway/internal/validate"
)

func directionText(d string) string {
	switch d {
	case "higher_is_better":
		return "higher is better"
	case "lower_is_better":
		return "lower is better"
	}
	return ""
}

// Reviews is the review queue, a page at a time (oldest first: what waits
// longest comes first), then recent decisions.
func (ui *UI) Reviews(c echo.Context) error {
	ctx := c.Request().Context()
	p, err := pagination.Parse(c.QueryParam("cursor"), c.QueryParam("limit"))
	if err != nil {
		return err
	}
	d := ReviewsData{Cursor: p.Cursor, Now: time.Now()}
	d.Open, d.NextCursor, err = ui.Promotions.ListPromotions(ctx, promotion.Filter{Status: promotion.StatusPendingApproval, OldestFirst: true}, p)
	if err != nil {
		return err
	}
	recent, _, err := ui.Promotions.ListPromotions(ctx, promotion.Filter{}, pagination.Page{Limit: 30})
	if err != nil {
		return err
	}
	decided := recent[:0]
	for _, r := range recent {
		if r.Status != promotion.StatusPendingApproval {
			decided = append(decided, r)
		}
	}
	d.Recent = decided
	return Render(c, http.StatusOK, ReviewsPage(ui.Page(c, "Reviews", "reviews"), d))
}

func promotionID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("no such promotion request: %w", errs.ErrNotFound)
	}
	return id, nil
}

func (ui *UI) promotionData(c echo.Context, id int64) (PromotionData, error) {
	ctx := c.Request().Context()
	cmp, err := ui.Promotions.Compare(ctx, id)
	if err != nil {
		return PromotionData{}, err
	}
	me := identity(ctx).User
	d := PromotionData{C: cmp, Now: time.Now()}
	pr := cmp.Promotion
	switch {
	case !me.Role.Allows(auth.RoleReviewer):
		d.WhyNot = "Reviewers approve or reject requests; your role is " + string(me.Role) + "."
	case pr.RequestedBy == me.Name:
		d.WhyNot = "You requested this promotion: another reviewer must decide it (four eyes)."
	case pr.Author == me.Name:
		d.WhyNot = "You registered this version: another reviewer must decide its promotion (four eyes)."
	default:
		d.CanReview = true
	}
	d.CanCancel = pr.RequestedBy == me.Name || me.Role.Allows(auth.RoleAdmin)
	return d, nil
}

// Promotion is a request's page: the champion-versus-challenger comparison
// and the review form.
func (ui *UI) Promotion(c echo.Context) error {
	id, err := promotionID(c)
	if err != nil {
		return err
	}
	d, err := ui.promotionData(c, id)
	if err != nil {
		return err
	}
	pr := d.C.Promotion
	return Render(c, http.StatusOK, PromotionPage(ui.Page(c, fmt.Sprintf("%s v%d → %s", pr.Model, pr.Version, pr.Stage), "reviews"), d))
}

// Review records the reviewer's approval or rejection, then shows the
// request as it is now (the stage may have moved, or the re-evaluation
// rejected it).
func (ui *UI) Review(c echo.Context) error {
	id, err := promotionID(c)
	if err != nil {
		return err
	}
	p, reviewErr := ui.Promotions.Review(c.Request().Context(), id, promotion.NewReview{Decision: c.FormValue("decision"), Comment: c.FormValue("comment")})
	status := http.StatusOK
	if reviewErr != nil && !formError(reviewErr) && !errors.Is(reviewErr, errs.ErrForbidden) {
		return reviewErr
	}
	d, err := ui.promotionData(c, id)
	if err != nil {
		return err
	}
	switch {
	case reviewErr != nil:
		status, d.Error = http.StatusOK, reviewErr.Error() // shown in place: htmx swaps 200s
	case p.Status == promotion.StatusPromoted:
		d.Notice = fmt.Sprintf("Approved: %s now holds v%d.", p.Stage, p.Version)
	case p.Status == promotion.StatusRejected:
		d.Notice = "Decided: rejected. " + p.Message
	default:
		d.Notice = fmt.Sprintf("Recorded: %d of %d approvals.", p.Approvals, p.ApprovalsRequired)
	}
	pr := d.C.Promotion
	return Render(c, status, PromotionPage(ui.Page(c, fmt.Sprintf("%s v%d → %s", pr.Model, pr.Version, pr.Stage), "reviews"), d))
}

// CancelPromotion withdraws an open request.
func (ui *UI) CancelPromotion(c echo.Context) error {
	id, err := promotionID(c)
	if err != nil {
		return err
	}
	if _, err := ui.Promotions.Cancel(c.Request().Context(), id, c.FormValue("reason")); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/promotions/%d", id))
}

// PolicyData is a stage's policy page.
type PolicyData struct {
	Model, Stage string
	Current      promotion.StoredPolicy
	Revisions    []promotion.StoredPolicy
	Shown        promotion.StoredPolicy // the revision shown (?revision=)
	Draft        string                 // the editor's text
	Comment      string
	CanEdit      bool
	Errors       []string
	Notice       string
	Now          time.Time
}

func rulesJSON(rules []promotion.Rule) string {
	if rules == nil {
		rules = []promotion.Rule{}
	}
	b, _ := json.MarshalIndent(rules, "", "  ")
	return string(b)
}

func (ui *UI) policyData(c echo.Context, model, stage string) (PolicyData, error) {
	ctx := c.Request().Context()
	cur, err := ui.Promotions.GetPolicy(ctx, model, stage, 0)
	if err != nil {
		return PolicyData{}, err
	}
	revs, err := ui.Promotions.PolicyRevisions(ctx, model, stage)
	if err != nil {
		return PolicyData{}, err
	}
	d := PolicyData{Model: model, Stage: stage, Current: cur, Shown: cur, Revisions: revs, Draft: rulesJSON(cur.Rules),
		CanEdit: identity(ctx).User.Role.Allows(auth.RoleAdmin), Now: time.Now()}
	if s := c.QueryParam("revision"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return PolicyData{}, errs.Invalid("revision", "must be a revision number")
		}
		if d.Shown, err = ui.Promotions.GetPolicy(ctx, model, stage, n); err != nil {
			return PolicyData{}, err
		}
	}
	return d, nil
}

// Policy shows a stage's policy, its revisions, and the editor (admins).
func (ui *UI) Policy(c echo.Context) error {
	d, err := ui.policyData(c, c.Param("model"), c.Param("stage"))
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, PolicyPage(ui.Page(c, fmt.Sprintf("Policy of %s/%s", d.Model, d.Stage), "models"), d))
}

// SavePolicy writes a new revision from the editor: the rules as JSON. A
// bad policy comes back with its problems and the text as typed.
func (ui *UI) SavePolicy(c echo.Context) error {
	model, stage := c.Param("model"), c.Param("stage")
	d, err := ui.policyData(c, model, stage)
	if err != nil {
		return err
	}
	d.Draft, d.Comment = c.FormValue("rules"), c.FormValue("comment")
	var rules []promotion.Rule
	dec := json.NewDecoder(strings.NewReader(d.Draft))
	dec.DisallowUnknownFields()
	var saveErr error
	if err := dec.Decode(&rules); err != nil {
		saveErr = errs.Invalid("rules", "must be a JSON list of rules: %v", err)
	} else {
		var base *int
		if s := c.FormValue("revision"); s != "" {
			if n, err := strconv.Atoi(s); err == nil {
				base = &n
			}
		}
		_, saveErr = ui.Promotions.PutPolicy(c.Request().Context(), model, stage, promotion.Policy{Rules: rules}, d.Comment, base)
	}
	status := http.StatusOK
	if saveErr != nil {
		if !formError(saveErr) && !errors.Is(saveErr, errs.ErrPreconditionFailed) {
			return saveErr
		}
		status = http.StatusBadRequest
		if errors.Is(saveErr, errs.ErrPreconditionFailed) {
			status = http.StatusPreconditionFailed
		}
		for _, fe := range validate.Flatten(saveErr) {
			d.Errors = append(d.Errors, fe.Error())
		}
		if len(d.Errors) == 0 {
			d.Errors = []string{saveErr.Error()}
		}
	} else {
		fresh, err := ui.policyData(c, model, stage)
		if err != nil {
			return err
		}
		d = fresh
		d.Notice = fmt.Sprintf("Saved as revision %d.", d.Current.Revision)
	}
	return Render(c, status, PolicyPage(ui.Page(c, fmt.Sprintf("Policy of %s/%s", model, stage), "models"), d))
}

// stagesData is the stages panel of a model page: holders, history and a
// metric's trend.
type stagesData struct {
	Model  string
	Stages []promotion.Stage
	// Moves is a page of the history: the cursor of this page (?moves=)
	// and of the next
	Moves                  []promotion.Move
	MovesCursor, NextMoves string
	Trend                  *trendChart
	// At answers "what held the stage at that time" (?stage=&at=).
	At *holderAt
	// Error is why a stage could not be added, Fields the same by field.
	Error  string
	Fields fieldErrors
	Now    time.Time
}

// historyURL is the model's page showing the page at cursor of the
// stage history.
func (d stagesData) historyURL(cursor string) string {
	u := "/models/" + d.Model
	if cursor != "" {
		u += "?" + url.Values{"moves": {cursor}}.Encode()
	}
	return u + "#history"
}

// atAttrs points the time field of "what held" at its problem.
func (d stagesData) atAttrs() templ.Attributes {
	if d.At == nil || d.At.Error == "" {
		return nil
	}
	return templ.Attributes{"aria-invalid": "true", "aria-describedby": "holder-at-error"}
}

type holderAt struct {
	Stage string
	At    time.Time
	Move  *promotion.Move
	Error string
}

// atLayout is what a datetime-local input sends; read as UTC.
const atLayout = "2006-01-02T15:04"

func (ui *UI) stagesData(c echo.Context, model string) (stagesData, error) {
	ctx := c.Request().Context()
	st, err := ui.Promotions.ListStages(ctx, model)
	if err != nil {
		return stagesData{}, err
	}
	d := stagesData{Model: model, Stages: st, MovesCursor: c.QueryParam("moves"), Now: time.Now()}
	d.Moves, d.NextMoves, err = ui.Promotions.History(ctx, model, "", pagination.Page{Cursor: d.MovesCursor, Limit: 20})
	if err != nil {
		return stagesData{}, err
	}
	if stage, at := c.QueryParam("stage"), c.QueryParam("at"); stage != "" && at != "" {
		h := &holderAt{Stage: stage}
		t, err := time.Parse(atLayout, at)
		if err != nil {
			t, err = time.Parse(time.RFC3339, at)
		}
		switch {
		case err != nil:
			h.Error = "at: a time such as 2026-11-20T03:00 (UTC)"
		default:
			h.At = t.UTC()
			h.Move, err = ui.Promotions.HolderAt(ctx, model, stage, h.At)
			if errors.Is(err, errs.ErrNotFound) {
				h.Error = err.Error()
			} else if err != nil {
				return stagesData{}, err
			}
		}
		d.At = h
	}
	// the trend of the metric production's policy compares, else of ?metric=
	metric, suite := c.QueryParam("metric"), c.QueryParam("suite")
	var production *int
	for _, s := range st {
		if s.Name == "production" {
			production = s.Version
		}
	}
	if metric == "" {
		if pol, err := ui.Promotions.GetPolicy(ctx, model, "production", 0); err == nil {
			for _, r := range pol.Rules {
				if r.Kind == promotion.KindChampion || r.Kind == promotion.KindThreshold {
					metric, suite = r.Metric, r.Suite
					break
				}
			}
		}
	}
	if metric != "" {
		pts, err := ui.Promotions.MetricTrend(ctx, model, suite, metric, 30)
		if err != nil {
			return stagesData{}, err
		}
		if len(pts) > 0 {
			t := newTrendChart(metric, suite, pts, production)
			d.Trend = &t
		}
	}
	return d, nil
}

// DownloadEvaluation streams a report's raw bytes to a signed-in user.
func (ui *UI) DownloadEvaluation(c echo.Context) error {
	n, err := pathVersion(c)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return fmt.Errorf("no such report: %w", errs.ErrNotFound)
	}
	r, rc, _, err := ui.Evaluations.OpenRaw(c.Request().Context(), c.Param("model"), n, id, nil)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := c.Response().Header()
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="report-%d.json"`, r.ID))
	h.Set("Content-Length", strconv.FormatInt(r.Size, 10))
	h.Set("ETag", `"`+r.SHA256+`"`)
	return c.Stream(http.StatusOK, r.ContentType, rc)
}

// CreateStage adds a stage to a model (admins), then shows the model.
func (ui *UI) CreateStage(c echo.Context) error {
	model := c.Param("model")
	_, err := ui.Promotions.CreateStage(c.Request().Context(), model, promotion.NewStage{
		Name: strings.TrimSpace(c.FormValue("name")), Description: c.FormValue("description")})
	if err == nil {
		return c.Redirect(http.StatusSeeOther, "/models/"+model)
	}
	if !formError(err) {
		return err
	}
	d, derr := ui.modelData(c, model)
	if derr != nil {
		return derr
	}
	d.Stages.Error, d.Stages.Fields = err.Error(), fieldErrorsOf("stage", err)
	return Render(c, http.StatusBadRequest, ModelPage(ui.Page(c, d.Model.Name, "models"), d))
}
