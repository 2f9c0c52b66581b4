package api

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/idempotency"
	"github.com/slipway-ml/slipway/internal/lineage"
)

// ListDatasets lists datasets by name; ?q= is a name prefix.
func (a *API) ListDatasets(c echo.Context) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	ds, next, err := a.Lineage.ListDatasets(c.Request().Context(), lineage.DatasetFilter{Prefix: c.QueryParam("q")}, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(ds, next))
}

// CreateDataset registers a dataset.
func (a *API) CreateDataset(c echo.Context) error {
	var in lineage.NewDataset
	if err := decodeJSON(c, a.MaxJSONBody, &in); err != nil {
		return err
	}
	d, err := a.Lineage.CreateDataset(c.Request().Context(), in)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/datasets/"+d.Name)
	return c.JSON(http.StatusCreated, d)
}

// GetDataset returns one dataset.
func (a *API) GetDataset(c echo.Context) error {
	d, err := a.Lineage.GetDataset(c.Request().Context(), c.Param("dataset"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

// ListDatasetVersions lists a dataset's versions, newest first.
func (a *API) ListDatasetVersions(c echo.Context) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	vs, next, err := a.Lineage.ListDatasetVersions(c.Request().Context(), c.Param("dataset"), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(vs, next))
}

// uploadMetadata is what the metadata part of an upload may say: the
// type and reference are Slipway's.
type uploadMetadata struct {
	SHA256          string             `json:"sha256"`
	Size            *int64             `json:"size"`
	Schema          []lineage.Column   `json:"schema"`
	RowCount        *int64             `json:"row_count"`
	Statistics      lineage.Statistics `json:"statistics"`
	Split           lineage.Split      `json:"split"`
	Description     string             `json:"description"`
	Tags            map[string]string  `json:"tags"`
	ExternalVersion string             `json:"external_version"`
}

// CreateDatasetVersion registers a version: by reference as
// application/json, or uploaded as multipart/form-data (a metadata part,
// then one part named file that streams into the object store).
func (a *API) CreateDatasetVersion(c echo.Context) error {
	req := c.Request()
	ctx := req.Context()
	mt, params, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	var v lineage.DatasetVersion
	switch {
	case err == nil && mt == echo.MIMEApplicationJSON:
		// a streaming route: bound the JSON body here
		var in lineage.NewDatasetVersion
		if err := decodeJSON(c, a.MaxJSONBody, &in); err != nil {
			return err
		}
		if idem := idempotency.RequestFrom(ctx); idem != nil {
			idem.Fingerprint = jsonFingerprint(in)
			if idem.Verify {
				return idempotency.ErrVerified
			}
		}
		v, err = a.Lineage.CreateDatasetVersion(ctx, c.Param("dataset"), in)
	case err == nil && mt == "multipart/form-data" && params["boundary"] != "":
		v, err = a.uploadDatasetVersion(c, params["boundary"])
	default:
		return fmt.Errorf("the body must be application/json (a version by reference) or multipart/form-data (an upload): %w", errs.ErrUnsupportedMedia)
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/api/v1/datasets/%s/versions/%d", v.Dataset, v.Version))
	return c.JSON(http.StatusCreated, v)
}

// jsonFingerprint identifies a decoded JSON request for Idempotency-Key.
func jsonFingerprint(v any) string {
	b, _ := json.Marshal(v) // a value decoded from JSON encodes
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (a *API) uploadDatasetVersion(c echo.Context, boundary string) (lineage.DatasetVersion, error) {
	ctx := c.Request().Context()
	mr := multipart.NewReader(bufio.NewReaderSize(c.Request().Body, 256<<10), boundary)
	part, err := mr.NextPart()
	if err != nil {
		return lineage.DatasetVersion{}, multipartError(err)
	}
	if part.FormName() != "metadata" {
		return lineage.DatasetVersion{}, errs.Invalid("metadata", "must be the first part (a JSON object), before the file")
	}
	metaBytes, err := io.ReadAll(io.LimitReader(part, a.MaxJSONBody+1))
	if err != nil {
		return lineage.DatasetVersion{}, multipartError(err)
	}
	var meta uploadMetadata
	if err := decodeJSONReader(bytes.NewReader(metaBytes), a.MaxJSONBody, &meta, "metadata"); err != nil {
		return lineage.DatasetVersion{}, err
	}
	part, err = mr.NextPart()
	if errors.Is(err, io.EOF) {
		return lineage.DatasetVersion{}, errs.Invalid("file", "is required: a part named file with the dataset's bytes")
	}
	if err != nil {
		return lineage.DatasetVersion{}, multipartError(err)
	}
	if part.FormName() != "file" {
		return lineage.DatasetVersion{}, errs.Invalid(part.FormName(), "is not a part this endpoint takes (metadata first, then one part named file)")
	}
	name, err := partFileName(part)
	if err != nil {
		return lineage.DatasetVersion{}, err
	}
	fp := sha256.New()
	fp.Write(metaBytes)
	fmt.Fprintf(fp, "\x00%s", name)
	if idem := idempotency.RequestFrom(ctx); idem != nil && idem.Verify {
		// a retry: read the bytes to compare, store nothing
		if _, err := io.Copy(fp, part); err != nil {
			return lineage.DatasetVersion{}, multipartError(err)
		}
		idem.Fingerprint = hex.EncodeToString(fp.Sum(nil))
		return lineage.DatasetVersion{}, idempotency.ErrVerified
	}
	ct := part.Header.Get(echo.HeaderContentType)
	if _, _, err := mime.ParseMediaType(ct); err != nil {
		ct = ""
	}
	in := lineage.NewDatasetVersion{SHA256: meta.SHA256, Size: meta.Size, Schema: meta.Schema, RowCount: meta.RowCount,
		Statistics: meta.Statistics, Split: meta.Split, Description: meta.Description, Tags: meta.Tags, ExternalVersion: meta.ExternalVersion}
	onlyOne := func() error {
		next, err := mr.NextPart()
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return multipartError(err)
		}
		return errs.Invalid(next.FormName(), "an upload holds one file, in one part named file; nothing was recorded")
	}
	v, err := a.Lineage.UploadDatasetVersion(ctx, c.Param("dataset"), in, name, ct, io.TeeReader(part, fp), onlyOne)
	if err != nil {
		return v, err
	}
	if idem := idempotency.RequestFrom(ctx); idem != nil {
		idem.Fingerprint = hex.EncodeToString(fp.Sum(nil))
	}
	return v, nil
}

// GetDatasetVersion returns one version of a dataset.
func (a *API) GetDatasetVersion(c echo.Context) error {
	n, err := versionNumber(c)
	if err != nil {
		return err
	}
	v, err := a.Lineage.GetDatasetVersion(c.Request().Context(), c.Param("dataset"), n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// DownloadDatasetFile streams the file of an uploaded version (Range
// supported).
func (a *API) DownloadDatasetFile(c echo.Context) error {
	n, err := versionNumber(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	v, err := a.Lineage.GetDatasetVersion(ctx, c.Param("dataset"), n)
	if err != nil {
		return err
	}
	if v.Type != lineage.TypeUpload || v.Size == nil || v.SHA256 == nil {
		return fmt.Errorf("dataset %q version %d is registered by reference (%s): Slipway does not hold its bytes: %w", v.Dataset, v.Version, v.Type, errs.ErrNotFound)
	}
	return serveObject(c, object{size: *v.Size, sha256: *v.SHA256, contentType: v.ContentType, filename: path.Base(v.Reference.Filename)},
		func(rng *blob.Range) (io.ReadCloser, error) { return a.Lineage.OpenDatasetFile(ctx, v, rng) })
}

// ListQualityResults lists the data-quality results of a dataset version.
func (a *API) ListQualityResults(c echo.Context) error {
	n, err := versionNumber(c)
	if err != nil {
		return err
	}
	rs, err := a.Lineage.ListQualityResults(c.Request().Context(), c.Param("dataset"), n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(rs, ""))
}

// AddQualityResult attaches a data-quality result to a dataset version.
func (a *API) AddQualityResult(c echo.Context) error {
	n, err := versionNumber(c)
	if err != nil {
		return err
	}
	var in lineage.NewQualityResult
	if err := decodeJSON(c, a.MaxJSONBody, &in); err != nil {
		return err
	}
	r, err := a.Lineage.AddQualityResult(c.Request().Context(), c.Param("dataset"), n, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, r)
}

// GetRawQualityResult streams the raw document of a quality result.
func (a *API) GetRawQualityResult(c echo.Context) error {
	n, err := versionNumber(c)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return errs.Invalid("id", "must be a positive integer")
	}
	_, rc, err := a.Lineage.OpenRawQualityResult(c.Request().Context(), c.Param("dataset"), n, id)
	if err != nil {
		return err
	}
	defer rc.Close()
	return c.Stream(http.StatusOK, echo.MIMEApplicationJSON, rc)
}

// DatasetImpact lists every model version that depends on a dataset
// version.
func (a *API) DatasetImpact(c echo.Context) error {
	n, err := versionNumber(c)
	if err != nil {
		return err
	}
	im, err := a.Lineage.Impact(c.Request().Context(), c.Param("dataset"), n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, im)
}

// ListRuns lists runs, newest first; filters: orchestrator, name, status,
// parent.
func (a *API) ListRuns(c echo.Context) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	f := lineage.RunFilter{Orchestrator: c.QueryParam("orchestrator"), Name: c.QueryParam("name"), Status: c.QueryParam("status")}
	if v := c.QueryParam("parent"); v != "" {
		if f.Parent, err = strconv.ParseInt(v, 10, 64); err != nil || f.Parent <= 0 {
			return errs.Invalid("parent", "must be a run id")
		}
	}
	runs, next, err := a.Lineage.ListRuns(c.Request().Context(), f, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(runs, next))
}

// ReportRun creates a run (201) or updates it (200), keyed by
// orchestrator and external id.
func (a *API) ReportRun(c echo.Context) error {
	var in lineage.NewRun
	if err := decodeJSON(c, a.MaxJSONBody, &in); err != nil {
		return err
	}
	r, created, err := a.Lineage.ReportRun(c.Request().Context(), in)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/api/v1/runs/%d", r.ID))
	if created {
		return c.JSON(http.StatusCreated, r)
	}
	return c.JSON(http.StatusOK, r)
}

// GetRun returns a run with its inputs and outputs.
func (a *API) GetRun(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return errs.Invalid("id", "must be a run id (a positive integer)")
	}
	r, err := a.Lineage.GetRun(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// LineageGraph answers ?node=&direction=&depth=&max_nodes= with nodes and edges.
func (a *API) LineageGraph(c echo.Context) error {
	q, err := lineage.ParseGraphQuery(c.QueryParam("node"), c.QueryParam("direction"), c.QueryParam("depth"), c.QueryParam("max_nodes"))
	if err != nil {
		return err
	}
	g, err := a.Lineage.Lineage(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, g)
}

// Provenance returns everything upstream of a model version.
func (a *API) Provenance(c echo.Context) error {
	n, err := versionNumber(c)
	if err != nil {
		return err
	}
	if _, err := a.Registry.GetModel(c.Request().Context(), c.Param("model")); err != nil {
		return err
	}
	p, err := a.Lineage.Provenance(c.Request().Context(), c.Param("model"), n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// IngestOpenLineage takes one OpenLineage RunEvent, as the OpenLineage
// HTTP transport of dbt, Airflow, Spark and others sends it: 201 when it
// made a new run, 200 otherwise (a repeated event changes nothing).
func (a *API) IngestOpenLineage(c echo.Context) error {
	req := c.Request()
	mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err != nil || mt != echo.MIMEApplicationJSON {
		return fmt.Errorf("the body must be application/json: an OpenLineage RunEvent: %w", errs.ErrUnsupportedMedia)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, a.MaxJSONBody))
	if err != nil {
		return multipartError(err)
	}
	out, err := a.Lineage.IngestOpenLineage(req.Context(), body)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/api/v1/runs/%d", out.RunID))
	if out.Created {
		return c.JSON(http.StatusCreated, out)
	}
	return c.JSON(http.StatusOK, out)
}
