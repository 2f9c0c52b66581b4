package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/validate"
)

// DeclaredArtifact is an artifact a draft announces before it is uploaded.
type DeclaredArtifact struct {
	Path        string `json:"path"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	ContentType string `json:"content_type"`
}

// NewDraft is a version registered in steps: its metadata and the
// artifacts it will hold, each uploaded on its own, then Finalize.
type NewDraft struct {
	NewVersion
	Artifacts []DeclaredArtifact `json:"artifacts"`
}

// Validate checks the metadata and the declared artifacts.
func (in *NewDraft) Validate() error {
	var fe errs.FieldErrors
	if err := in.NewVersion.Validate(); err != nil {
		fe = append(fe, validate.Flatten(err)...)
	}
	switch {
	case len(in.Artifacts) == 0:
		fe.Add("artifacts", "must declare at least one artifact")
	case len(in.Artifacts) > maxArtifacts:
		fe.Add("artifacts", "must declare at most %d artifacts", maxArtifacts)
	}
	seen := map[string]bool{}
	for i, a := range in.Artifacts {
		field := fmt.Sprintf("artifacts[%d]", i)
		if err := ValidateArtifactPath(a.Path); err != nil {
			fe.Add(field+".path", "%s", err.(*errs.FieldError).Rule)
			continue
		}
		if seen[a.Path] {
			fe.Add(field+".path", "%q is declared twice", a.Path)
		}
		for p := range seen {
			if strings.HasPrefix(p, a.Path+"/") || strings.HasPrefix(a.Path, p+"/") {
				fe.Add(field+".path", "%q and %q: a path cannot be both a file and a folder", p, a.Path)
			}
		}
		seen[a.Path] = true
		if a.Size < 0 || a.Size > maxArtifactSize {
			fe.Add(field+".size", "must be between 0 and %d bytes", int64(maxArtifactSize))
		}
		if !validate.SHA256(a.SHA256) {
			fe.Add(field+".sha256", "must be the lower-case hex SHA-256 of the file (64 characters)")
		}
		if a.ContentType == "" {
			in.Artifacts[i].ContentType = blob.DefaultContentType
		}
		validate.Text(field+".content_type", a.ContentType, 255, false, &fe)
	}
	return fe.Err()
}

// CreateDraft numbers a new version and records it as a draft holding the
// declared artifacts, none uploaded yet. A draft not finalized within ttl
// is deleted by the reaper, and its objects reclaimed.
func (s *Service) CreateDraft(ctx context.Context, model string, in NewDraft, ttl time.Duration) (Version, error) {
	if err := in.Validate(); err != nil {
		return Version{}, err
	}
	m, err := s.GetModel(ctx, model)
	if err != nil {
		return Version{}, err
	}
	prefix := newStoragePrefix(m)
	actor := audit.ActorFrom(ctx)
	var v Version
	err = pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		number, err := takeNumber(ctx, tx, m)
		if err != nil {
			return err
		}
		meta := in.NewVersion
		var id int64
		if err := tx.QueryRow(ctx, `
			INSERT INTO model_versions (model_id, version, status, kind, framework, flavor, description, params, tags, source, links,
			                            storage_prefix, created_by, expires_at)
			VALUES ($1, $2, 'draft', $3, $4, $5, $6, $7, $8, $9, $10, $11, nullif($12, 0), now() + $13::interval)
			RETURNING id`,
			m.ID, number, meta.Kind, meta.Framework, meta.Flavor, meta.Description, meta.Params, meta.Tags, meta.Source, meta.Links,
			prefix, actor.UserID, ttl.String()).Scan(&id); err != nil {
			return fmt.Errorf("record the draft: %w", err)
		}
		if err := meta.linkLineage(ctx, tx, id); err != nil {
			return err
		}
		rows := make([][]any, len(in.Artifacts))
		for i, a := range in.Artifacts {
			rows[i] = []any{id, a.Path, a.Size, a.SHA256, a.ContentType, fmt.Sprintf("%s/%06d", prefix, i)}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"model_artifacts"},
			[]string{"version_id", "path", "size", "sha256", "content_type", "object_key"}, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("record the artifacts: %w", err)
		}
		if v, err = getVersion(ctx, tx, m.Name, number); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "version.draft", TargetType: "model_version",
			TargetID: fmt.Sprintf("%s/%d", m.Name, number), After: v.auditView()})
	})
	return v, err
}

// draftArtifact finds a declared artifact of a live draft.
func (s *Service) draftArtifact(ctx context.Context, model string, number int, path string) (Version, Artifact, error) {
	if err := ValidateArtifactPath(path); err != nil {
		return Version{}, Artifact{}, err
	}
	v, err := s.GetVersion(ctx, model, number)
	if err != nil {
		return Version{}, Artifact{}, err
	}
	if v.Status != StatusDraft {
		return Version{}, Artifact{}, fmt.Errorf("model %q version %d is ready: its artifacts are immutable: %w", model, number, errs.ErrConflict)
	}
	if v.ExpiresAt != nil && time.Now().After(*v.ExpiresAt) {
		return Version{}, Artifact{}, fmt.Errorf("draft %s/%d expired at %s: %w", model, number, v.ExpiresAt.UTC().Format(time.RFC3339), errs.ErrConflict)
	}
	a, err := findArtifact(v, path)
	if err != nil {
		return Version{}, Artifact{}, fmt.Errorf("draft %s/%d did not declare %q: %w", model, number, path, errs.ErrNotFound)
	}
	return v, a, nil
}

// UploadArtifact streams one declared artifact of a draft into the store.
// The bytes must have the declared size and sha256: otherwise nothing is
// kept and the error says which differs. Uploading again replaces it.
func (s *Service) UploadArtifact(ctx context.Context, model string, number int, path string, r io.Reader) (Artifact, error) {
	v, a, err := s.draftArtifact(ctx, model, number, path)
	if err != nil {
		return Artifact{}, err
	}
	if _, err := s.store.Put(ctx, a.objectKey, r, blob.PutOptions{ContentType: a.ContentType, Size: a.Size, SHA256: a.SHA256}); err != nil {
		if errors.Is(err, errs.ErrInvalid) {
			return Artifact{}, fmt.Errorf("artifact %q does not match its declaration (%d bytes, sha256 %s); nothing was kept: %w", path, a.Size, a.SHA256, errs.ErrUnprocessable)
		}
		return Artifact{}, fmt.Errorf("artifact %q: %w", path, err)
	}
	tag, err := s.db.Exec(ctx, `
		UPDATE model_artifacts a SET uploaded_at = now(), verified = true
		FROM model_versions v
		WHERE a.version_id = v.id AND v.id = $1 AND a.path = $2 AND v.status = 'draft'`, v.id, path)
	if err != nil {
		return Artifact{}, fmt.Errorf("record the upload: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return Artifact{}, fmt.Errorf("draft %s/%d was finalized or expired during the upload: %w", model, number, errs.ErrConflict)
	}
	a.Uploaded, a.verified = true, true
	return a, nil
}

// Presigner is a store that can hand out short-lived URLs to its objects.
type Presigner interface {
	PresignPut(ctx context.Context, key, sha256Hex string, ttl time.Duration) (string, http.Header, error)
	PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error)
}

// PresignUpload returns a URL where a client puts a declared artifact of a
// draft straight into the bucket, with the headers the PUT must carry, or
// "" when the store has no such URLs (the filesystem store). The store
// itself refuses bytes of another SHA-256; Finalize reads the object back
// all the same.
func (s *Service) PresignUpload(ctx context.Context, model string, number int, path string, ttl time.Duration) (string, http.Header, error) {
	_, a, err := s.draftArtifact(ctx, model, number, path)
	if err != nil {
		return "", nil, err
	}
	p, ok := s.store.(Presigner)
	if !ok {
		return "", nil, nil
	}
	return p.PresignPut(ctx, a.objectKey, a.SHA256, ttl)
}

// PresignDownload returns a short-lived URL to fetch an artifact of a ready
// version from the bucket directly, or "" when the store has none.
func (s *Service) PresignDownload(ctx context.Context, a Artifact, ttl time.Duration) (string, error) {
	p, ok := s.store.(Presigner)
	if !ok {
		return "", nil
	}
	return p.PresignGet(ctx, a.objectKey, ttl)
}

// Finalize checks every declared artifact against what the store holds
// (present, declared size, and for objects put to a presigned URL the
// sha256, read back) and only then makes the draft ready. A mismatch is
// ErrUnprocessable naming every artifact at fault; the draft stays a
// draft. Finalizing a ready version returns it unchanged.
func (s *Service) Finalize(ctx context.Context, model string, number int) (Version, error) {
	v, err := s.GetVersion(ctx, model, number)
	if err != nil {
		return Version{}, err
	}
	if v.Status == StatusReady {
		return v, nil
	}
	if v.ExpiresAt != nil && time.Now().After(*v.ExpiresAt) {
		return Version{}, fmt.Errorf("draft %s/%d expired at %s: %w", model, number, v.ExpiresAt.UTC().Format(time.RFC3339), errs.ErrConflict)
	}
	if m, err := s.GetModel(ctx, model); err != nil {
		return Version{}, err
	} else if m.Archived {
		return Version{}, fmt.Errorf("model %q is archived: unarchive it to finalize versions: %w", model, errs.ErrConflict)
	}
	var problems []string
	var checked []string
	for _, a := range v.Artifacts {
		info, err := s.store.Stat(ctx, a.objectKey)
		switch {
		case errors.Is(err, errs.ErrNotFound):
			problems = append(problems, fmt.Sprintf("%s: not uploaded", a.Path))
			continue
		case err != nil:
			return Version{}, fmt.Errorf("check artifact %q: %w", a.Path, err)
		case info.Size != a.Size:
			problems = append(problems, fmt.Sprintf("%s: %d bytes uploaded, %d declared", a.Path, info.Size, a.Size))
			continue
		}
		if a.verified && a.Uploaded {
			continue
		}
		sum, err := s.hashObject(ctx, a.objectKey)
		if err != nil {
			return Version{}, fmt.Errorf("check artifact %q: %w", a.Path, err)
		}
		if sum != a.SHA256 {
			problems = append(problems, fmt.Sprintf("%s: sha256 of the upload is %s, %s declared", a.Path, sum, a.SHA256))
			continue
		}
		checked = append(checked, a.Path)
	}
	if len(problems) > 0 {
		return Version{}, fmt.Errorf("draft %s/%d cannot be finalized: %s: %w", model, number, strings.Join(problems, "; "), errs.ErrUnprocessable)
	}
	err = pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var status string
		if err := tx.QueryRow(ctx, `SELECT status FROM model_versions WHERE id = $1 FOR UPDATE`, v.id).Scan(&status); err != nil {
			return fmt.Errorf("finalize: %w", err)
		}
		if status == StatusReady {
			return nil // finalized meanwhile by a concurrent call
		}
		if _, err := tx.Exec(ctx, `
			UPDATE model_artifacts SET uploaded_at = coalesce(uploaded_at, now()), verified = true
			WHERE version_id = $1`, v.id); err != nil {
			return fmt.Errorf("finalize: %w", err)
		}
		if _, err := tx.Exec(ctx, `
			UPDATE model_versions SET status = 'ready', ready_at = now(), expires_at = NULL WHERE id = $1`, v.id); err != nil {
			return fmt.Errorf("finalize: %w", err)
		}
		after, err := getVersion(ctx, tx, model, number)
		if err != nil {
			return err
		}
		var modelID int64
		if err := tx.QueryRow(ctx, `SELECT model_id FROM model_versions WHERE id = $1`, v.id).Scan(&modelID); err != nil {
			return fmt.Errorf("finalize: %w", err)
		}
		if err := emitCreated(ctx, tx, modelID, after); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "version.finalize", TargetType: "model_version",
			TargetID: fmt.Sprintf("%s/%d", model, number), Before: v.auditView(), After: after.auditView()})
	})
	if err != nil {
		return Version{}, err
	}
	return s.GetVersion(ctx, model, number)
}

func (s *Service) hashObject(ctx context.Context, key string) (string, error) {
	rc, _, err := s.store.Get(ctx, key, nil)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DeleteExpiredDrafts removes drafts past their expiry, with their
// artifact rows; their objects become orphans the reaper reclaims.
func (s *Service) DeleteExpiredDrafts(ctx context.Context) (int, error) {
	n := 0
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT v.id, m.name, v.version FROM model_versions v JOIN models m ON m.id = v.model_id
			WHERE v.status = 'draft' AND v.expires_at < now()
			ORDER BY v.id LIMIT 1000 FOR UPDATE OF v SKIP LOCKED`)
		if err != nil {
			return err
		}
		type draft struct {
			id      int64
			model   string
			version int
		}
		drafts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (draft, error) {
			var d draft
			err := r.Scan(&d.id, &d.model, &d.version)
			return d, err
		})
		if err != nil {
			return err
		}
		ctx := audit.WithActor(ctx, audit.System)
		for _, d := range drafts {
			if _, err := tx.Exec(ctx, `DELETE FROM model_artifacts WHERE version_id = $1`, d.id); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM model_versions WHERE id = $1`, d.id); err != nil {
				return err
			}
			if err := audit.Record(ctx, tx, audit.Entry{Action: "version.draft.expire", TargetType: "model_version",
				TargetID: fmt.Sprintf("%s/%d", d.model, d.version)}); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete expired drafts: %w", err)
	}
	return n, nil
}
