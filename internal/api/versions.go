package api

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/idempotency"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/internal/registry"
)

// RegisterVersion registers a version in one multipart/form-data request:
// a part named metadata (JSON) first, then one part named file per
// artifact, whose filename is the artifact path. Each file streams into the
// object store while its size and sha256 are computed; nothing is held in
// memory or written to a temporary file.
func (a *API) RegisterVersion(c echo.Context) error {
	req := c.Request()
	ctx := req.Context()
	mt, params, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err == nil && mt == echo.MIMEApplicationJSON {
		return a.createDraft(c)
	}
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return fmt.Errorf("the body must be multipart/form-data (metadata and files), or application/json (a draft): %w", errs.ErrUnsupportedMedia)
	}
	// A large read buffer: multipart would read the body 4 KiB at a time,
	// scanning for the boundary in each; 256 KiB moves artifacts in far
	// fewer, larger copies (multipart keeps a bufio.Reader it is given).
	mr := multipart.NewReader(bufio.NewReaderSize(req.Body, 256<<10), params["boundary"])
	part, err := mr.NextPart()
	if err != nil {
		return multipartError(err)
	}
	if part.FormName() != "metadata" {
		return errs.Invalid("metadata", "must be the first part (a JSON object), before the files")
	}
	if ct := part.Header.Get(echo.HeaderContentType); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != echo.MIMEApplicationJSON && mt != echo.MIMETextPlain) {
			return fmt.Errorf("the metadata part must be application/json: %w", errs.ErrUnsupportedMedia)
		}
	}
	metaBytes, err := io.ReadAll(io.LimitReader(part, a.MaxJSONBody+1))
	if err != nil {
		return multipartError(err)
	}
	var meta registry.NewVersion
	if err := decodeJSONReader(bytes.NewReader(metaBytes), a.MaxJSONBody, &meta, "metadata"); err != nil {
		return err
	}
	// The fingerprint of the request, for Idempotency-Key: the metadata
	// and each file's path, size and sha256, whatever the multipart
	// boundaries a client library picks.
	fp := sha256.New()
	fp.Write(metaBytes)
	idem := idempotency.RequestFrom(ctx)
	if idem != nil && idem.Verify {
		return fingerprintOnly(mr, fp, idem)
	}
	up, err := a.Registry.BeginUpload(ctx, c.Param("model"), meta)
	if err != nil {
		return err
	}
	v, err := func() (registry.Version, error) {
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return up.Commit(ctx)
			}
			if err != nil {
				return registry.Version{}, multipartError(err)
			}
			if part.FormName() != "file" {
				return registry.Version{}, errs.Invalid(part.FormName(), "is not a part this endpoint takes (metadata first, then parts named file)")
			}
			name, err := partFileName(part)
			if err != nil {
				return registry.Version{}, err
			}
			ct := part.Header.Get(echo.HeaderContentType)
			if _, _, err := mime.ParseMediaType(ct); err != nil {
				ct = ""
			}
			art, err := up.Add(ctx, name, ct, part)
			if err != nil {
				return registry.Version{}, err
			}
			fmt.Fprintf(fp, "\x00%s\x00%d\x00%s", art.Path, art.Size, art.SHA256)
		}
	}()
	if err != nil {
		up.Abort(ctx)
		return err
	}
	if idem != nil {
		idem.Fingerprint = hex.EncodeToString(fp.Sum(nil))
	}
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/api/v1/models/%s/versions/%d", v.Model, v.Version))
	return c.JSON(http.StatusCreated, v)
}

// fingerprintOnly reads the files of a retried registration without
// storing them, to compare the retry with the first request.
func fingerprintOnly(mr *multipart.Reader, fp hash.Hash, idem *idempotency.Request) error {
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			idem.Fingerprint = hex.EncodeToString(fp.Sum(nil))
			return idempotency.ErrVerified
		}
		if err != nil {
			return multipartError(err)
		}
		name, err := partFileName(part)
		if err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.Copy(h, part)
		if err != nil {
			return multipartError(err)
		}
		fmt.Fprintf(fp, "\x00%s\x00%d\x00%s", name, n, hex.EncodeToString(h.Sum(nil)))
	}
}

// partFileName reads the filename parameter as sent: mime/multipart's
// FileName keeps only the last element, and artifact paths have folders.
func partFileName(p *multipart.Part) (string, error) {
	_, params, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
	if err != nil || params["filename"] == "" {
		return "", errs.Invalid("file", "every file part needs a filename: the artifact path, e.g. weights/model.pt")
	}
	return params["filename"], nil
}

func multipartError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("the request body is too large: %w", errs.ErrTooLarge)
	}
	return errs.Invalid("body", "is not a well-formed multipart/form-data body: %v", err)
}

var versionRE = regexp.MustCompile(`^[1-9][0-9]{0,9}$`)

func versionNumber(c echo.Context) (int, error) {
	n, err := strconv.Atoi(c.Param("version"))
	if err != nil || !versionRE.MatchString(c.Param("version")) {
		return 0, errs.Invalid("version", "must be a version number (1, 2, 3…)")
	}
	return n, nil
}

// GetVersion returns one version with its artifacts.
func (a *API) GetVersion(c echo.Context) error {
	n, err := versionNumber(c)
	if err != nil {
		return err
	}
	v, err := a.Registry.GetVersion(c.Request().Context(), c.Param("model"), n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// ListVersions lists a model's versions, newest first.
func (a *API) ListVersions(c echo.Context) error {
	p, err := pagination.Parse(c.QueryParam("cursor"), c.QueryParam("limit"))
	if err != nil {
		return err
	}
	versions, next, err := a.Registry.ListVersions(c.Request().Context(), c.Param("model"), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(versions, next))
}

// DownloadArtifact streams one artifact, or the single byte range asked
// for with Range (206; 416 when it starts past the end).
func (a *API) DownloadArtifact(c echo.Context) error {
	n, err := versionNumber(c)
	if err != nil {
		return err
	}
	p, err := artifactParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	art, err := a.Registry.FindArtifact(ctx, c.Param("model"), n, p)
	if err != nil {
		return err
	}
	if c.QueryParam("presigned") == "true" {
		return a.presignedDownload(c, art)
	}
	return serveObject(c, object{size: art.Size, sha256: art.SHA256, contentType: art.ContentType, filename: path.Base(art.Path)},
		func(rng *blob.Range) (io.ReadCloser, error) { return a.Registry.OpenArtifact(ctx, art, rng) })
}

// object describes stored bytes being served.
type object struct {
	size        int64
	sha256      string
	contentType string
	filename    string
}

// serveObject streams stored bytes whole, or the single byte range asked
// for with Range (206; 416 when it starts past the end), with their size,
// type, digest and a download file name.
func serveObject(c echo.Context, o object, open func(*blob.Range) (io.ReadCloser, error)) error {
	h := c.Response().Header()
	rng, status, err := parseRange(c.Request().Header.Get("Range"), o.size)
	if err != nil {
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", o.size))
		return err
	}
	h.Set("Accept-Ranges", "bytes")
	h.Set("ETag", `"`+o.sha256+`"`)
	if sum, err := hex.DecodeString(o.sha256); err == nil && rng == nil {
		// Over the bytes sent (RFC 9530): the whole object only.
		h.Set("Content-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum)+":")
	}
	h.Set(echo.HeaderContentType, o.contentType)
	h.Set(echo.HeaderContentDisposition, mime.FormatMediaType("attachment", map[string]string{"filename": o.filename}))
	rc, err := open(rng)
	if err != nil {
		return err
	}
	defer rc.Close()
	length := o.size
	if rng != nil {
		length = rng.Length
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", rng.Offset, rng.Offset+rng.Length-1, o.size))
	}
	h.Set(echo.HeaderContentLength, strconv.FormatInt(length, 10))
	c.Response().WriteHeader(status)
	if c.Request().Method == http.MethodHead {
		return nil // the headers tell size, type and digest
	}
	_, err = io.Copy(c.Response(), rc)
	return err // after the header: only logged
}

// errRangeNotSatisfiable answers 416.
var errRangeNotSatisfiable = echo.NewHTTPError(http.StatusRequestedRangeNotSatisfiable, "the range starts past the end of the artifact")

// parseRange reads a Range header for an object of size bytes. One range is
// served (206); several, or a header that is not a byte range, are ignored
// and the whole object served (200), as RFC 9110 allows.
func parseRange(h string, size int64) (*blob.Range, int, error) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if h == "" || !ok || strings.Contains(spec, ",") {
		return nil, http.StatusOK, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return nil, http.StatusOK, nil
	}
	var start, end int64
	switch {
	case first == "": // suffix: the last N bytes
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return nil, http.StatusOK, nil
		}
		if size == 0 || n == 0 {
			return nil, 0, errRangeNotSatisfiable
		}
		start, end = max(size-n, 0), size-1
	default:
		s, err := strconv.ParseInt(first, 10, 64)
		if err != nil || s < 0 {
			return nil, http.StatusOK, nil
		}
		start, end = s, size-1
		if last != "" {
			e, err := strconv.ParseInt(last, 10, 64)
			if err != nil || e < s {
				return nil, http.StatusOK, nil
			}
			end = min(e, size-1)
		}
		if start >= size {
			return nil, 0, errRangeNotSatisfiable
		}
	}
	return &blob.Range{Offset: start, Length: end - start + 1}, http.StatusPartialContent, nil
}

// presignTTL is how long a presigned URL works.
const presignTTL = time.Hour

// uploadTarget tells a client where to send one declared artifact of a
// draft: through Slipway, or straight to the bucket.
type uploadTarget struct {
	Path         string     `json:"path"`
	UploadURL    string     `json:"upload_url"`
	PresignedURL string     `json:"presigned_url,omitempty"`
	PresignedTil *time.Time `json:"presigned_expires_at,omitempty"`
	// PresignedHeaders must be sent with the PUT to PresignedURL: they are
	// part of its signature (the declared SHA-256 among them).
	PresignedHeaders map[string]string `json:"presigned_headers,omitempty"`
}

type draftResponse struct {
	registry.Version
	Uploads []uploadTarget `json:"uploads"`
}

// createDraft registers a version in steps: this request declares the
// metadata and each artifact's path, size and sha256; each artifact is
// then PUT (through Slipway, or to its presigned URL); finalize makes the
// version ready.
func (a *API) createDraft(c echo.Context) error {
	ctx := c.Request().Context()
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, a.MaxJSONBody+1))
	if err != nil {
		return err
	}
	if idem := idempotency.RequestFrom(ctx); idem != nil {
		sum := sha256.Sum256(body)
		idem.Fingerprint = hex.EncodeToString(sum[:])
		if idem.Verify {
			return idempotency.ErrVerified
		}
	}
	var in registry.NewDraft
	if err := decodeJSONReader(bytes.NewReader(body), a.MaxJSONBody, &in, "body"); err != nil {
		return err
	}
	v, err := a.Registry.CreateDraft(ctx, c.Param("model"), in, a.DraftTTL)
	if err != nil {
		return err
	}
	res := draftResponse{Version: v}
	for _, art := range v.Artifacts {
		t := uploadTarget{Path: art.Path, UploadURL: artifactPath(v, art.Path)}
		u, hdr, err := a.Registry.PresignUpload(ctx, v.Model, v.Version, art.Path, presignTTL)
		if err != nil {
			return err
		}
		if u != "" {
			exp := time.Now().Add(presignTTL).UTC()
			t.PresignedURL, t.PresignedTil = u, &exp
			t.PresignedHeaders = map[string]string{}
			for k := range hdr {
				t.PresignedHeaders[k] = hdr.Get(k)
			}
		}
		res.Uploads = append(res.Uploads, t)
	}
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/api/v1/models/%s/versions/%d", v.Model, v.Version))
	return c.JSON(http.StatusCreated, res)
}

func artifactPath(v registry.Version, p string) string {
	return fmt.Sprintf("/api/v1/models/%s/versions/%d/artifacts/%s", v.Model, v.Version, (&url.URL{Path: p}).EscapedPath())
}

// artifactParam reads the artifact path from the escaped request path,
// decoded exactly once: a name holding "%41" must not become "A". The
// model name and the number before it cannot hold "/artifacts/".
func artifactParam(c echo.Context) (string, error) {
	raw := c.Request().URL.EscapedPath()
	i := strings.Index(raw, "/artifacts/")
	if i < 0 {
		return "", errs.Invalid("path", "is missing")
	}
	p, err := url.PathUnescape(raw[i+len("/artifacts/"):])
	if err != nil {
		return "", errs.Invalid("path", "is not a valid URL path")
	}
	return p, nil
}

// UploadArtifact streams the body as one declared artifact of a draft.
func (a *API) UploadArtifact(c echo.Context) error {
	n, err := versionNumber(c)
	if err != nil {
		return err
	}
	p, err := artifactParam(c)
	if err != nil {
		return err
	}
	art, err := a.Registry.UploadArtifact(c.Request().Context(), c.Param("model"), n, p, c.Request().Body)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, art)
}

// FinalizeVersion checks a draft's artifacts and makes it ready.
func (a *API) FinalizeVersion(c echo.Context) error {
	n, err := versionNumber(c)
	if err != nil {
		return err
	}
	v, err := a.Registry.Finalize(c.Request().Context(), c.Param("model"), n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// presignedDownload answers a short-lived URL to fetch the artifact from
// the bucket, for serving layers that prefer to. 404 when the store has
// no such URLs (the filesystem store).
func (a *API) presignedDownload(c echo.Context, art registry.Artifact) error {
	u, err := a.Registry.PresignDownload(c.Request().Context(), art, presignTTL)
	if err != nil {
		return err
	}
	if u == "" {
		return fmt.Errorf("this Slipway stores artifacts on a filesystem: no presigned URLs; download through Slipway: %w", errs.ErrNotFound)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]any{"url": u, "expires_at": time.Now().Add(presignTTL).UTC(), "sha256": art.SHA256, "size": art.Size})
}
