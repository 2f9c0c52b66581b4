package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/lineage"
	"github.com/slipway-ml/slipway/internal/pagination"
)

// Bounds of the compact lineage panel of a page.
const (
	panelDepth    = 4
	panelMaxNodes = 60
)

func pathVersion(c echo.Context) (int, error) {
	n, err := strconv.Atoi(c.Param("version"))
	if err != nil || n < 1 {
		return 0, errs.Invalid("version", "must be a version number")
	}
	return n, nil
}

// panel lays out the neighbourhood of a node for a page's lineage panel.
func (ui *UI) panel(c echo.Context, root lineage.NodeRef, direction string) (GraphView, string, error) {
	g, err := ui.Lineage.Lineage(c.Request().Context(), lineage.GraphQuery{Root: root, Direction: direction, Depth: panelDepth, MaxNodes: panelMaxNodes})
	if err != nil {
		return GraphView{}, "", err
	}
	return newGraphView(g), explorerURL(root.String(), direction, panelDepth), nil
}

// Datasets lists datasets.
func (ui *UI) Datasets(c echo.Context) error {
	p, err := pagination.Parse(c.QueryParam("cursor"), "")
	if err != nil {
		return err
	}
	d := DatasetsData{Query: c.QueryParam("q"), Cursor: p.Cursor}
	d.Datasets, d.NextCursor, err = ui.Lineage.ListDatasets(c.Request().Context(), lineage.DatasetFilter{Prefix: d.Query}, p)
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, DatasetsPage(ui.Page(c, "Datasets", "datasets"), d))
}

// Dataset shows a dataset and its versions.
func (ui *UI) Dataset(c echo.Context) error {
	ctx := c.Request().Context()
	ds, err := ui.Lineage.GetDataset(ctx, c.Param("dataset"))
	if err != nil {
		return err
	}
	p, err := pagination.Parse(c.QueryParam("cursor"), "")
	if err != nil {
		return err
	}
	d := DatasetData{Dataset: ds, Cursor: p.Cursor, Now: time.Now()}
	d.Versions, d.NextCursor, err = ui.Lineage.ListDatasetVersions(ctx, ds.Name, p)
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, DatasetPage(ui.Page(c, ds.Name, "datasets"), d))
}

// DatasetVersion shows one dataset version: reference, schema, statistics,
// quality results, impact and lineage.
func (ui *UI) DatasetVersion(c echo.Context) error {
	n, err := pathVersion(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	d := DatasetVersionData{Now: time.Now()}
	if d.Version, err = ui.Lineage.GetDatasetVersion(ctx, c.Param("dataset"), n); err != nil {
		return err
	}
	if d.Quality, err = ui.Lineage.ListQualityResults(ctx, d.Version.Dataset, n); err != nil {
		return err
	}
	if d.Impact, err = ui.Lineage.Impact(ctx, d.Version.Dataset, n); err != nil {
		return err
	}
	if d.Lineage, d.Explore, err = ui.panel(c, d.Version.Ref(), lineage.Both); err != nil {
		return err
	}
	return Render(c, http.StatusOK, DatasetVersionPage(ui.Page(c, fmt.Sprintf("%s v%d", d.Version.Dataset, n), "datasets"), d))
}

// DatasetDiff compares two versions of a dataset: ?from=&to=.
func (ui *UI) DatasetDiff(c echo.Context) error {
	ctx := c.Request().Context()
	name := c.Param("dataset")
	var vs [2]lineage.DatasetVersion
	for i, q := range []string{"from", "to"} {
		n, err := strconv.Atoi(c.QueryParam(q))
		if err != nil || n < 1 {
			return errs.Invalid(q, "must be a version number")
		}
		if vs[i], err = ui.Lineage.GetDatasetVersion(ctx, name, n); err != nil {
			return err
		}
	}
	d := DiffData{Dataset: name, Diff: lineage.Diff(vs[0], vs[1])}
	return Render(c, http.StatusOK, DatasetDiffPage(ui.Page(c, fmt.Sprintf("%s v%d → v%d", name, vs[0].Version, vs[1].Version), "datasets"), d))
}

// Runs lists runs.
func (ui *UI) Runs(c echo.Context) error {
	p, err := pagination.Parse(c.QueryParam("cursor"), "")
	if err != nil {
		return err
	}
	d := RunsData{Orchestrator: c.QueryParam("orchestrator"), Name: c.QueryParam("name"), Status: c.QueryParam("status"), Cursor: p.Cursor, Now: time.Now()}
	d.Runs, d.NextCursor, err = ui.Lineage.ListRuns(c.Request().Context(), lineage.RunFilter{Orchestrator: d.Orchestrator, Name: d.Name, Status: d.Status}, p)
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, RunsPage(ui.Page(c, "Runs", "runs"), d))
}

// Run shows one run with its inputs, outputs, children and lineage.
func (ui *UI) Run(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		return errs.Invalid("id", "must be a run id")
	}
	ctx := c.Request().Context()
	d := RunData{ChildrenCursor: c.QueryParam("children"), Now: time.Now()}
	if d.Run, err = ui.Lineage.GetRun(ctx, id); err != nil {
		return err
	}
	if d.Children, d.NextChildren, err = ui.Lineage.ListRuns(ctx, lineage.RunFilter{Parent: id}, pagination.Page{Cursor: d.ChildrenCursor}); err != nil {
		return err
	}
	if d.Lineage, d.Explore, err = ui.panel(c, d.Run.Ref(), lineage.Both); err != nil {
		return err
	}
	return Render(c, http.StatusOK, RunPage(ui.Page(c, d.Run.Label(), "runs"), d))
}

// LineageExplorer is the lineage explorer: ?node=&direction=&depth=. A node that
// does not parse or does not exist is said on the page, with the form to
// correct it.
func (ui *UI) LineageExplorer(c echo.Context) error {
	d := ExplorerData{Node: c.QueryParam("node"), Direction: c.QueryParam("direction"), Depth: lineage.DefaultDepth}
	if d.Direction == "" {
		d.Direction = lineage.Upstream
	}
	if n, err := strconv.Atoi(c.QueryParam("depth")); err == nil {
		d.Depth = n
	}
	status := http.StatusOK
	if d.Node != "" {
		q, err := lineage.ParseGraphQuery(d.Node, d.Direction, c.QueryParam("depth"), "")
		var g lineage.Graph
		if err == nil {
			g, err = ui.Lineage.Lineage(c.Request().Context(), q)
		}
		switch {
		case err == nil:
			v := newGraphView(g)
			d.View = &v
		case errors.Is(err, errs.ErrInvalid), errors.Is(err, errs.ErrNotFound):
			d.Error = err.Error()
		default:
			return err
		}
	}
	return Render(c, status, LineagePage(ui.Page(c, "Lineage", "lineage"), d))
}
