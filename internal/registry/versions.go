package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/events"
	"github.com/slipway-ml/slipway/internal/lineage"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/internal/validate"
)

// Kinds of model version.
const (
	KindModel            = "model"             // a model binary to serve
	KindBatchPredictions = "batch_predictions" // predictions to load into a cache
)

// Version statuses.
const (
	StatusDraft = "draft" // artifacts still arriving
	StatusReady = "ready" // every artifact confirmed in the store; immutable
)

// Source says what produced a version.
type Source struct {
	GitRepo      string `json:"git_repo,omitempty"`
	GitCommit    string `json:"git_commit,omitempty"`
	GitDirty     *bool  `json:"git_dirty,omitempty"`
	Orchestrator string `json:"orchestrator,omitempty"` // e.g. metaflow, airflow, github-actions
	RunID        string `json:"run_id,omitempty"`       // e.g. a Metaflow pathspec Flow/123/train/456
	Image        string `json:"image,omitempty"`        // container image, ideally by digest
}

// Link points to a tracker (a W&B, MLflow or Comet run): stored, not copied.
type Link = lineage.Link

// Artifact is one file of a version.
type Artifact struct {
	Path        string `json:"path"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	ContentType string `json:"content_type"`
	// Uploaded is false while a draft waits for the file.
	Uploaded  bool `json:"uploaded"`
	verified  bool
	objectKey string
}

// Version is a numbered version of a model.
type Version struct {
	id          int64
	Model       string          `json:"model"`
	Version     int             `json:"version"`
	Status      string          `json:"status"`
	Kind        string          `json:"kind"`
	Framework   string          `json:"framework"`
	Flavor      string          `json:"flavor"`
	Description string          `json:"description"`
	Params      json.RawMessage `json:"params"`
	Tags        Tags            `json:"tags"`
	Source      Source          `json:"source"`
	Links       []Link          `json:"links"`
	CreatedBy   string          `json:"created_by"`
	CreatedAt   time.Time       `json:"created_at"`
	ReadyAt     *time.Time      `json:"ready_at"`
	// ExpiresAt is when a draft not finalized is deleted.
	ExpiresAt *time.Time `json:"expires_at"`
	// ArtifactCount and TotalSize summarise the artifacts.
	ArtifactCount int   `json:"artifact_count"`
	TotalSize     int64 `json:"total_size"`
	// Artifacts is set when one version is read, not in lists.
	Artifacts []Artifact `json:"artifacts,omitempty"`
}

func (v Version) auditView() map[string]any {
	return map[string]any{"model": v.Model, "version": v.Version, "status": v.Status, "kind": v.Kind,
		"artifact_count": v.ArtifactCount, "total_size": v.TotalSize, "source": v.Source}
}

// NewVersion is the metadata of a version being registered.
type NewVersion struct {
	Kind        string          `json:"kind"`
	Framework   string          `json:"framework"`
	Flavor      string          `json:"flavor"`
	Description string          `json:"description"`
	Params      json.RawMessage `json:"params"`
	Tags        Tags            `json:"tags"`
	Source      Source          `json:"source"`
	Links       []Link          `json:"links"`
	// Lineage shortcut for pipelines that do not report runs: the run
	// that produced the version and the datasets it was trained on.
	lineage.ModelLineage
}

// linkLineage records the version's lineage in its registration's
// transaction.
func (in NewVersion) linkLineage(ctx context.Context, tx pgx.Tx, versionID int64) error {
	s := in.Source
	return lineage.LinkModelVersion(ctx, tx, versionID,
		lineage.VersionSource{GitRepo: s.GitRepo, GitCommit: s.GitCommit, GitDirty: s.GitDirty, Image: s.Image}, in.ModelLineage)
}

const (
	maxParamsBytes = 64 << 10
	maxLinks       = 20
	maxArtifacts   = 1000
)

// Validate checks the metadata and fills defaults.
func (in *NewVersion) Validate() error {
	var fe errs.FieldErrors
	switch in.Kind {
	case "":
		in.Kind = KindModel
	case KindModel, KindBatchPredictions:
	default:
		fe.Add("kind", "must be %s or %s", KindModel, KindBatchPredictions)
	}
	validate.Text("framework", in.Framework, 64, false, &fe)
	validate.Text("flavor", in.Flavor, 64, false, &fe)
	validate.Text("description", in.Description, 10000, true, &fe)
	if len(in.Params) == 0 || string(in.Params) == "null" {
		in.Params = json.RawMessage("{}")
	} else if len(in.Params) > maxParamsBytes {
		fe.Add("params", "must be at most %d bytes of JSON", maxParamsBytes)
	} else if p := strings.TrimSpace(string(in.Params)); !strings.HasPrefix(p, "{") {
		fe.Add("params", "must be a JSON object")
	}
	if in.Tags == nil {
		in.Tags = Tags{}
	}
	validate.Tags("tags", in.Tags, &fe)
	s := &in.Source
	validate.Text("source.git_repo", s.GitRepo, 512, false, &fe)
	validate.Commit("source.git_commit", s.GitCommit, &fe)
	validate.Text("source.orchestrator", s.Orchestrator, 64, false, &fe)
	validate.Text("source.run_id", s.RunID, 512, false, &fe)
	validate.Text("source.image", s.Image, 512, false, &fe)
	if in.Links == nil {
		in.Links = []Link{}
	}
	lineage.ValidateLinks("links", in.Links, maxLinks, &fe)
	if err := in.ModelLineage.Validate(); err != nil {
		fe = append(fe, validate.Flatten(err)...)
	}
	return fe.Err()
}

// ValidateArtifactPath checks an artifact path: relative, '/'-separated, no
// empty, '.' or '..' segment, no backslash, NUL or control character, no
// percent-encoded or look-alike form of those, at most 1024 bytes. The
// rules are the object store's key rules (one validator for both).
func ValidateArtifactPath(p string) error {
	return blob.ValidatePath("path", p)
}

// Upload is a version being registered in one request: the metadata first,
// then each file streamed into the store, then Commit.
type Upload struct {
	s         *Service
	model     Model
	meta      NewVersion
	prefix    string
	artifacts []Artifact
	paths     map[string]bool
}

// maxArtifactSize bounds one artifact (5 TiB is S3's own limit).
const maxArtifactSize = 5 << 40

// BeginUpload checks the model and the metadata and starts an upload.
func (s *Service) BeginUpload(ctx context.Context, modelName string, meta NewVersion) (*Upload, error) {
	if err := meta.Validate(); err != nil {
		return nil, err
	}
	m, err := s.GetModel(ctx, modelName)
	if err != nil {
		return nil, err
	}
	if m.Archived {
		return nil, fmt.Errorf("model %q is archived: unarchive it to register versions: %w", m.Name, errs.ErrConflict)
	}
	return &Upload{s: s, model: m, meta: meta, prefix: newStoragePrefix(m), paths: map[string]bool{}}, nil
}

// newStoragePrefix names where a new version's objects go:
// models/<model id>/<random>. The reaper judges objects by this prefix.
func newStoragePrefix(m Model) string {
	b := make([]byte, 16)
	rand.Read(b)
	return fmt.Sprintf("models/%d/%s", m.ID, hex.EncodeToString(b))
}

// Add streams one artifact into the store, computing its size and sha256 on
// the way. Objects are keyed by position, never by the path a client sent:
// no client input reaches a key.
func (u *Upload) Add(ctx context.Context, path, contentType string, r io.Reader) (Artifact, error) {
	if err := ValidateArtifactPath(path); err != nil {
		return Artifact{}, err
	}
	if u.paths[path] {
		return Artifact{}, errs.Invalid("path", "%q appears twice", path)
	}
	for p := range u.paths {
		if strings.HasPrefix(p, path+"/") || strings.HasPrefix(path, p+"/") {
			return Artifact{}, errs.Invalid("path", "%q and %q: a path cannot be both a file and a folder", p, path)
		}
	}
	if len(u.artifacts) >= maxArtifacts {
		return Artifact{}, errs.Invalid("file", "a version holds at most %d artifacts", maxArtifacts)
	}
	if contentType == "" {
		contentType = blob.DefaultContentType
	}
	key := fmt.Sprintf("%s/%06d", u.prefix, len(u.artifacts))
	info, err := u.s.store.Put(ctx, key, io.LimitReader(r, maxArtifactSize+1), blob.PutOptions{ContentType: contentType, Size: -1})
	if err != nil {
		return Artifact{}, fmt.Errorf("artifact %q: %w", path, err)
	}
	if info.Size > maxArtifactSize {
		u.s.store.Delete(context.WithoutCancel(ctx), key)
		return Artifact{}, fmt.Errorf("artifact %q is larger than 5 TiB: %w", path, errs.ErrTooLarge)
	}
	a := Artifact{Path: path, Size: info.Size, SHA256: info.SHA256, ContentType: contentType, objectKey: key}
	u.artifacts = append(u.artifacts, a)
	u.paths[path] = true
	return a, nil
}

// Abort deletes what the upload stored. Best effort: the reaper removes
// whatever a crash or a failed delete leaves.
func (u *Upload) Abort(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	for _, a := range u.artifacts {
		u.s.store.Delete(ctx, a.objectKey)
	}
}

// Commit numbers the version and records it with its artifacts, ready, in
// one transaction. The model row is locked while the number is taken, so
// concurrent registrations get consecutive numbers and none fails.
func (u *Upload) Commit(ctx context.Context) (Version, error) {
	if len(u.artifacts) == 0 {
		return Version{}, errs.Invalid("file", "a version needs at least one artifact (a part named file)")
	}
	// A version is ready only once every object is confirmed in the store.
	for _, a := range u.artifacts {
		info, err := u.s.store.Stat(ctx, a.objectKey)
		if errors.Is(err, errs.ErrNotFound) {
			return Version{}, fmt.Errorf("artifact %q vanished from the store before the version was recorded; register again: %w", a.Path, errs.ErrConflict)
		}
		if err != nil {
			return Version{}, fmt.Errorf("confirm artifact %q in the store: %w", a.Path, err)
		}
		if info.Size != a.Size {
			return Version{}, fmt.Errorf("artifact %q: the store holds %d bytes, %d were sent: %w", a.Path, info.Size, a.Size, errs.ErrConflict)
		}
	}
	actor := audit.ActorFrom(ctx)
	var v Version
	err := pgx.BeginTxFunc(ctx, u.s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		number, err := takeNumber(ctx, tx, u.model)
		if err != nil {
			return err
		}
		m := u.meta
		var id int64
		err = tx.QueryRow(ctx, `
			INSERT INTO model_versions (model_id, version, status, kind, framework, flavor, description, params, tags, source, links,
			                            storage_prefix, created_by, ready_at)
			VALUES ($1, $2, 'ready', $3, $4, $5, $6, $7, $8, $9, $10, $11, nullif($12, 0), now())
			RETURNING id`,
			u.model.ID, number, m.Kind, m.Framework, m.Flavor, m.Description, m.Params, m.Tags, m.Source, m.Links,
			u.prefix, actor.UserID).Scan(&id)
		if err != nil {
			return fmt.Errorf("record the version: %w", err)
		}
		if err := m.linkLineage(ctx, tx, id); err != nil {
			return err
		}
		now := time.Now()
		rows := make([][]any, len(u.artifacts))
		for i, a := range u.artifacts {
			rows[i] = []any{id, a.Path, a.Size, a.SHA256, a.ContentType, a.objectKey, now, true}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"model_artifacts"},
			[]string{"version_id", "path", "size", "sha256", "content_type", "object_key", "uploaded_at", "verified"}, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("record the artifacts: %w", err)
		}
		v, err = getVersion(ctx, tx, u.model.Name, number)
		if err != nil {
			return err
		}
		if err := emitCreated(ctx, tx, u.model.ID, v); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "version.create", TargetType: "model_version",
			TargetID: fmt.Sprintf("%s/%d", u.model.Name, number), After: v.auditView()})
	})
	return v, err
}

// emitCreated records the model_version.created event of a version that
// became ready.
func emitCreated(ctx context.Context, tx pgx.Tx, modelID int64, v Version) error {
	type artifact struct {
		Path   string `json:"path"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	}
	arts := make([]artifact, len(v.Artifacts))
	for i, a := range v.Artifacts {
		arts[i] = artifact{a.Path, a.Size, a.SHA256}
	}
	_, err := events.Emit(ctx, tx, modelID, events.ModelVersionCreated, map[string]any{
		"model": v.Model, "version": v.Version, "kind": v.Kind, "artifacts": arts, "created_by": v.CreatedBy})
	return err
}

// takeNumber takes the next version number of model m. The UPDATE locks
// the model row until the transaction ends, so concurrent registrations
// take consecutive numbers, one after the other, and none fails; a
// rolled-back transaction gives its number back.
func takeNumber(ctx context.Context, tx pgx.Tx, m Model) (int, error) {
	var number int
	var archived bool
	err := tx.QueryRow(ctx, `
		UPDATE models SET next_version = next_version + 1
		WHERE id = $1 RETURNING next_version - 1, archived_at IS NOT NULL`, m.ID).Scan(&number, &archived)
	if err != nil {
		return 0, fmt.Errorf("number the version: %w", err)
	}
	if archived {
		return 0, fmt.Errorf("model %q is archived: unarchive it to register versions: %w", m.Name, errs.ErrConflict)
	}
	return number, nil
}

const versionColumns = `v.id, m.name, v.version, v.status, v.kind, v.framework, v.flavor, v.description, v.params, v.tags, v.source, v.links,
	coalesce(u.name, ''), v.created_at, v.ready_at, v.expires_at,
	(SELECT count(*) FROM model_artifacts a WHERE a.version_id = v.id),
	(SELECT coalesce(sum(size), 0) FROM model_artifacts a WHERE a.version_id = v.id)`

const versionFrom = ` FROM model_versions v JOIN models m ON m.id = v.model_id LEFT JOIN users u ON u.id = v.created_by `

func scanVersion(row pgx.Row) (Version, error) {
	var v Version
	err := row.Scan(&v.id, &v.Model, &v.Version, &v.Status, &v.Kind, &v.Framework, &v.Flavor, &v.Description, &v.Params, &v.Tags, &v.Source, &v.Links,
		&v.CreatedBy, &v.CreatedAt, &v.ReadyAt, &v.ExpiresAt, &v.ArtifactCount, &v.TotalSize)
	return v, err
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func getVersion(ctx context.Context, q querier, model string, number int) (Version, error) {
	v, err := scanVersion(q.QueryRow(ctx, `SELECT `+versionColumns+versionFrom+`WHERE m.name = $1 AND v.version = $2`, model, number))
	if errors.Is(err, pgx.ErrNoRows) {
		return Version{}, fmt.Errorf("model %q version %d: %w", model, number, errs.ErrNotFound)
	}
	if err != nil {
		return Version{}, fmt.Errorf("get version: %w", err)
	}
	rows, err := q.Query(ctx, `
		SELECT path, size, sha256, content_type, object_key, uploaded_at IS NOT NULL, verified
		FROM model_artifacts WHERE version_id = $1 ORDER BY path COLLATE "C"`, v.id)
	if err != nil {
		return Version{}, fmt.Errorf("get artifacts: %w", err)
	}
	v.Artifacts, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Artifact, error) {
		var a Artifact
		err := r.Scan(&a.Path, &a.Size, &a.SHA256, &a.ContentType, &a.objectKey, &a.Uploaded, &a.verified)
		return a, err
	})
	if err != nil {
		return Version{}, fmt.Errorf("get artifacts: %w", err)
	}
	return v, nil
}

// GetVersion returns one version with its artifacts.
func (s *Service) GetVersion(ctx context.Context, model string, number int) (Version, error) {
	if _, err := s.GetModel(ctx, model); err != nil {
		return Version{}, err
	}
	return getVersion(ctx, s.db, model, number)
}

// ListVersions returns a model's versions, newest first.
func (s *Service) ListVersions(ctx context.Context, model string, p pagination.Page) ([]Version, string, error) {
	var after struct {
		Version int `json:"v"`
	}
	if _, err := p.Decode(&after); err != nil {
		return nil, "", err
	}
	m, err := s.GetModel(ctx, model)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.db.Query(ctx, `SELECT `+versionColumns+versionFrom+`
		WHERE v.model_id = $1 AND ($2::integer = 0 OR v.version < $2)
		ORDER BY v.version DESC LIMIT $3`, m.ID, after.Version, p.Size()+1)
	if err != nil {
		return nil, "", fmt.Errorf("list versions: %w", err)
	}
	versions, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Version, error) { return scanVersion(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list versions: %w", err)
	}
	versions, next := pagination.Trim(versions, p, func(v Version) any { return map[string]int{"v": v.Version} })
	return versions, next, nil
}

// FindArtifact returns the artifact at path of a version.
func (s *Service) FindArtifact(ctx context.Context, model string, number int, path string) (Artifact, error) {
	if err := ValidateArtifactPath(path); err != nil {
		return Artifact{}, err
	}
	v, err := s.GetVersion(ctx, model, number)
	if err != nil {
		return Artifact{}, err
	}
	if v.Status != StatusReady {
		return Artifact{}, fmt.Errorf("model %q version %d is a draft: its artifacts can be read once it is finalized: %w", model, number, errs.ErrConflict)
	}
	return findArtifact(v, path)
}

func findArtifact(v Version, path string) (Artifact, error) {
	for _, a := range v.Artifacts {
		if a.Path == path {
			return a, nil
		}
	}
	return Artifact{}, fmt.Errorf("model %q version %d has no artifact %q: %w", v.Model, v.Version, path, errs.ErrNotFound)
}

// OpenArtifact opens an artifact for reading, whole (rng nil) or a range.
func (s *Service) OpenArtifact(ctx context.Context, a Artifact, rng *blob.Range) (io.ReadCloser, error) {
	rc, _, err := s.store.Get(ctx, a.objectKey, rng)
	if err != nil {
		return nil, fmt.Errorf("artifact %q: %w", a.Path, err)
	}
	return rc, nil
}
