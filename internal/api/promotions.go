package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/evaluation"
	"github.com/slipway-ml/slipway/internal/idempotency"
	"github.com/slipway-ml/slipway/internal/promotion"
)

// ListEvaluations lists the evaluation reports of a version.
func (a *API) ListEvaluations(c echo.Context) error {
	n, err := versionNumber(c)
	if err != nil {
		return err
	}
	p, err := page(c)
	if err != nil {
		return err
	}
	items, next, err := a.Evaluations.List(c.Request().Context(), c.Param("model"), n, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(items, next))
}

var evaluationParams = map[string]bool{"suite": true, "format": true, "producer": true, "evaluation_dataset": true, "evaluation_dataset_version": true}

// AttachEvaluation stores an evaluation report: the body is the report as
// the suite wrote it (application/json), described by query parameters
// suite, format, producer, evaluation_dataset and
// evaluation_dataset_version. The body streams to the object store while
// it is parsed.
func (a *API) AttachEvaluation(c echo.Context) error {
	n, err := versionNumber(c)
	if err != nil {
		return err
	}
	req := c.Request()
	ctx := req.Context()
	if mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType)); err != nil || mt != echo.MIMEApplicationJSON {
		return fmt.Errorf("the body must be the report itself, as application/json (describe it with query parameters suite, format, producer, evaluation_dataset, evaluation_dataset_version): %w", errs.ErrUnsupportedMedia)
	}
	q := c.QueryParams()
	for k := range q {
		if !evaluationParams[k] {
			return errs.Invalid(k, "is not a parameter of a report (suite, format, producer, evaluation_dataset, evaluation_dataset_version)")
		}
	}
	in := evaluation.NewReport{Suite: q.Get("suite"), Format: q.Get("format"), Producer: q.Get("producer"), Dataset: q.Get("evaluation_dataset"),
		ContentType: echo.MIMEApplicationJSON}
	if s := q.Get("evaluation_dataset_version"); s != "" {
		if in.DatasetVersion, err = strconv.Atoi(s); err != nil || in.DatasetVersion < 1 {
			return errs.Invalid("evaluation_dataset_version", "must be a version number (1, 2, …)")
		}
	}
	if req.ContentLength > evaluation.MaxReportSize {
		return fmt.Errorf("a report is at most %d bytes: %w", evaluation.MaxReportSize, errs.ErrTooLarge)
	}
	// the fingerprint of an Idempotency-Key: the description and the bytes
	fp := sha256.New()
	fmt.Fprintf(fp, "%s\x00", canonicalQuery(q))
	if idem := idempotency.RequestFrom(ctx); idem != nil && idem.Verify {
		if _, err := io.Copy(fp, io.LimitReader(req.Body, evaluation.MaxReportSize+1)); err != nil {
			return err
		}
		idem.Fingerprint = hex.EncodeToString(fp.Sum(nil))
		return idempotency.ErrVerified
	}
	r, err := a.Evaluations.Attach(ctx, c.Param("model"), n, in, io.TeeReader(req.Body, fp))
	if err != nil {
		return err
	}
	if idem := idempotency.RequestFrom(ctx); idem != nil {
		idem.Fingerprint = hex.EncodeToString(fp.Sum(nil))
	}
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/api/v1/models/%s/versions/%d/evaluations/%d", r.Model, r.Version, r.ID))
	return c.JSON(http.StatusCreated, r)
}

func canonicalQuery(q url.Values) string { return q.Encode() } // Encode sorts by key

func idParam(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errs.Invalid("id", "must be a positive integer")
	}
	return id, nil
}

// GetEvaluation returns one report with its metrics and tests.
func (a *API) GetEvaluation(c echo.Context) error {
	n, err := versionNumber(c)
	if err != nil {
		return err
	}
	id, err := idParam(c)
	if err != nil {
		return err
	}
	r, err := a.Evaluations.Get(c.Request().Context(), c.Param("model"), n, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// DownloadEvaluation streams a report's raw bytes as they were sent.
func (a *API) DownloadEvaluation(c echo.Context) error {
	n, err := versionNumber(c)
	if err != nil {
		return err
	}
	id, err := idParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	r, err := a.Evaluations.Head(ctx, c.Param("model"), n, id)
	if err != nil {
		return err
	}
	return serveObject(c, object{size: r.Size, sha256: r.SHA256, contentType: r.ContentType, filename: fmt.Sprintf("report-%d.json", r.ID)},
		func(rng *blob.Range) (io.ReadCloser, error) {
			_, rc, _, err := a.Evaluations.OpenRaw(ctx, c.Param("model"), n, id, rng)
			return rc, err
		})
}

// ListStages lists a model's stages.
func (a *API) ListStages(c echo.Context) error {
	stages, err := a.Promotions.ListStages(c.Request().Context(), c.Param("model"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(stages, ""))
}

// GetStage is what the serving layer reads: the version a stage points to,
// since when, and its artifacts.
func (a *API) GetStage(c echo.Context) error {
	st, err := a.Promotions.GetStage(c.Request().Context(), c.Param("model"), c.Param("stage"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

// CreateStage adds a stage to a model (admin).
func (a *API) CreateStage(c echo.Context) error {
	var in promotion.NewStage
	if err := decodeJSON(c, a.MaxJSONBody, &in); err != nil {
		return err
	}
	st, err := a.Promotions.CreateStage(c.Request().Context(), c.Param("model"), in)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/api/v1/models/%s/stages/%s", st.Model, st.Name))
	return c.JSON(http.StatusCreated, st)
}

// StageHistory lists the moves of a stage, newest first.
func (a *API) StageHistory(c echo.Context) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	moves, next, err := a.Promotions.History(c.Request().Context(), c.Param("model"), c.Param("stage"), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(moves, next))
}

type holderAnswer struct {
	Model   string          `json:"model"`
	Stage   string          `json:"stage"`
	At      time.Time       `json:"at"`
	Version *int            `json:"version"` // nil: nothing held the stage then
	Since   *time.Time      `json:"since"`
	Move    *promotion.Move `json:"move"`
}

// StageHolder answers what held a stage at a time (?at=, RFC 3339;
// default now).
func (a *API) StageHolder(c echo.Context) error {
	at := time.Now().UTC()
	if s := c.QueryParam("at"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return errs.Invalid("at", "must be an RFC 3339 time such as 2026-11-20T03:00:00Z")
		}
		at = t
	}
	m, err := a.Promotions.HolderAt(c.Request().Context(), c.Param("model"), c.Param("stage"), at)
	if err != nil {
		return err
	}
	out := holderAnswer{Model: c.Param("model"), Stage: c.Param("stage"), At: at, Move: m}
	if m != nil {
		out.Version, out.Since = m.Version, &m.MovedAt
	}
	return c.JSON(http.StatusOK, out)
}

// GetPolicy returns the policy in force on a stage (?revision= for an
// older one). Its ETag is the revision, for If-Match on PUT.
func (a *API) GetPolicy(c echo.Context) error {
	rev := 0
	if s := c.QueryParam("revision"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return errs.Invalid("revision", "must be a positive revision number")
		}
		rev = n
	}
	p, err := a.Promotions.GetPolicy(c.Request().Context(), c.Param("model"), c.Param("stage"), rev)
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", fmt.Sprintf(`"%d"`, p.Revision))
	return c.JSON(http.StatusOK, p)
}

// ListPolicyRevisions lists every revision of a stage's policy.
func (a *API) ListPolicyRevisions(c echo.Context) error {
	ps, err := a.Promotions.PolicyRevisions(c.Request().Context(), c.Param("model"), c.Param("stage"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(ps, ""))
}

type putPolicyRequest struct {
	Rules      []promotion.Rule  `json:"rules"`
	Directions map[string]string `json:"directions"`
	Comment    string            `json:"comment"`
}

// PutPolicy writes a new revision of a stage's policy (admin). If-Match
// with the revision read guards against overwriting a concurrent edit.
func (a *API) PutPolicy(c echo.Context) error {
	var in putPolicyRequest
	if err := decodeJSON(c, a.MaxJSONBody, &in); err != nil {
		return err
	}
	if in.Rules == nil {
		return errs.Invalid("rules", "is required: a list of rules ([] for none)")
	}
	var ifRev *int
	// "*" (any current representation, RFC 9110) is no precondition, as
	// on PATCH of a model
	if m := c.Request().Header.Get("If-Match"); m != "" && m != "*" {
		n, err := strconv.Atoi(trimQuotes(strings.TrimPrefix(m, "W/")))
		if err != nil || n < 0 {
			return errs.Invalid("If-Match", `must be the ETag of the policy read, e.g. "3"`)
		}
		ifRev = &n
	}
	p, err := a.Promotions.PutPolicy(c.Request().Context(), c.Param("model"), c.Param("stage"), promotion.Policy{Rules: in.Rules, Directions: in.Directions}, in.Comment, ifRev)
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", fmt.Sprintf(`"%d"`, p.Revision))
	return c.JSON(http.StatusOK, p)
}

func trimQuotes(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// RequestPromotion asks for a stage to move to a version; the answer is
// the decision, with every rule's result (201 whatever the decision: a
// rejection is an outcome, not an error).
func (a *API) RequestPromotion(c echo.Context) error {
	n, err := versionNumber(c)
	if err != nil {
		return err
	}
	var in promotion.NewPromotion
	if err := decodeJSON(c, a.MaxJSONBody, &in); err != nil {
		return err
	}
	p, err := a.Promotions.Request(c.Request().Context(), c.Param("model"), n, in)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/api/v1/promotions/%d", p.ID))
	return c.JSON(http.StatusCreated, p)
}

var promotionFilters = map[string]bool{"status": true, "model": true, "stage": true, "version": true, "cursor": true, "limit": true}

// ListPromotions lists requests, newest first; ?status=pending_approval is
// the review queue.
func (a *API) ListPromotions(c echo.Context) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	for k := range q {
		if !promotionFilters[k] {
			return errs.Invalid(k, "is not a filter of promotions (status, model, stage, version)")
		}
	}
	f := promotion.Filter{Status: q.Get("status"), Model: q.Get("model"), Stage: q.Get("stage")}
	if s := q.Get("version"); s != "" {
		if f.Version, err = strconv.Atoi(s); err != nil || f.Version < 1 {
			return errs.Invalid("version", "must be a version number")
		}
	}
	items, next, err := a.Promotions.ListPromotions(c.Request().Context(), f, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(items, next))
}

// GetPromotion returns one request with its reviews and evaluations.
func (a *API) GetPromotion(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	p, err := a.Promotions.GetPromotion(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// ReviewPromotion approves or rejects an open request (reviewers; not the
// requester, not the version's author).
func (a *API) ReviewPromotion(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	var in promotion.NewReview
	if err := decodeJSON(c, a.MaxJSONBody, &in); err != nil {
		return err
	}
	p, err := a.Promotions.Review(c.Request().Context(), id, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

type cancelRequest struct {
	Reason string `json:"reason"`
}

// CancelPromotion withdraws an open request (its requester, or an admin).
func (a *API) CancelPromotion(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	var in cancelRequest
	if err := decodeJSON(c, a.MaxJSONBody, &in); err != nil {
		return err
	}
	p, err := a.Promotions.Cancel(c.Request().Context(), id, in.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}
