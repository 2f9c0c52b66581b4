package promotion

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func f(v float64) *float64 { return &v }

// The production policy of the acceptance scenario: a floor, HIT_RATE ≥
// champion × 0.98, MRED_COUNTRY.mred ≥ champion − 0.001, one approval.
func productionPolicy() Policy {
	return Policy{Rules: []Rule{
		{Kind: KindRequiredSuite, Suite: "reclist"},
		{Kind: KindThreshold, Suite: "reclist", Metric: "HIT_RATE", Op: ">=", Value: f(0.015)},
		{Kind: KindChampion, Suite: "reclist", Metric: "HIT_RATE", Direction: "higher_is_better", Tolerance: f(0.02), ToleranceType: "relative"},
		{Kind: KindChampion, Suite: "reclist", Metric: "MRED_COUNTRY.mred", Direction: "higher_is_better", Tolerance: f(0.001), ToleranceType: "absolute"},
		{Kind: KindApprovals, Count: 1},
	}}
}

func evidence(version int, metrics map[string]float64) Evidence {
	return Evidence{Version: version, Reports: []Report{{ID: int64(version * 10), Suite: "reclist", Metrics: metrics}}}
}

func TestPolicyValidates(t *testing.T) {
	if err := productionPolicy().Validate(); err != nil {
		t.Fatalf("the acceptance policy: %v", err)
	}
	bad := Policy{Rules: []Rule{
		{Kind: "magic"},
		{Kind: KindThreshold, Metric: "x", Op: "=~", Value: f(1)},
		{Kind: KindThreshold, Metric: "x", Op: "between", Min: f(2), Max: f(1)},
		{Kind: KindThreshold, Op: ">=", Value: f(math.NaN())},
		{Kind: KindChampion, Metric: "x", Direction: "up"},
		{Kind: KindChampion, Metric: "x", Direction: "lower_is_better", Tolerance: f(1.5), ToleranceType: "relative"},
		{Kind: KindRequiredSuite},
		{Kind: KindTestsPassed, Suite: "Bad Suite"},
		{Kind: KindPrerequisite, Stage: "Staging"},
		{Kind: KindApprovals, Count: -1},
		{Kind: KindApprovals, Count: 1},
		{Kind: KindCEL, Expression: "candidate.metrics["},
		{Kind: KindCEL, Expression: "candidate.version + 1"},
	}}
	err := bad.Validate()
	if err == nil {
		t.Fatal("a policy of broken rules validated")
	}
	for _, want := range []string{"rules[0].kind", "rules[1].op", "rules[2].min", "rules[3].metric", "rules[3].value", "rules[4].direction",
		"rules[5].tolerance", "rules[6].suite", "rules[7].suite", "rules[8].stage", "rules[9].count", "rules[10]", "rules[11].expression",
		"rules[12].expression: must be of type bool"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s: %v", want, err)
		}
	}
}

func TestAcceptanceScenarioDecisions(t *testing.T) {
	p := productionPolicy()
	v1 := evidence(1, map[string]float64{"HIT_RATE": 0.210, "MRED_COUNTRY.mred": -0.0061})
	v2 := evidence(2, map[string]float64{"HIT_RATE": 0.230, "MRED_COUNTRY.mred": -0.0091})
	now := time.Now()

	// v1, no champion: everything passes, one approval missing
	ev := Evaluate(p, Input{Candidate: v1, Now: now})
	if ev.Decision != DecisionPendingApproval {
		t.Fatalf("v1 with no champion: %s, want pending_approval: %+v", ev.Decision, ev.Rules)
	}
	if r := ev.Rules[2]; !r.Passed || !strings.Contains(r.Message, "no current holder") {
		t.Errorf("champion rule with no holder: %+v", r)
	}
	if ev := Evaluate(p, Input{Candidate: v1, Approvals: 1, Now: now}); ev.Decision != DecisionPromoted {
		t.Errorf("v1 approved: %s, want promoted", ev.Decision)
	}

	// v2 against v1: better hit rate, MRED worse by 0.003 → rejected, the
	// failing rule says what it saw and against whom
	ev = Evaluate(p, Input{Candidate: v2, Champion: &v1, Approvals: 1, Now: now})
	if ev.Decision != DecisionRejected {
		t.Fatalf("v2 against v1: %s, want rejected", ev.Decision)
	}
	mred := ev.Rules[3]
	if mred.Passed || mred.ComparedTo == nil || mred.ComparedTo.Version != 1 || mred.Observed == nil || float64(*mred.Observed) != -0.0091 ||
		mred.Threshold == nil || math.Abs(float64(*mred.Threshold)-(-0.0071)) > 1e-12 {
		t.Errorf("the MRED rule: %+v", mred)
	}
	if hr := ev.Rules[2]; !hr.Passed || math.Abs(float64(*hr.Threshold)-0.210*0.98) > 1e-12 || !strings.Contains(hr.Message, "Δ +0.02), ≥ 0.2058") {
		t.Errorf("the hit-rate rule: %+v (threshold want %v)", hr, 0.210*0.98)
	}

	// v3: below the floor
	v3 := evidence(3, map[string]float64{"HIT_RATE": 0.012, "MRED_COUNTRY.mred": -0.0061})
	if ev := Evaluate(p, Input{Candidate: v3, Champion: &v1, Now: now}); ev.Decision != DecisionRejected || ev.Rules[1].Passed {
		t.Errorf("v3 below the floor: %s %+v", ev.Decision, ev.Rules[1])
	}

	// no report of the suite: missing evidence
	none := Evidence{Version: 4}
	ev = Evaluate(p, Input{Candidate: none, Now: now})
	if ev.Decision != DecisionRejected || !strings.Contains(ev.Rules[0].Message, "missing evidence") {
		t.Errorf("no report: %s %+v", ev.Decision, ev.Rules[0])
	}
}

func TestNonFiniteValuesNeverPass(t *testing.T) {
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		cand := evidence(2, map[string]float64{"HIT_RATE": v})
		for _, r := range []Rule{
			{Kind: KindThreshold, Metric: "HIT_RATE", Op: "<=", Value: f(1)},
			{Kind: KindThreshold, Metric: "HIT_RATE", Op: ">=", Value: f(0)},
			{Kind: KindChampion, Metric: "HIT_RATE", Direction: "higher_is_better"},
			{Kind: KindChampion, Metric: "HIT_RATE", Direction: "lower_is_better"},
		} {
			champ := evidence(1, map[string]float64{"HIT_RATE": 0.2})
			res := Evaluate(Policy{Rules: []Rule{r}}, Input{Candidate: cand, Champion: &champ})
			if res.Decision != DecisionRejected {
				t.Errorf("%v with %s %s: %s", v, r.Kind, r.Op+r.Direction, res.Decision)
			}
		}
	}
	// and JSON carries them as strings
	b, err := json.Marshal([]*Number{num(math.NaN()), num(math.Inf(-1)), num(0.5)})
	if err != nil || string(b) != `["NaN","-Infinity",0.5]` {
		t.Errorf("JSON of non-finite numbers: %s %v", b, err)
	}
}

func TestChampionToleranceDirections(t *testing.T) {
	champ := evidence(1, map[string]float64{"latency": 100, "loss": -2})
	cases := []struct {
		rule Rule
		cand float64
		pass bool
	}{
		{Rule{Metric: "latency", Direction: "lower_is_better"}, 100, true},
		{Rule{Metric: "latency", Direction: "lower_is_better"}, 100.5, false},
		{Rule{Metric: "latency", Direction: "lower_is_better", Tolerance: f(0.01), ToleranceType: "relative"}, 101, true},
		{Rule{Metric: "latency", Direction: "lower_is_better", Tolerance: f(0.01), ToleranceType: "relative"}, 101.01, false},
		{Rule{Metric: "latency", Direction: "lower_is_better", Tolerance: f(5)}, 105, true},
		// relative tolerance on a negative champion: a fraction of its magnitude
		{Rule{Metric: "loss", Direction: "higher_is_better", Tolerance: f(0.1), ToleranceType: "relative"}, -2.2, true},
		{Rule{Metric: "loss", Direction: "higher_is_better", Tolerance: f(0.1), ToleranceType: "relative"}, -2.21, false},
	}
	for _, c := range cases {
		c.rule.Kind = KindChampion
		cand := evidence(2, map[string]float64{c.rule.Metric: c.cand})
		res := Evaluate(Policy{Rules: []Rule{c.rule}}, Input{Candidate: cand, Champion: &champ})
		if got := res.Rules[0].Passed; got != c.pass {
			t.Errorf("%+v with %v: passed %v, want %v (%s)", c.rule, c.cand, got, c.pass, res.Rules[0].Message)
		}
	}
	// a champion without the metric is no obstacle, and says so
	bare := evidence(1, map[string]float64{})
	res := Evaluate(Policy{Rules: []Rule{{Kind: KindChampion, Metric: "latency", Direction: "lower_is_better"}}},
		Input{Candidate: evidence(2, map[string]float64{"latency": 1}), Champion: &bare})
	if !res.Rules[0].Passed || !strings.Contains(res.Rules[0].Message, "nothing to compare") {
		t.Errorf("champion without the metric: %+v", res.Rules[0])
	}
}

func TestLeakageQualityTestsPrerequisiteCEL(t *testing.T) {
	train := DatasetRef{ID: 7, Name: "sessions-train", Version: 3}
	test := DatasetRef{ID: 8, Name: "sessions-test", Version: 1}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	cand := Evidence{Version: 5, Tags: map[string]string{"team": "recs"},
		Reports: []Report{{ID: 2, Suite: "reclist", Dataset: &test, Metrics: map[string]float64{"HIT_RATE": 0.2},
			Tests: []Test{{"no_empty", true}, {"gender_invariance", false}}}},
		TrainingInputs: []DatasetRef{train},
		Holds:          map[string][]Hold{"staging": {{From: now.Add(-30 * time.Hour)}}},
	}
	run := func(r Rule, e Evidence, champ *Evidence) RuleResult {
		return Evaluate(Policy{Rules: []Rule{r}}, Input{Candidate: e, Champion: champ, Now: now}).Rules[0]
	}
	if r := run(Rule{Kind: KindNoLeakage, Suite: "reclist"}, cand, nil); !r.Passed {
		t.Errorf("no leakage: %+v", r)
	}
	leaky := cand
	leaky.Reports = []Report{{ID: 3, Suite: "reclist", Dataset: &train}}
	if r := run(Rule{Kind: KindNoLeakage}, leaky, nil); r.Passed || !strings.Contains(r.Message, "leakage") {
		t.Errorf("leakage: %+v", r)
	}
	noData := cand
	noData.Reports = []Report{{ID: 4, Suite: "reclist"}}
	if r := run(Rule{Kind: KindNoLeakage}, noData, nil); r.Passed {
		t.Errorf("a report without an evaluation dataset ruled out leakage: %+v", r)
	}
	if r := run(Rule{Kind: KindRequiredSuite, Suite: "reclist", Dataset: "sessions-test", DatasetVersion: 2}, cand, nil); r.Passed {
		t.Errorf("required dataset version 2 passed with version 1: %+v", r)
	}
	if r := run(Rule{Kind: KindTestsPassed, Suite: "reclist"}, cand, nil); r.Passed || r.Details[0] != "gender_invariance" {
		t.Errorf("tests passed: %+v", r)
	}
	if r := run(Rule{Kind: KindTrainingQuality}, cand, nil); !r.Passed {
		t.Errorf("training quality: %+v", r)
	}
	bad := cand
	bad.TrainingInputs = []DatasetRef{{ID: 7, Name: "sessions-train", Version: 3, FailedQuality: []string{"great_expectations"}}}
	if r := run(Rule{Kind: KindTrainingQuality}, bad, nil); r.Passed || !strings.Contains(r.Message, "sessions-train/3 failed great_expectations") {
		t.Errorf("failing training quality: %+v", r)
	}
	if r := run(Rule{Kind: KindPrerequisite, Stage: "staging", MinDuration: Duration(24 * time.Hour)}, cand, nil); !r.Passed {
		t.Errorf("30 h in staging: %+v", r)
	}
	if r := run(Rule{Kind: KindPrerequisite, Stage: "staging", MinDuration: Duration(48 * time.Hour)}, cand, nil); r.Passed {
		t.Errorf("30 h passed a 48 h prerequisite: %+v", r)
	}
	champ := evidence(4, map[string]float64{"HIT_RATE": 0.25})
	expr := `has_champion && candidate.metrics["HIT_RATE"] >= champion.metrics["HIT_RATE"] - 0.1 && candidate.tags["team"] == "recs"`
	if r := run(Rule{Kind: KindCEL, Expression: expr}, cand, &champ); !r.Passed || r.Expression != expr {
		t.Errorf("CEL: %+v", r)
	}
	if r := run(Rule{Kind: KindCEL, Expression: `candidate.metrics["MISSING"] > 0.0`}, cand, nil); r.Passed || !strings.Contains(r.Message, "failed") {
		t.Errorf("CEL on a missing key: %+v", r)
	}
}

// The examples of docs/policies.md compile.
func TestDocumentedCELExamplesCompile(t *testing.T) {
	for _, expr := range []string{
		`candidate.metrics["HIT_RATE"] >= 0.2 || candidate.tags["experiment"] == "true"`,
		`!has_champion || candidate.metrics["MRR"] - champion.metrics["MRR"] > -0.001`,
		`candidate.metrics.exists(k, k.startsWith("MRED_COUNTRY.") && candidate.metrics[k] < -0.05) == false`,
	} {
		if _, err := compileCEL(expr); err != nil {
			t.Errorf("%s: %v", expr, err)
		}
	}
}
