package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// User is an API user (GET /api/v1/me).
type User struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Role        string `json:"role"`
	HasPassword bool   `json:"has_password"`
	Disabled    bool   `json:"disabled"`
}

// Me returns the token's user: the cheapest check of a token.
func (c *Client) Me(ctx context.Context) (*User, error) {
	var u User
	return &u, c.call(ctx, request{method: http.MethodGet, path: "/api/v1/me"}, &u)
}

// NewUser is a user to create (admin). An empty Password makes a
// token-only user, as CI identities are.
type NewUser struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Password string `json:"password,omitempty"`
}

// CreateUser creates a user (admin).
func (c *Client) CreateUser(ctx context.Context, in NewUser) (*User, error) {
	r, err := jsonRequest(http.MethodPost, "/api/v1/users", in)
	if err != nil {
		return nil, err
	}
	var u User
	return &u, c.call(ctx, r, &u)
}

// CreateToken issues an API token to user (admin) and returns its secret,
// which Slipway shows this once.
func (c *Client) CreateToken(ctx context.Context, user, name string) (string, error) {
	r, err := jsonRequest(http.MethodPost, "/api/v1/users/"+seg(user)+"/tokens", map[string]string{"name": name})
	if err != nil {
		return "", err
	}
	var t struct {
		Token string `json:"token"`
	}
	return t.Token, c.call(ctx, r, &t)
}

// Model is a registered model.
type Model struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Owner       string            `json:"owner"`
	Tags        map[string]string `json:"tags"`
	CreatedBy   string            `json:"created_by"`
	Archived    bool              `json:"archived"`
	Revision    int64             `json:"revision"`
}

// NewModel is a model to register; only Name is required.
type NewModel struct {
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Owner       string            `json:"owner,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// GetModel returns one model.
func (c *Client) GetModel(ctx context.Context, name string) (*Model, error) {
	var m Model
	return &m, c.call(ctx, request{method: http.MethodGet, path: "/api/v1/models/" + seg(name)}, &m)
}

// CreateModel registers a model (contributor). A taken name is a 409.
func (c *Client) CreateModel(ctx context.Context, in NewModel) (*Model, error) {
	r, err := jsonRequest(http.MethodPost, "/api/v1/models", in)
	if err != nil {
		return nil, err
	}
	var m Model
	return &m, c.call(ctx, r, &m)
}

// Artifact is one file of a model version.
type Artifact struct {
	Path        string `json:"path"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	ContentType string `json:"content_type"`
	Uploaded    bool   `json:"uploaded"`
}

// Version is a model version.
type Version struct {
	raw
	Model         string            `json:"model"`
	Version       int               `json:"version"`
	Status        string            `json:"status"`
	Kind          string            `json:"kind"`
	Framework     string            `json:"framework"`
	Flavor        string            `json:"flavor"`
	Description   string            `json:"description"`
	Params        map[string]any    `json:"params"`
	Tags          map[string]string `json:"tags"`
	Source        map[string]any    `json:"source"`
	CreatedBy     string            `json:"created_by"`
	CreatedAt     time.Time         `json:"created_at"`
	ArtifactCount int               `json:"artifact_count"`
	TotalSize     int64             `json:"total_size"`
	Artifacts     []Artifact        `json:"artifacts"`
}

// Upload is one artifact of a version to register: its path in the version
// (folders included, e.g. model/model.pkl) and its bytes.
type Upload struct {
	Path string
	// ContentType is recorded and served back on download;
	// "" is application/octet-stream.
	ContentType string
	Body        Body
}

// File is a Body that reads the local file at name.
func File(name string) (Body, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return Body{}, err
	}
	if !fi.Mode().IsRegular() {
		return Body{}, fmt.Errorf("%s is not a regular file", name)
	}
	return Body{Open: func() (io.ReadCloser, error) { return os.Open(name) }, Size: fi.Size()}, nil
}

// RegisterVersion registers a version of model in one multipart request:
// metadata (a JSON object of the API's version metadata fields, nil for
// none) then every file, streamed from its source as it is sent. With an
// idempotencyKey, a retry after a network failure sends everything again
// and gets the first answer, not a second version.
func (c *Client) RegisterVersion(ctx context.Context, model string, metadata any, files []Upload, idempotencyKey string) (*Version, error) {
	if metadata == nil {
		metadata = map[string]any{}
	}
	meta, err := json.Marshal(metadata)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("a version needs at least one file")
	}
	// One boundary for every attempt, so that each sends the same request.
	b := make([]byte, 24)
	rand.Read(b)
	boundary := "slipway-" + hex.EncodeToString(b)
	body := Body{Size: -1, Open: func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeMultipart(pw, boundary, meta, files)) }()
		return pr, nil
	}}
	r := request{method: http.MethodPost, path: "/api/v1/models/" + seg(model) + "/versions",
		ct: "multipart/form-data; boundary=" + boundary, body: &body, idempotencyKey: idempotencyKey}
	var v Version
	return &v, c.call(ctx, r, &v)
}

// writeMultipart writes the metadata part, then one part per file. When
// the request ends early, the pipe's reader is closed and the next write
// fails, which ends it.
func writeMultipart(w io.Writer, boundary string, meta []byte, files []Upload) error {
	mw := multipart.NewWriter(w)
	if err := mw.SetBoundary(boundary); err != nil {
		return err
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="metadata"`)
	h.Set("Content-Type", "application/json")
	p, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := p.Write(meta); err != nil {
		return err
	}
	for _, f := range files {
		h := textproto.MIMEHeader{}
		// FormatMediaType quotes the path and encodes what is not ASCII
		// (RFC 2231); the server reads the filename parameter as sent.
		h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": "file", "filename": f.Path}))
		ct := f.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		h.Set("Content-Type", ct)
		p, err := mw.CreatePart(h)
		if err != nil {
			return err
		}
		if err := copyFile(p, f); err != nil {
			return err
		}
	}
	return mw.Close()
}

func copyFile(w io.Writer, f Upload) error {
	rc, err := f.Body.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	n, err := io.Copy(w, rc)
	if err != nil {
		return err
	}
	if f.Body.Size >= 0 && n != f.Body.Size {
		return fmt.Errorf("%s: read %d bytes, expected %d: did the file change while it was sent?", f.Path, n, f.Body.Size)
	}
	return nil
}

func versionPath(model string, version int) string {
	return "/api/v1/models/" + seg(model) + "/versions/" + strconv.Itoa(version)
}

// GetVersion returns one version with its artifacts.
func (c *Client) GetVersion(ctx context.Context, model string, version int) (*Version, error) {
	var v Version
	return &v, c.call(ctx, request{method: http.MethodGet, path: versionPath(model, version)}, &v)
}

// OpenArtifact downloads one artifact; the caller closes the stream.
func (c *Client) OpenArtifact(ctx context.Context, model string, version int, path string) (io.ReadCloser, error) {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = seg(s)
	}
	res, err := c.send(ctx, request{method: http.MethodGet, path: versionPath(model, version) + "/artifacts/" + strings.Join(segs, "/")})
	if err != nil {
		return nil, err
	}
	return res.Body, nil
}

// Report is an evaluation report.
type Report struct {
	raw
	ID                int64             `json:"id"`
	Model             string            `json:"model"`
	Version           int               `json:"version"`
	Suite             string            `json:"suite"`
	Format            string            `json:"format"`
	Producer          string            `json:"producer"`
	EvaluationDataset *DatasetVersion   `json:"evaluation_dataset"`
	SHA256            string            `json:"sha256"`
	Size              int64             `json:"size"`
	Meta              map[string]string `json:"meta"`
	MetricCount       int               `json:"metric_count"`
	TestCount         int               `json:"test_count"`
	TestsFailed       int               `json:"tests_failed"`
	CreatedBy         string            `json:"created_by"`
	Metrics           []Metric          `json:"metrics"`
}

// DatasetVersion names one version of a dataset.
type DatasetVersion struct {
	Dataset string `json:"dataset"`
	Version int    `json:"version"`
}

// Metric is one value of a report; Value is a number, or the string NaN,
// Infinity or -Infinity.
type Metric struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

// ReportOptions describe a report to attach.
type ReportOptions struct {
	// Suite is required: policies name it.
	Suite string
	// Format is slipway, reclist-v0 or reclist-v2; "": detected.
	Format   string
	Producer string
	// EvaluationDataset is the dataset version evaluated on, if any.
	EvaluationDataset *DatasetVersion
	IdempotencyKey    string
}

// AttachReport attaches an evaluation report to a version, its bytes
// streamed from body as the suite wrote them.
func (c *Client) AttachReport(ctx context.Context, model string, version int, opts ReportOptions, body Body) (*Report, error) {
	q := url.Values{"suite": {opts.Suite}}
	if opts.Format != "" {
		q.Set("format", opts.Format)
	}
	if opts.Producer != "" {
		q.Set("producer", opts.Producer)
	}
	if d := opts.EvaluationDataset; d != nil {
		q.Set("evaluation_dataset", d.Dataset)
		q.Set("evaluation_dataset_version", strconv.Itoa(d.Version))
	}
	r := request{method: http.MethodPost, path: versionPath(model, version) + "/evaluations", query: q,
		ct: "application/json", body: &body, idempotencyKey: opts.IdempotencyKey}
	var rep Report
	return &rep, c.call(ctx, r, &rep)
}

// ListReports returns the newest reports of a version (up to 200),
// without their metrics.
func (c *Client) ListReports(ctx context.Context, model string, version int) ([]Report, error) {
	var page struct {
		Items []Report `json:"items"`
	}
	return page.Items, c.call(ctx, request{method: http.MethodGet, path: versionPath(model, version) + "/evaluations",
		query: url.Values{"limit": {"200"}}}, &page)
}

// Policy is a promotion policy to write: its rules as the API takes them
// (see docs/policies.md) and a comment.
type Policy struct {
	Rules   []map[string]any `json:"rules"`
	Comment string           `json:"comment,omitempty"`
}

// SetPolicy writes a new revision of a stage's policy (admin) and returns
// its revision number.
func (c *Client) SetPolicy(ctx context.Context, model, stage string, p Policy) (int, error) {
	if p.Rules == nil {
		p.Rules = []map[string]any{}
	}
	r, err := jsonRequest(http.MethodPut, "/api/v1/models/"+seg(model)+"/stages/"+seg(stage)+"/policy", p)
	if err != nil {
		return 0, err
	}
	var out struct {
		Revision int `json:"revision"`
	}
	return out.Revision, c.call(ctx, r, &out)
}

// Stage is a stage of a model and the version that holds it (0: none).
type Stage struct {
	Model   string `json:"model"`
	Name    string `json:"name"`
	Version int    `json:"version"`
}

// CreateStage adds a stage to a model (admin).
func (c *Client) CreateStage(ctx context.Context, model, name, description string) (*Stage, error) {
	r, err := jsonRequest(http.MethodPost, "/api/v1/models/"+seg(model)+"/stages", map[string]string{"name": name, "description": description})
	if err != nil {
		return nil, err
	}
	var s Stage
	return &s, c.call(ctx, r, &s)
}

// GetStage returns a stage and its holder.
func (c *Client) GetStage(ctx context.Context, model, stage string) (*Stage, error) {
	var s struct {
		Model   string `json:"model"`
		Name    string `json:"name"`
		Version *int   `json:"version"`
	}
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/models/" + seg(model) + "/stages/" + seg(stage)}, &s); err != nil {
		return nil, err
	}
	out := &Stage{Model: s.Model, Name: s.Name}
	if s.Version != nil {
		out.Version = *s.Version
	}
	return out, nil
}

// Promotion statuses.
const (
	Promoted        = "promoted"
	PendingApproval = "pending_approval"
	Rejected        = "rejected"
	Cancelled       = "cancelled"
)

// Promotion is a promotion request and its decision.
type Promotion struct {
	raw
	ID                int64        `json:"id"`
	Model             string       `json:"model"`
	Version           int          `json:"version"`
	Stage             string       `json:"stage"`
	Status            string       `json:"status"`
	Decision          string       `json:"decision"`
	Reason            string       `json:"reason"`
	Override          bool         `json:"override"`
	PolicyRevision    int          `json:"policy_revision"`
	Champion          *int         `json:"champion"`
	ApprovalsRequired int          `json:"approvals_required"`
	Approvals         int          `json:"approvals"`
	Rules             []RuleResult `json:"rules"`
	Message           string       `json:"message"`
	RequestedBy       string       `json:"requested_by"`
	Author            string       `json:"author"`
	CreatedAt         time.Time    `json:"created_at"`
	DecidedAt         *time.Time   `json:"decided_at"`
	DecidedBy         string       `json:"decided_by"`
}

// RuleResult is the result of one rule of a policy.
type RuleResult struct {
	Rule     string `json:"rule"`
	Name     string `json:"name"`
	Suite    string `json:"suite,omitempty"`
	Metric   string `json:"metric,omitempty"`
	Observed any    `json:"observed,omitempty"`
	Passed   bool   `json:"passed"`
	Pending  bool   `json:"pending,omitempty"`
	Skipped  bool   `json:"skipped,omitempty"`
	Message  string `json:"message"`
}

// Open tells whether the request still waits for reviewers.
func (p *Promotion) Open() bool { return p.Status == PendingApproval }

// NewPromotion is a promotion to request.
type NewPromotion struct {
	Stage  string `json:"stage"`
	Reason string `json:"reason"`
	// Override (admins only) promotes whatever the rules say.
	Override bool `json:"override,omitempty"`
}

// RequestPromotion asks for a stage of model to move to version. Slipway
// decides at once: a rejection is a decision, returned without error.
// With an idempotencyKey, a retry gets the first answer, not a second
// request.
func (c *Client) RequestPromotion(ctx context.Context, model string, version int, in NewPromotion, idempotencyKey string) (*Promotion, error) {
	r, err := jsonRequest(http.MethodPost, versionPath(model, version)+"/promotions", in)
	if err != nil {
		return nil, err
	}
	r.idempotencyKey = idempotencyKey
	var p Promotion
	return &p, c.call(ctx, r, &p)
}

// GetPromotion returns one promotion request.
func (c *Client) GetPromotion(ctx context.Context, id int64) (*Promotion, error) {
	var p Promotion
	return &p, c.call(ctx, request{method: http.MethodGet, path: "/api/v1/promotions/" + strconv.FormatInt(id, 10)}, &p)
}

// PromotionFilter selects promotion requests; empty fields match all.
type PromotionFilter struct {
	Status, Model, Stage string
	Version              int
}

// ListPromotions returns the newest requests that match f (up to 200).
func (c *Client) ListPromotions(ctx context.Context, f PromotionFilter) ([]Promotion, error) {
	q := url.Values{"limit": {"200"}}
	for k, v := range map[string]string{"status": f.Status, "model": f.Model, "stage": f.Stage} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Version > 0 {
		q.Set("version", strconv.Itoa(f.Version))
	}
	var page struct {
		Items []Promotion `json:"items"`
	}
	return page.Items, c.call(ctx, request{method: http.MethodGet, path: "/api/v1/promotions", query: q}, &page)
}

// Review approves ("approve") or rejects ("reject") an open request
// (reviewer) and returns it as it is after the review.
func (c *Client) Review(ctx context.Context, id int64, decision, comment string) (*Promotion, error) {
	r, err := jsonRequest(http.MethodPost, "/api/v1/promotions/"+strconv.FormatInt(id, 10)+"/reviews",
		map[string]string{"decision": decision, "comment": comment})
	if err != nil {
		return nil, err
	}
	var p Promotion
	return &p, c.call(ctx, r, &p)
}
