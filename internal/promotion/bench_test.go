package promotion

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkEvaluate is the engine alone: a policy of 10 rules over reports
// of 1,000 metrics, candidate and champion (the database reads are in
// make bench).
func BenchmarkEvaluate(b *testing.B) {
	metrics := func(shift float64) map[string]float64 {
		m := make(map[string]float64, 1000)
		for i := range 1000 {
			m[fmt.Sprintf("METRIC_%03d.slice_%d", i/10, i%10)] = float64(i)/1000 + shift
		}
		return m
	}
	cand := Evidence{Version: 2, Reports: []Report{{ID: 2, Suite: "reclist", Dataset: &DatasetRef{ID: 9, Name: "test", Version: 1}, Metrics: metrics(0.01), Tests: []Test{{"a", true}, {"b", true}}}},
		TrainingInputs: []DatasetRef{{ID: 1, Name: "train", Version: 1}}, Holds: map[string][]Hold{"staging": {{From: time.Now().Add(-48 * time.Hour)}}}}
	champ := Evidence{Version: 1, Reports: []Report{{ID: 1, Suite: "reclist", Metrics: metrics(0)}}}
	p := Policy{Rules: []Rule{
		{Kind: KindRequiredSuite, Suite: "reclist"},
		{Kind: KindNoLeakage, Suite: "reclist"},
		{Kind: KindThreshold, Suite: "reclist", Metric: "METRIC_010.slice_1", Op: ">=", Value: f(0.05)},
		{Kind: KindThreshold, Suite: "reclist", Metric: "METRIC_050.slice_5", Op: "between", Min: f(0), Max: f(1)},
		{Kind: KindChampion, Suite: "reclist", Metric: "METRIC_020.slice_2", Direction: "higher_is_better", Tolerance: f(0.02), ToleranceType: "relative"},
		{Kind: KindChampion, Suite: "reclist", Metric: "METRIC_030.slice_3", Direction: "lower_is_better", Tolerance: f(0.1)},
		{Kind: KindTestsPassed, Suite: "reclist"},
		{Kind: KindPrerequisite, Stage: "staging", MinDuration: Duration(24 * time.Hour)},
		{Kind: KindCEL, Expression: `candidate.metrics["METRIC_099.slice_9"] >= champion.metrics["METRIC_099.slice_9"]`},
		{Kind: KindApprovals, Count: 1},
	}}
	if err := p.Validate(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		ev := Evaluate(p, Input{Candidate: cand, Champion: &champ, Now: time.Now()})
		if ev.Decision != DecisionPendingApproval {
			b.Fatalf("decision %s: %+v", ev.Decision, ev.Rules)
		}
	}
}
