package promotion

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-ml/slipway/internal/evalreport"
)

// Decisions of a promotion request.
const (
	DecisionPromoted        = "promoted"
	DecisionPendingApproval = "pending_approval"
	DecisionRejected        = "rejected"
)

// Evidence is what is known of one model version when a policy is
// evaluated: its reports, its training data and its stage history. It is
// loaded from the database (evidence.go); the engine only reads it.
type Evidence struct {
	Version int
	Tags    map[string]string
	// Reports, newest first.
	Reports []Report
	// TrainingInputs are the dataset versions the version was trained on:
	// inputs of the run that produced it, and datasets named directly.
	TrainingInputs []DatasetRef
	// Holds are the stretches of time the version held each stage; an
	// open stretch ends at the evaluation's time.
	Holds map[string][]Hold
}

// Report is one evaluation report's normalised values.
type Report struct {
	ID        int64
	Suite     string
	Dataset   *DatasetRef // the evaluation data, when recorded
	CreatedAt time.Time
	Metrics   map[string]float64
	Tests     []Test
}

// Test is a behavioural test's outcome.
type Test struct {
	Name   string
	Passed bool
}

// DatasetRef names a dataset version.
type DatasetRef struct {
	ID      int64
	Name    string
	Version int
	// FailedQuality lists the suites whose latest data-quality result on
	// this version failed.
	FailedQuality []string
}

func (d DatasetRef) String() string { return fmt.Sprintf("%s/%d", d.Name, d.Version) }

// Hold is a stretch of time a version held a stage; To is nil while it
// holds it still.
type Hold struct {
	From time.Time
	To   *time.Time
}

// Input is what a policy is evaluated against.
type Input struct {
	Candidate Evidence
	// Champion is the version that holds the stage now; nil when none does.
	Champion *Evidence
	// Approvals counts the distinct approving reviewers, the requester and
	// the version's author excluded.
	Approvals int
	Now       time.Time
}

// Evaluation is a policy's verdict on an Input.
type Evaluation struct {
	Decision string       `json:"decision"`
	Rules    []RuleResult `json:"rules"`
}

// RuleResult is the outcome of one rule: what was observed, against what,
// and why it passed or failed.
type RuleResult struct {
	Rule       string     `json:"rule"` // the rule's kind
	Name       string     `json:"name"`
	Suite      string     `json:"suite,omitempty"`
	Metric     string     `json:"metric,omitempty"`
	ReportID   int64      `json:"report_id,omitempty"`
	Observed   *Number    `json:"observed,omitempty"`
	Threshold  *Number    `json:"threshold,omitempty"`
	ComparedTo *Compared  `json:"compared_to,omitempty"`
	Expression string     `json:"expression,omitempty"`
	Passed     bool       `json:"passed"`
	Pending    bool       `json:"pending,omitempty"` // approvals still awaited: not a failure
	Skipped    bool       `json:"skipped,omitempty"` // failed, skipped by an admin's override
	Message    string     `json:"message"`
	Details    []string   `json:"details,omitempty"`
	Approvals  *Approvals `json:"approvals,omitempty"`
}

// Compared names the champion a rule compared with, and its value.
type Compared struct {
	Version int     `json:"version"`
	Value   *Number `json:"value,omitempty"`
}

// Approvals counts approvals against the requirement.
type Approvals struct {
	Have int `json:"have"`
	Need int `json:"need"`
}

// Number is a metric value in JSON (NaN and the infinities as strings).
type Number = evalreport.Number

func num(f float64) *Number { n := Number(f); return &n }

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// fmtNum writes a number for a message: six significant digits, enough to
// read and free of binary noise (0.2058, not 0.20579999999999998); the
// exact values are in the result's fields.
func fmtNum(f float64) string {
	if !finite(f) {
		b, _ := Number(f).MarshalJSON()
		return strings.Trim(string(b), `"`)
	}
	return strconv.FormatFloat(f, 'g', 6, 64)
}

// Evaluate applies every rule of p to in. The decision is rejected when a
// rule fails, pending_approval when only approvals are missing, promoted
// otherwise. Rules are evaluated in order, each independently: a result
// for every rule, whatever the others said.
func Evaluate(p Policy, in Input) Evaluation {
	out := Evaluation{Rules: make([]RuleResult, 0, len(p.Rules))}
	for _, r := range p.Rules {
		out.Rules = append(out.Rules, evalRule(r, in))
	}
	out.Decision = decide(out.Rules)
	return out
}

func decide(rules []RuleResult) string {
	pending := false
	for _, r := range rules {
		switch {
		case r.Pending:
			pending = true
		case !r.Passed && !r.Skipped:
			return DecisionRejected
		}
	}
	if pending {
		return DecisionPendingApproval
	}
	return DecisionPromoted
}

func evalRule(r Rule, in Input) RuleResult {
	res := RuleResult{Rule: r.Kind, Name: r.Name, Suite: r.Suite, Metric: r.Metric}
	if res.Name == "" {
		res.Name = describe(r)
	}
	switch r.Kind {
	case KindRequiredSuite:
		requiredSuite(r, in, &res)
	case KindNoLeakage:
		noLeakage(r, in, &res)
	case KindThreshold:
		threshold(r, in, &res)
	case KindChampion:
		champion(r, in, &res)
	case KindTestsPassed:
		testsPassed(r, in, &res)
	case KindTrainingQuality:
		trainingQuality(in, &res)
	case KindPrerequisite:
		prerequisite(r, in, &res)
	case KindApprovals:
		res.Approvals = &Approvals{Have: in.Approvals, Need: r.Count}
		switch {
		case r.Count == 0:
			res.Passed, res.Message = true, "no approval required"
		case in.Approvals >= r.Count:
			res.Passed, res.Message = true, fmt.Sprintf("%d of %d approvals", in.Approvals, r.Count)
		default:
			res.Pending, res.Message = true, fmt.Sprintf("waiting for approval: %d of %d, from reviewers other than the requester and the version's author", in.Approvals, r.Count)
		}
	case KindCEL:
		res.Expression = r.Expression
		celRule(r, in, &res)
	default:
		res.Message = fmt.Sprintf("unknown rule kind %q", r.Kind)
	}
	return res
}

// Describe labels a rule: its name, else a description made from its
// fields.
func Describe(r Rule) string {
	if r.Name != "" {
		return r.Name
	}
	return describe(r)
}

// describe makes a rule's label from its fields.
func describe(r Rule) string {
	switch r.Kind {
	case KindRequiredSuite:
		s := "report of suite " + r.Suite
		if r.Dataset != "" {
			s += " on " + r.Dataset
			if r.DatasetVersion > 0 {
				s += fmt.Sprintf("/%d", r.DatasetVersion)
			}
		}
		return s
	case KindNoLeakage:
		if r.Suite != "" {
			return "evaluation data of " + r.Suite + " not in the training data"
		}
		return "evaluation data not in the training data"
	case KindThreshold:
		if r.Op == "between" {
			return fmt.Sprintf("%s between %s and %s", r.Metric, fmtNum(*r.Min), fmtNum(*r.Max))
		}
		return fmt.Sprintf("%s %s %s", r.Metric, r.Op, fmtNum(*r.Value))
	case KindChampion:
		op := "≥"
		sign := "−"
		if r.Direction == "lower_is_better" {
			op, sign = "≤", "+"
		}
		tol := 0.0
		if r.Tolerance != nil {
			tol = *r.Tolerance
		}
		switch {
		case tol == 0:
			return fmt.Sprintf("%s %s champion", r.Metric, op)
		case r.ToleranceType == "relative":
			return fmt.Sprintf("%s %s champion %s %s%%", r.Metric, op, sign, fmtNum(tol*100))
		}
		return fmt.Sprintf("%s %s champion %s %s", r.Metric, op, sign, fmtNum(tol))
	case KindTestsPassed:
		return "all behavioural tests of " + r.Suite + " passed"
	case KindTrainingQuality:
		return "training data passed its data-quality checks"
	case KindPrerequisite:
		if r.MinDuration == 0 {
			return "held " + r.Stage
		}
		return fmt.Sprintf("held %s for at least %s", r.Stage, time.Duration(r.MinDuration))
	case KindApprovals:
		return fmt.Sprintf("%d approval(s)", r.Count)
	case KindCEL:
		return "custom rule"
	}
	return r.Kind
}

// latest is the newest report of suite ("" for any) that satisfies ok.
func latest(e Evidence, suite string, ok func(Report) bool) *Report {
	for i := range e.Reports {
		r := &e.Reports[i]
		if (suite == "" || r.Suite == suite) && (ok == nil || ok(*r)) {
			return r
		}
	}
	return nil
}

// metric finds a metric's value in the newest report (of suite, when
// given) that has it.
func metric(e Evidence, suite, key string) (float64, *Report) {
	r := latest(e, suite, func(r Report) bool { _, ok := r.Metrics[key]; return ok })
	if r == nil {
		return 0, nil
	}
	return r.Metrics[key], r
}

func missingMetric(suite, key string, version int) string {
	if suite != "" {
		return fmt.Sprintf("missing evidence: no report of suite %s of v%d has metric %s", suite, version, key)
	}
	return fmt.Sprintf("missing evidence: no report of v%d has metric %s", version, key)
}

func requiredSuite(r Rule, in Input, res *RuleResult) {
	rep := latest(in.Candidate, r.Suite, func(rep Report) bool {
		if r.Dataset == "" {
			return true
		}
		return rep.Dataset != nil && rep.Dataset.Name == r.Dataset && (r.DatasetVersion == 0 || rep.Dataset.Version == r.DatasetVersion)
	})
	if rep == nil {
		res.Message = fmt.Sprintf("missing evidence: no report of suite %s for v%d", r.Suite, in.Candidate.Version)
		if r.Dataset != "" {
			res.Message += " on evaluation dataset " + r.Dataset
			if r.DatasetVersion > 0 {
				res.Message += fmt.Sprintf("/%d", r.DatasetVersion)
			}
		}
		return
	}
	res.ReportID, res.Passed = rep.ID, true
	res.Message = fmt.Sprintf("report %d of suite %s", rep.ID, rep.Suite)
	if rep.Dataset != nil {
		res.Message += " on " + rep.Dataset.String()
	}
}

func noLeakage(r Rule, in Input, res *RuleResult) {
	var reports []Report
	for _, rep := range in.Candidate.Reports {
		if r.Suite == "" || rep.Suite == r.Suite {
			reports = append(reports, rep)
		}
	}
	if len(reports) == 0 {
		if r.Suite != "" {
			res.Message = fmt.Sprintf("missing evidence: no report of suite %s for v%d", r.Suite, in.Candidate.Version)
		} else {
			res.Message = fmt.Sprintf("missing evidence: no report for v%d", in.Candidate.Version)
		}
		return
	}
	training := map[int64]DatasetRef{}
	for _, d := range in.Candidate.TrainingInputs {
		training[d.ID] = d
	}
	var leaks, unknown []string
	for _, rep := range reports {
		switch d, ok := training[idOf(rep.Dataset)]; {
		case rep.Dataset == nil:
			unknown = append(unknown, fmt.Sprintf("report %d (%s) names no evaluation dataset", rep.ID, rep.Suite))
		case ok:
			leaks = append(leaks, fmt.Sprintf("report %d (%s) evaluates on %s, a training input of v%d", rep.ID, rep.Suite, d, in.Candidate.Version))
		}
	}
	switch {
	case len(leaks) > 0:
		res.Message = "leakage: " + leaks[0]
		res.Details = append(leaks, unknown...)
	case len(unknown) > 0:
		res.Message = "missing evidence: " + unknown[0] + ": leakage cannot be ruled out"
		res.Details = unknown
	default:
		res.Passed = true
		res.Message = fmt.Sprintf("%d report(s) checked against %d training input(s)", len(reports), len(training))
	}
}

func idOf(d *DatasetRef) int64 {
	if d == nil {
		return 0
	}
	return d.ID
}

func threshold(r Rule, in Input, res *RuleResult) {
	v, rep := metric(in.Candidate, r.Suite, r.Metric)
	if rep == nil {
		res.Message = missingMetric(r.Suite, r.Metric, in.Candidate.Version)
		return
	}
	res.ReportID, res.Suite, res.Observed = rep.ID, rep.Suite, num(v)
	var pass bool
	var want string
	switch r.Op {
	case "between":
		res.Threshold = num(*r.Min)
		pass = v >= *r.Min && v <= *r.Max
		want = fmt.Sprintf("between %s and %s", fmtNum(*r.Min), fmtNum(*r.Max))
	default:
		res.Threshold = num(*r.Value)
		b := *r.Value
		switch r.Op {
		case ">=":
			pass = v >= b
		case ">":
			pass = v > b
		case "<=":
			pass = v <= b
		case "<":
			pass = v < b
		}
		want = r.Op + " " + fmtNum(b)
	}
	if !finite(v) {
		res.Message = fmt.Sprintf("%s is %s, which passes no threshold (wanted %s)", r.Metric, fmtNum(v), want)
		return
	}
	res.Passed = pass
	if pass {
		res.Message = fmt.Sprintf("%s = %s, %s", r.Metric, fmtNum(v), want)
	} else {
		res.Message = fmt.Sprintf("%s = %s, not %s", r.Metric, fmtNum(v), want)
	}
}

func champion(r Rule, in Input, res *RuleResult) {
	v, rep := metric(in.Candidate, r.Suite, r.Metric)
	if rep == nil {
		res.Message = missingMetric(r.Suite, r.Metric, in.Candidate.Version)
		return
	}
	res.ReportID, res.Suite, res.Observed = rep.ID, rep.Suite, num(v)
	if !finite(v) {
		res.Message = fmt.Sprintf("%s is %s, which compares with nothing", r.Metric, fmtNum(v))
		return
	}
	if in.Champion == nil {
		res.Passed, res.Message = true, "no current holder: nothing to compare with"
		return
	}
	if in.Champion.Version == in.Candidate.Version {
		res.Passed, res.Message = true, fmt.Sprintf("v%d already holds the stage", in.Candidate.Version)
		return
	}
	res.ComparedTo = &Compared{Version: in.Champion.Version}
	// the champion's value from the suite the candidate's came from
	c, crep := metric(*in.Champion, rep.Suite, r.Metric)
	if crep == nil || !finite(c) {
		res.Passed = true
		if crep == nil {
			res.Message = fmt.Sprintf("champion v%d has no %s in suite %s: nothing to compare with", in.Champion.Version, r.Metric, rep.Suite)
		} else {
			res.ComparedTo.Value = num(c)
			res.Message = fmt.Sprintf("champion v%d's %s is %s: nothing to compare with", in.Champion.Version, r.Metric, fmtNum(c))
		}
		return
	}
	res.ComparedTo.Value = num(c)
	tol := 0.0
	if r.Tolerance != nil {
		tol = *r.Tolerance
	}
	margin := tol
	if r.ToleranceType == "relative" {
		margin = tol * math.Abs(c)
	}
	var bound float64
	if r.Direction == "lower_is_better" {
		bound = c + margin
		res.Passed = v <= bound
	} else {
		bound = c - margin
		res.Passed = v >= bound
	}
	res.Threshold = num(bound)
	delta := v - c
	verb := "≥"
	if r.Direction == "lower_is_better" {
		verb = "≤"
	}
	if res.Passed {
		res.Message = fmt.Sprintf("%s = %s vs champion v%d's %s (Δ %s), %s %s", r.Metric, fmtNum(v), in.Champion.Version, fmtNum(c), signed(delta), verb, fmtNum(bound))
	} else {
		res.Message = fmt.Sprintf("%s = %s vs champion v%d's %s (Δ %s): not %s %s", r.Metric, fmtNum(v), in.Champion.Version, fmtNum(c), signed(delta), verb, fmtNum(bound))
	}
}

func signed(f float64) string {
	if f >= 0 {
		return "+" + fmtNum(f)
	}
	return fmtNum(f)
}

func testsPassed(r Rule, in Input, res *RuleResult) {
	rep := latest(in.Candidate, r.Suite, nil)
	if rep == nil {
		res.Message = fmt.Sprintf("missing evidence: no report of suite %s for v%d", r.Suite, in.Candidate.Version)
		return
	}
	res.ReportID = rep.ID
	if len(rep.Tests) == 0 {
		res.Message = fmt.Sprintf("missing evidence: report %d of suite %s has no behavioural tests", rep.ID, r.Suite)
		return
	}
	var failed []string
	for _, t := range rep.Tests {
		if !t.Passed {
			failed = append(failed, t.Name)
		}
	}
	res.Observed = num(float64(len(rep.Tests) - len(failed)))
	res.Threshold = num(float64(len(rep.Tests)))
	if len(failed) > 0 {
		res.Details = failed
		res.Message = fmt.Sprintf("%d of %d behavioural tests failed: %s", len(failed), len(rep.Tests), strings.Join(failed, ", "))
		return
	}
	res.Passed, res.Message = true, fmt.Sprintf("%d of %d behavioural tests passed", len(rep.Tests), len(rep.Tests))
}

func trainingQuality(in Input, res *RuleResult) {
	if len(in.Candidate.TrainingInputs) == 0 {
		res.Message = fmt.Sprintf("missing evidence: v%d records no training data (register its run or training_data)", in.Candidate.Version)
		return
	}
	var failed []string
	for _, d := range in.Candidate.TrainingInputs {
		for _, s := range d.FailedQuality {
			failed = append(failed, fmt.Sprintf("%s failed %s", d, s))
		}
	}
	sort.Strings(failed)
	if len(failed) > 0 {
		res.Details = failed
		res.Message = "training data failed its data-quality checks: " + strings.Join(failed, "; ")
		return
	}
	res.Passed = true
	res.Message = fmt.Sprintf("%d training input(s), no failing data-quality result", len(in.Candidate.TrainingInputs))
}

func prerequisite(r Rule, in Input, res *RuleResult) {
	var longest time.Duration
	for _, h := range in.Candidate.Holds[r.Stage] {
		end := in.Now
		if h.To != nil {
			end = *h.To
		}
		longest = max(longest, end.Sub(h.From))
	}
	need := time.Duration(r.MinDuration)
	held := len(in.Candidate.Holds[r.Stage]) > 0
	switch {
	case !held:
		res.Message = fmt.Sprintf("v%d never held %s", in.Candidate.Version, r.Stage)
	case longest < need:
		res.Message = fmt.Sprintf("v%d held %s for %s at most, less than %s", in.Candidate.Version, r.Stage, longest.Round(time.Second), need)
	default:
		res.Passed = true
		res.Message = fmt.Sprintf("v%d held %s for %s", in.Candidate.Version, r.Stage, longest.Round(time.Second))
	}
	res.Observed = num(longest.Seconds())
	res.Threshold = num(need.Seconds())
}
