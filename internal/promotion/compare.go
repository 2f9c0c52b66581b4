package promotion

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

// Comparison is a request seen as the reviewer sees it: the candidate and
// the champion side by side, metric by metric and slice by slice.
type Comparison struct {
	Promotion Promotion
	// Suite is the suite compared: the first one the policy names, else
	// the suite of the candidate's newest report.
	Suite     string
	Candidate Side
	Champion  *Side // nil when no version holds the stage
	Metrics   []MetricRow
	// Slices groups the keys of a test that has several (per-country,
	// per-bucket values): what an aggregate can hide.
	Slices []SliceGroup
	Tests  []TestRow
	// TrainingData of the candidate, with failing data-quality suites.
	TrainingData []DatasetRef
	Policy       StoredPolicy
}

// Side is one version of a comparison and the report it is judged on.
type Side struct {
	Version   int
	Author    string
	CreatedAt time.Time
	Report    *ReportSummary // nil when it has no report of the suite
}

// ReportSummary names a report.
type ReportSummary struct {
	ID        int64
	Suite     string
	Dataset   *DatasetRef
	CreatedAt time.Time
}

// MetricRow is one metric of the compared reports.
type MetricRow struct {
	Key, Test, Path     string
	Candidate, Champion *float64
	// Direction is higher_is_better or lower_is_better when a champion
	// rule of the policy says so (or, for a slice, the rule on its test),
	// "" when unknown.
	Direction string
	// Verdict is better, worse or same against the champion, "" when
	// either side or the direction is missing.
	Verdict string
}

// Delta is candidate − champion, when both are finite.
func (m MetricRow) Delta() (float64, bool) {
	if m.Candidate == nil || m.Champion == nil || !finite(*m.Candidate) || !finite(*m.Champion) {
		return 0, false
	}
	return *m.Candidate - *m.Champion, true
}

// SliceGroup is the keys of one test that holds several values.
type SliceGroup struct {
	Test string
	Rows []MetricRow
	// Regressed counts the slices worse than the champion's.
	Regressed int
}

// TestRow is one behavioural test on both sides.
type TestRow struct {
	Name                string
	Candidate, Champion *bool
	Message             string
}

type metricCell struct {
	test, path string
	value      float64
}

// Compare builds the reviewer's view of a request. The champion is the
// version that holds the stage now for an open request, and the one the
// last evaluation compared with for a decided one.
func (s *Service) Compare(ctx context.Context, id int64) (Comparison, error) {
	p, err := s.GetPromotion(ctx, id)
	if err != nil {
		return Comparison{}, err
	}
	out := Comparison{Promotion: p}
	st, err := getStage(ctx, s.db, p.Model, p.Stage, false)
	if err != nil {
		return Comparison{}, err
	}
	if out.Policy, err = policyOf(ctx, s.db, st, p.PolicyRevision); err != nil {
		return Comparison{}, err
	}
	cand, err := versionByID(ctx, s.db, p.versionID)
	if err != nil {
		return Comparison{}, err
	}
	var champ *versionRow
	switch {
	case p.Status == StatusPendingApproval && st.versionID != nil && *st.versionID != p.versionID:
		v, err := versionByID(ctx, s.db, *st.versionID)
		if err != nil {
			return Comparison{}, err
		}
		champ = &v
	case p.Status != StatusPendingApproval && p.Champion != nil && *p.Champion != p.Version:
		v, err := findVersion(ctx, s.db, p.Model, *p.Champion)
		if err != nil {
			return Comparison{}, err
		}
		champ = &v
	}
	ce, err := loadEvidence(ctx, s.db, cand)
	if err != nil {
		return Comparison{}, err
	}
	out.TrainingData = ce.TrainingInputs
	for _, r := range out.Policy.Rules {
		if r.Suite != "" {
			out.Suite = r.Suite
			break
		}
	}
	if out.Suite == "" && len(ce.Reports) > 0 {
		out.Suite = ce.Reports[0].Suite
	}
	candSide, candCells, candTests, err := s.side(ctx, cand, out.Suite)
	if err != nil {
		return Comparison{}, err
	}
	out.Candidate = candSide
	var champCells map[string]metricCell
	var champTests map[string]bool
	if champ != nil {
		side, cells, tests, err := s.side(ctx, *champ, out.Suite)
		if err != nil {
			return Comparison{}, err
		}
		out.Champion, champCells, champTests = &side, cells, tests
	}
	out.Metrics, out.Slices = compareMetrics(out.Policy.Policy, candCells, champCells)
	out.Tests = compareTests(candTests, champTests)
	return out, nil
}

// side reads a version's newest report of suite: its metrics and tests.
func (s *Service) side(ctx context.Context, v versionRow, suite string) (Side, map[string]metricCell, map[string]bool, error) {
	out := Side{Version: v.number, Author: v.author}
	if err := s.db.QueryRow(ctx, `SELECT created_at FROM model_versions WHERE id = $1`, v.id).Scan(&out.CreatedAt); err != nil {
		return out, nil, nil, err
	}
	var rep ReportSummary
	var dvID *int64
	var dname *string
	var dver *int
	err := s.db.QueryRow(ctx, `
		SELECT r.id, r.suite, r.created_at, dv.id, d.name, dv.version FROM evaluation_reports r
		LEFT JOIN dataset_versions dv ON dv.id = r.dataset_version_id LEFT JOIN datasets d ON d.id = dv.dataset_id
		WHERE r.model_version_id = $1 AND ($2 = '' OR r.suite = $2) ORDER BY r.id DESC LIMIT 1`, v.id, suite).
		Scan(&rep.ID, &rep.Suite, &rep.CreatedAt, &dvID, &dname, &dver)
	if errors.Is(err, pgx.ErrNoRows) {
		return out, map[string]metricCell{}, map[string]bool{}, nil
	}
	if err != nil {
		return out, nil, nil, fmt.Errorf("read report: %w", err)
	}
	if dvID != nil {
		rep.Dataset = &DatasetRef{ID: *dvID, Name: *dname, Version: *dver}
	}
	out.Report = &rep
	cells := map[string]metricCell{}
	rows, err := s.db.Query(ctx, `SELECT key, test, path, value FROM evaluation_metrics WHERE report_id = $1 ORDER BY ord`, rep.ID)
	if err != nil {
		return out, nil, nil, err
	}
	var key string
	var c metricCell
	if _, err := pgx.ForEachRow(rows, []any{&key, &c.test, &c.path, &c.value}, func() error { cells[key] = c; return nil }); err != nil {
		return out, nil, nil, err
	}
	tests := map[string]bool{}
	rows, err = s.db.Query(ctx, `SELECT name, passed FROM evaluation_tests WHERE report_id = $1 ORDER BY ord`, rep.ID)
	if err != nil {
		return out, nil, nil, err
	}
	var name string
	var passed bool
	if _, err := pgx.ForEachRow(rows, []any{&name, &passed}, func() error { tests[name] = passed; return nil }); err != nil {
		return out, nil, nil, err
	}
	return out, cells, tests, nil
}

// direction is the way a metric is better: the policy's champion rule on
// that key, else its directions entry for the key, else for the key's test;
// "" when nothing says.
func direction(p Policy, key, test string) string {
	for _, r := range p.Rules {
		if r.Kind == KindChampion && r.Metric == key {
			return r.Direction
		}
	}
	if d := p.Directions[key]; d != "" {
		return d
	}
	return p.Directions[test]
}

func compareMetrics(p Policy, cand, champ map[string]metricCell) ([]MetricRow, []SliceGroup) {
	all := map[string]metricCell{}
	for k, c := range champ {
		all[k] = c
	}
	for k, c := range cand {
		all[k] = c
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var rows []MetricRow
	groups := map[string]*SliceGroup{}
	var order []string
	for _, k := range keys {
		c := all[k]
		row := MetricRow{Key: k, Test: c.test, Path: c.path, Direction: direction(p, k, c.test)}
		if row.Direction == "" && c.path != "" {
			// a slice nothing speaks of: per-slice rates (hit rates,
			// accuracies) are usually better higher; the policy's
			// directions say otherwise for miss rates and errors
			row.Direction = "higher_is_better"
		}
		if v, ok := cand[k]; ok {
			row.Candidate = ptr(v.value)
		}
		if v, ok := champ[k]; ok {
			row.Champion = ptr(v.value)
		}
		row.Verdict = verdict(row)
		rows = append(rows, row)
		if c.path != "" {
			g := groups[c.test]
			if g == nil {
				g = &SliceGroup{Test: c.test}
				groups[c.test] = g
				order = append(order, c.test)
			}
			g.Rows = append(g.Rows, row)
			if row.Verdict == "worse" {
				g.Regressed++
			}
		}
	}
	var slices []SliceGroup
	for _, t := range order {
		if g := groups[t]; len(g.Rows) > 1 {
			slices = append(slices, *g)
		}
	}
	return rows, slices
}

func ptr(f float64) *float64 { return &f }

func verdict(m MetricRow) string {
	d, ok := m.Delta()
	switch {
	case !ok && m.Candidate != nil && !finite(*m.Candidate) && m.Champion != nil:
		return "worse" // a NaN replacing a value
	case !ok || m.Direction == "":
		return ""
	case math.Abs(d) <= 1e-12*math.Max(math.Abs(*m.Candidate), math.Abs(*m.Champion)):
		return "same"
	case (d > 0) == (m.Direction == "higher_is_better"):
		return "better"
	}
	return "worse"
}

func compareTests(cand, champ map[string]bool) []TestRow {
	names := map[string]bool{}
	for n := range cand {
		names[n] = true
	}
	for n := range champ {
		names[n] = true
	}
	out := make([]TestRow, 0, len(names))
	for n := range names {
		r := TestRow{Name: n}
		if v, ok := cand[n]; ok {
			r.Candidate = &v
		}
		if v, ok := champ[n]; ok {
			r.Champion = &v
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// TrendPoint is a metric's value in one version: from the newest report
// of a suite that has it.
type TrendPoint struct {
	Version int
	Value   float64
}

// MetricTrend returns a metric's values in the last n versions that have
// it, oldest version first.
func (s *Service) MetricTrend(ctx context.Context, model, suite, key string, n int) ([]TrendPoint, error) {
	mid, err := modelID(ctx, s.db, model)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `
		SELECT version, value FROM (
			SELECT DISTINCT ON (v.version) v.version, m.value
			FROM evaluation_reports r JOIN model_versions v ON v.id = r.model_version_id
			JOIN evaluation_metrics m ON m.report_id = r.id AND m.key = $3
			WHERE r.model_id = $1 AND ($2 = '' OR r.suite = $2)
			ORDER BY v.version DESC, r.id DESC
			LIMIT $4) t
		ORDER BY version`, mid, suite, key, n)
	if err != nil {
		return nil, fmt.Errorf("metric trend: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[TrendPoint])
}
