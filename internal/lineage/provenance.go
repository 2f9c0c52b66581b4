package lineage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/errs"
)

// ModelVersionInfo is what lineage shows of a model version.
type ModelVersionInfo struct {
	Model     string          `json:"model"`
	Version   int             `json:"version"`
	Status    string          `json:"status"`
	Kind      string          `json:"kind"`
	Source    json.RawMessage `json:"source"`
	Links     []Link          `json:"links"`
	CreatedAt time.Time       `json:"created_at"`
	Depth     int             `json:"depth"`
	source    struct {
		GitRepo   string `json:"git_repo"`
		GitCommit string `json:"git_commit"`
		GitDirty  *bool  `json:"git_dirty"`
		Image     string `json:"image"`
	}
}

// ProvenanceDataset is a dataset version upstream of a model version, with
// its data-quality results.
type ProvenanceDataset struct {
	DatasetVersion
	Depth          int             `json:"depth"`
	QualityResults []QualityResult `json:"quality_results"`
}

// ProvenanceRun is a run upstream of a model version.
type ProvenanceRun struct {
	Run
	Depth int `json:"depth"`
}

// Commit is a git commit that produced something upstream.
type Commit struct {
	Repo   string   `json:"repo"`
	Commit string   `json:"commit"`
	Dirty  *bool    `json:"dirty"`
	Used   []string `json:"used_by"` // node references
}

// Image is a container image that ran something upstream.
type Image struct {
	Image string   `json:"image"`
	Used  []string `json:"used_by"`
}

// TrackerLink is a link to a tracker or orchestrator page upstream.
type TrackerLink struct {
	Link
	From string `json:"from"`
}

// Provenance is everything upstream of one model version, in one document.
type Provenance struct {
	ModelVersion    ModelVersionInfo    `json:"model_version"`
	Runs            []ProvenanceRun     `json:"runs"`
	DatasetVersions []ProvenanceDataset `json:"dataset_versions"`
	// ModelVersions are other model versions upstream (a model whose
	// predictions fed this one, a teacher…).
	ModelVersions []ModelVersionInfo `json:"model_versions"`
	Commits       []Commit           `json:"commits"`
	Images        []Image            `json:"images"`
	Links         []TrackerLink      `json:"links"`
	Edges         []Edge             `json:"edges"`
	// QualityFailed says a dataset version upstream has a failing latest
	// data-quality result.
	QualityFailed bool `json:"quality_failed"`
	Truncated     bool `json:"truncated"`
}

// Provenance gathers everything upstream of a model version.
func (s *Service) Provenance(ctx context.Context, model string, number int) (Provenance, error) {
	ref := NodeRef{Kind: KindModelVersion, Name: model, Version: number}
	root, err := resolve(ctx, s.db, ref)
	if err != nil {
		return Provenance{}, err
	}
	g, err := s.graph(ctx, root, GraphQuery{Root: ref, Direction: Upstream, Depth: MaxDepth, MaxNodes: MaxNodes})
	if err != nil {
		return Provenance{}, err
	}
	p := Provenance{Runs: []ProvenanceRun{}, DatasetVersions: []ProvenanceDataset{}, ModelVersions: []ModelVersionInfo{},
		Commits: []Commit{}, Images: []Image{}, Links: []TrackerLink{}, Edges: g.Edges, Truncated: g.Truncated}
	ids := map[string][]int64{}
	depth := map[node]int{}
	for _, n := range g.Nodes {
		ids[n.Kind] = append(ids[n.Kind], n.id.ID)
		depth[n.id] = n.Depth
	}
	mvs, err := modelVersionInfos(ctx, s.db, ids[KindModelVersion])
	if err != nil {
		return Provenance{}, err
	}
	commits := map[[2]string]*Commit{}
	images := map[string]*Image{}
	use := func(from, repo, commit string, dirty *bool, image string) {
		if commit != "" || repo != "" {
			k := [2]string{repo, commit}
			if commits[k] == nil {
				commits[k] = &Commit{Repo: repo, Commit: commit, Dirty: dirty}
			}
			commits[k].Used = append(commits[k].Used, from)
		}
		if image != "" {
			if images[image] == nil {
				images[image] = &Image{Image: image}
			}
			images[image].Used = append(images[image].Used, from)
		}
	}
	for id, mv := range mvs {
		mv.Depth = depth[node{KindModelVersion, id}]
		from := NodeRef{Kind: KindModelVersion, Name: mv.Model, Version: mv.Version}.String()
		use(from, mv.source.GitRepo, mv.source.GitCommit, mv.source.GitDirty, mv.source.Image)
		for _, l := range mv.Links {
			p.Links = append(p.Links, TrackerLink{Link: l, From: from})
		}
		if id == root.ID {
			p.ModelVersion = mv
		} else {
			p.ModelVersions = append(p.ModelVersions, mv)
		}
	}
	if len(ids[KindRun]) > 0 {
		rows, err := s.db.Query(ctx, `SELECT `+runColumns+runFrom+`WHERE r.id = ANY($1)`, ids[KindRun])
		if err != nil {
			return Provenance{}, fmt.Errorf("provenance runs: %w", err)
		}
		runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Run, error) { return scanRun(r) })
		if err != nil {
			return Provenance{}, fmt.Errorf("provenance runs: %w", err)
		}
		for _, r := range runs {
			from := r.Ref().String()
			use(from, r.Git.Repo, r.Git.Commit, r.Git.Dirty, r.Image)
			for _, l := range r.Links {
				p.Links = append(p.Links, TrackerLink{Link: l, From: from})
			}
			if r.Inputs, r.Outputs, err = runIO(ctx, s.db, r.ID); err != nil {
				return Provenance{}, err
			}
			p.Runs = append(p.Runs, ProvenanceRun{Run: r, Depth: depth[node{KindRun, r.ID}]})
		}
	}
	if len(ids[KindDatasetVersion]) > 0 {
		rows, err := s.db.Query(ctx, `SELECT `+datasetVersionColumns+datasetVersionFrom+`WHERE dv.id = ANY($1)`, ids[KindDatasetVersion])
		if err != nil {
			return Provenance{}, fmt.Errorf("provenance datasets: %w", err)
		}
		dvs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DatasetVersion, error) { return scanDatasetVersion(r) })
		if err != nil {
			return Provenance{}, fmt.Errorf("provenance datasets: %w", err)
		}
		results, err := listQualityResults(ctx, s.db, ids[KindDatasetVersion])
		if err != nil {
			return Provenance{}, err
		}
		for _, v := range dvs {
			pd := ProvenanceDataset{DatasetVersion: v, Depth: depth[node{KindDatasetVersion, v.id}], QualityResults: []QualityResult{}}
			for _, r := range results {
				if r.Dataset == v.Dataset && r.Version == v.Version {
					pd.QualityResults = append(pd.QualityResults, r)
				}
			}
			p.QualityFailed = p.QualityFailed || v.Quality.Status == QualityFailed
			p.DatasetVersions = append(p.DatasetVersions, pd)
		}
	}
	for _, c := range commits {
		p.Commits = append(p.Commits, *c)
	}
	for _, i := range images {
		p.Images = append(p.Images, *i)
	}
	sort.Slice(p.Runs, func(i, j int) bool { return less(p.Runs[i].Depth, p.Runs[j].Depth, p.Runs[i].ID < p.Runs[j].ID) })
	sort.Slice(p.DatasetVersions, func(i, j int) bool {
		a, b := p.DatasetVersions[i], p.DatasetVersions[j]
		return less(a.Depth, b.Depth, a.Ref().String() < b.Ref().String())
	})
	sort.Slice(p.ModelVersions, func(i, j int) bool {
		a, b := p.ModelVersions[i], p.ModelVersions[j]
		return less(a.Depth, b.Depth, a.Model < b.Model || a.Model == b.Model && a.Version < b.Version)
	})
	sort.Slice(p.Commits, func(i, j int) bool {
		return p.Commits[i].Repo+p.Commits[i].Commit < p.Commits[j].Repo+p.Commits[j].Commit
	})
	sort.Slice(p.Images, func(i, j int) bool { return p.Images[i].Image < p.Images[j].Image })
	return p, nil
}

func less(da, db int, tie bool) bool {
	if da != db {
		return da < db
	}
	return tie
}

func modelVersionInfos(ctx context.Context, q querier, ids []int64) (map[int64]ModelVersionInfo, error) {
	out := map[int64]ModelVersionInfo{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `
		SELECT v.id, m.name, v.version, v.status, v.kind, v.source, v.links, v.created_at
		FROM model_versions v JOIN models m ON m.id = v.model_id WHERE v.id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("model versions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var mv ModelVersionInfo
		if err := rows.Scan(&id, &mv.Model, &mv.Version, &mv.Status, &mv.Kind, &mv.Source, &mv.Links, &mv.CreatedAt); err != nil {
			return nil, fmt.Errorf("model versions: %w", err)
		}
		if err := json.Unmarshal(mv.Source, &mv.source); err != nil {
			return nil, fmt.Errorf("model version source: %w", err)
		}
		if mv.Links == nil {
			mv.Links = []Link{}
		}
		out[id] = mv
	}
	return out, rows.Err()
}

// ImpactedModelVersion is a model version downstream of a dataset version.
type ImpactedModelVersion struct {
	Model   string `json:"model"`
	Version int    `json:"version"`
	Status  string `json:"status"`
	Kind    string `json:"kind"`
	// Depth is the number of edges from the dataset version.
	Depth int `json:"depth"`
}

// Impact is every model version that depends on a dataset version.
type Impact struct {
	Dataset       string                 `json:"dataset"`
	Version       int                    `json:"version"`
	ModelVersions []ImpactedModelVersion `json:"model_versions"`
	// Runs and DatasetVersions count the runs and derived dataset
	// versions between the two.
	Runs            int  `json:"runs"`
	DatasetVersions int  `json:"dataset_versions"`
	Truncated       bool `json:"truncated"`
}

// Impact walks downstream from a dataset version to every model version
// that depends on it, transitively.
func (s *Service) Impact(ctx context.Context, dataset string, number int) (Impact, error) {
	if _, err := s.GetDataset(ctx, dataset); err != nil {
		return Impact{}, err
	}
	ref := NodeRef{Kind: KindDatasetVersion, Name: dataset, Version: number}
	root, err := resolve(ctx, s.db, ref)
	if err != nil {
		return Impact{}, err
	}
	found, truncated, err := walk(ctx, s.db, root, Downstream, MaxDepth, MaxNodes)
	if err != nil {
		return Impact{}, err
	}
	im := Impact{Dataset: dataset, Version: number, ModelVersions: []ImpactedModelVersion{}, Truncated: truncated}
	var mvIDs []int64
	for n := range found {
		switch {
		case n == root:
		case n.Kind == KindRun:
			im.Runs++
		case n.Kind == KindDatasetVersion:
			im.DatasetVersions++
		case n.Kind == KindModelVersion:
			mvIDs = append(mvIDs, n.ID)
		}
	}
	mvs, err := modelVersionInfos(ctx, s.db, mvIDs)
	if err != nil {
		return Impact{}, err
	}
	for id, mv := range mvs {
		im.ModelVersions = append(im.ModelVersions, ImpactedModelVersion{Model: mv.Model, Version: mv.Version, Status: mv.Status,
			Kind: mv.Kind, Depth: found[node{KindModelVersion, id}]})
	}
	sort.Slice(im.ModelVersions, func(i, j int) bool {
		a, b := im.ModelVersions[i], im.ModelVersions[j]
		return a.Model < b.Model || a.Model == b.Model && a.Version > b.Version
	})
	return im, nil
}

// ModelLineage is what a model version registration may say of its
// lineage, for pipelines that do not report runs: the run that trained it
// and the datasets it was trained on.
type ModelLineage struct {
	// Run names the run that produced the version: an existing run by id,
	// or by orchestrator and external id (created, completed, if unknown).
	Run *RunKey `json:"run,omitempty"`
	// TrainingData are dataset versions the version was trained on.
	TrainingData []IORef `json:"training_data,omitempty"`
}

// Validate checks the references.
func (in ModelLineage) Validate() error {
	var fe errs.FieldErrors
	if in.Run != nil {
		in.Run.validate("run", &fe)
	}
	if len(in.TrainingData) > maxRunIO {
		fe.Add("training_data", "must hold at most %d dataset versions", maxRunIO)
	}
	for i, r := range in.TrainingData {
		field := fmt.Sprintf("training_data[%d]", i)
		if r.Model != "" {
			fe.Add(field, "must name a dataset version: {\"dataset\": \"train\", \"version\": 3}")
			continue
		}
		r.validate(field, &fe)
	}
	return fe.Err()
}

// VersionSource is what a model version says of the code that produced it:
// it describes a run that Slipway creates for it.
type VersionSource struct {
	GitRepo   string
	GitCommit string
	GitDirty  *bool
	Image     string
}

// LinkModelVersion records, in the registration's transaction, the lineage
// a model version was registered with: the run that produced it (created
// when named by orchestrator and external id and not known yet) and its
// training data, as inputs of that run or, without a run, straight into
// the version.
func LinkModelVersion(ctx context.Context, tx pgx.Tx, versionID int64, src VersionSource, in ModelLineage) error {
	if in.Run == nil && len(in.TrainingData) == 0 {
		return nil
	}
	inputs, err := resolveAll(ctx, tx, "training_data", in.TrainingData)
	if err != nil {
		return err
	}
	mv := node{KindModelVersion, versionID}
	var edges []edge
	if in.Run != nil {
		run, err := findRun(ctx, tx, *in.Run)
		switch {
		case errors.Is(err, errs.ErrNotFound) && in.Run.ID == 0:
			run, _, _, err = upsertRun(ctx, tx, NewRun{Orchestrator: in.Run.Orchestrator, ExternalID: in.Run.ExternalID,
				Status: RunCompleted, Git: Git{Repo: src.GitRepo, Commit: src.GitCommit, Dirty: src.GitDirty}, Image: src.Image}, 0)
			if err != nil {
				return err
			}
			if err := audit.Record(ctx, tx, audit.Entry{Action: "run.create", TargetType: "run", TargetID: strconv.FormatInt(run.ID, 10), After: run.auditView()}); err != nil {
				return err
			}
		case errors.Is(err, errs.ErrNotFound):
			return errs.Invalid("run", "%s", err.Error())
		case err != nil:
			return err
		}
		me := node{KindRun, run.ID}
		edges = append(edges, edge{me, mv})
		for _, n := range inputs {
			edges = append(edges, edge{n, me})
		}
	} else {
		for _, n := range inputs {
			edges = append(edges, edge{n, mv})
		}
	}
	_, err = insertEdges(ctx, tx, edges)
	return err
}
