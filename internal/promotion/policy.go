// Package promotion decides what holds a model's stages: stages and their
// history, promotion policies, promotion requests and their reviews. A
// request is decided on the server, in one transaction, by the stage's
// policy against the stored evaluation evidence of the candidate and of the
// version that holds the stage (the champion).
package promotion

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/validate"
)

// Rule kinds.
const (
	KindRequiredSuite   = "required_suite"        // a report of a suite exists (on a given evaluation dataset)
	KindNoLeakage       = "no_leakage"            // the report's evaluation data is not among the training inputs
	KindThreshold       = "threshold"             // a metric against a fixed bound
	KindChampion        = "champion"              // a metric against the champion's, within a tolerance
	KindTestsPassed     = "tests_passed"          // every behavioural test of a suite passed
	KindTrainingQuality = "training_data_quality" // every training input passed its data-quality checks
	KindPrerequisite    = "prerequisite_stage"    // the candidate held another stage long enough
	KindApprovals       = "approvals"             // reviewers other than the requester and the author
	KindCEL             = "cel"                   // a custom CEL expression
)

var kinds = []string{KindRequiredSuite, KindNoLeakage, KindThreshold, KindChampion, KindTestsPassed, KindTrainingQuality,
	KindPrerequisite, KindApprovals, KindCEL}

// Policy is the promotion policy of one stage: every rule must pass. A stage
// without a stored policy has DefaultPolicy.
type Policy struct {
	Rules []Rule `json:"rules"`
	// Directions says, for the review page, which way is better for
	// metrics no champion rule names: a metric key or a test name (all
	// its slices) to higher_is_better or lower_is_better. Rules ignore it.
	Directions map[string]string `json:"directions,omitempty"`
}

// DefaultPolicy is the policy of a stage nobody wrote one for: nothing
// reaches a stage unreviewed unless a policy says so.
func DefaultPolicy() Policy {
	return Policy{Rules: []Rule{{Kind: KindApprovals, Count: 1}}}
}

// Rule is one rule of a policy. Which fields apply depends on Kind.
type Rule struct {
	Kind string `json:"kind"`
	// Name labels the rule in results; a description is made when empty.
	Name string `json:"name,omitempty"`
	// Suite names the evaluation suite whose latest report the rule reads.
	// Metric rules without one read the latest report that has the metric.
	Suite string `json:"suite,omitempty"`
	// Dataset and DatasetVersion (required_suite) name the evaluation data
	// the report must be about; version 0 means any version.
	Dataset        string `json:"dataset,omitempty"`
	DatasetVersion int    `json:"dataset_version,omitempty"`
	// Metric is a metric key, e.g. HIT_RATE or MRED_COUNTRY.mred.
	Metric string `json:"metric,omitempty"`
	// Op (threshold) is >=, >, <=, < or between; Value its bound, Min and
	// Max those of between (inclusive).
	Op    string   `json:"op,omitempty"`
	Value *float64 `json:"value,omitempty"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
	// Direction (champion) is higher_is_better or lower_is_better;
	// Tolerance how much worse than the champion passes, absolute or
	// relative (a fraction of the champion's magnitude).
	Direction     string   `json:"direction,omitempty"`
	Tolerance     *float64 `json:"tolerance,omitempty"`
	ToleranceType string   `json:"tolerance_type,omitempty"`
	// Stage and MinDuration (prerequisite_stage): the candidate held Stage
	// for at least MinDuration, in one stretch.
	Stage       string   `json:"stage,omitempty"`
	MinDuration Duration `json:"min_duration,omitempty"`
	// Count (approvals) is the number of distinct approving reviewers.
	Count int `json:"count,omitempty"`
	// Expression (cel) is a CEL expression of type bool over candidate,
	// champion and has_champion.
	Expression string `json:"expression,omitempty"`
}

// Duration is a time.Duration written as "24h" or "90m" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	if d == 0 {
		return []byte(`""`), nil
	}
	return json.Marshal(time.Duration(d).String())
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf(`a duration is a string such as "24h" or "90m"`)
	}
	if s == "" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf(`a duration is a string such as "24h" or "90m" (got %q)`, s)
	}
	*d = Duration(v)
	return nil
}

// Limits of a policy.
const (
	MaxRules         = 100
	MaxExpression    = 4096
	MaxMetricKey     = 1024
	maxMinDuration   = 365 * 24 * time.Hour
	maxApprovalCount = 20
)

var ops = []string{">=", ">", "<=", "<", "between"}

// Validate checks every rule, compiling CEL expressions, and reports all
// problems at once, each with the rule's index.
func (p Policy) Validate() error {
	var fe errs.FieldErrors
	if len(p.Rules) > MaxRules {
		fe.Add("rules", "at most %d rules", MaxRules)
		return fe
	}
	if len(p.Directions) > MaxRules*10 {
		fe.Add("directions", "at most %d entries", MaxRules*10)
	}
	for k, d := range p.Directions {
		if k == "" || len(k) > MaxMetricKey {
			fe.Add("directions", "keys are metric keys or test names of 1 to %d bytes", MaxMetricKey)
		}
		if d != "higher_is_better" && d != "lower_is_better" {
			fe.Add("directions["+k+"]", "must be higher_is_better or lower_is_better")
		}
	}
	approvals := 0
	for i, r := range p.Rules {
		at := fmt.Sprintf("rules[%d]", i)
		if !contains(kinds, r.Kind) {
			fe.Add(at+".kind", "must be one of %s", strings.Join(kinds, ", "))
			continue
		}
		validate.Text(at+".name", r.Name, 200, false, &fe)
		if r.Suite != "" {
			if err := validate.Name(at+".suite", r.Suite); err != nil {
				fe = append(fe, err.(*errs.FieldError))
			}
		}
		needSuite := func() {
			if r.Suite == "" {
				fe.Add(at+".suite", "is required by a %s rule", r.Kind)
			}
		}
		needMetric := func() {
			switch {
			case r.Metric == "":
				fe.Add(at+".metric", "is required by a %s rule: a metric key such as HIT_RATE or MRED_COUNTRY.mred", r.Kind)
			case len(r.Metric) > MaxMetricKey:
				fe.Add(at+".metric", "must be at most %d bytes", MaxMetricKey)
			}
		}
		finite := func(field string, v *float64) {
			if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0)) {
				fe.Add(at+"."+field, "must be a finite number")
			}
		}
		switch r.Kind {
		case KindRequiredSuite:
			needSuite()
			if r.Dataset != "" {
				if err := validate.Name(at+".dataset", r.Dataset); err != nil {
					fe = append(fe, err.(*errs.FieldError))
				}
			}
			if r.DatasetVersion < 0 || r.DatasetVersion > 0 && r.Dataset == "" {
				fe.Add(at+".dataset_version", "must be a positive version number of the rule's dataset")
			}
		case KindTestsPassed:
			needSuite()
		case KindThreshold:
			needMetric()
			switch {
			case !contains(ops, r.Op):
				fe.Add(at+".op", "must be one of %s", strings.Join(ops, ", "))
			case r.Op == "between":
				if r.Min == nil || r.Max == nil {
					fe.Add(at, "a between threshold needs min and max")
				} else if *r.Min > *r.Max {
					fe.Add(at+".min", "must not be greater than max")
				}
			case r.Value == nil:
				fe.Add(at+".value", "is required: the bound the metric is compared with")
			}
			finite("value", r.Value)
			finite("min", r.Min)
			finite("max", r.Max)
		case KindChampion:
			needMetric()
			if r.Direction != "higher_is_better" && r.Direction != "lower_is_better" {
				fe.Add(at+".direction", "must be higher_is_better or lower_is_better")
			}
			if r.Tolerance != nil && (*r.Tolerance < 0 || math.IsNaN(*r.Tolerance) || math.IsInf(*r.Tolerance, 0)) {
				fe.Add(at+".tolerance", "must be a finite number ≥ 0")
			}
			switch r.ToleranceType {
			case "", "absolute":
			case "relative":
				if r.Tolerance != nil && *r.Tolerance >= 1 {
					fe.Add(at+".tolerance", "a relative tolerance is a fraction below 1 (0.02 is 2%%)")
				}
			default:
				fe.Add(at+".tolerance_type", "must be absolute or relative")
			}
		case KindPrerequisite:
			if err := ValidateStageName(at+".stage", r.Stage); err != nil {
				fe = append(fe, err.(*errs.FieldError))
			}
			if r.MinDuration < 0 || time.Duration(r.MinDuration) > maxMinDuration {
				fe.Add(at+".min_duration", "must be between 0 and %s", maxMinDuration)
			}
		case KindApprovals:
			approvals++
			if r.Count < 0 || r.Count > maxApprovalCount {
				fe.Add(at+".count", "must be between 0 and %d", maxApprovalCount)
			}
			if approvals > 1 {
				fe.Add(at, "a policy has at most one approvals rule")
			}
		case KindCEL:
			switch {
			case strings.TrimSpace(r.Expression) == "":
				fe.Add(at+".expression", "is required by a cel rule")
			case len(r.Expression) > MaxExpression:
				fe.Add(at+".expression", "must be at most %d bytes", MaxExpression)
			default:
				if _, err := compileCEL(r.Expression); err != nil {
					fe.Add(at+".expression", "%s", err)
				}
			}
		}
	}
	return fe.Err()
}

// Approvals is the number of approvals the policy requires.
func (p Policy) Approvals() int {
	for _, r := range p.Rules {
		if r.Kind == KindApprovals {
			return r.Count
		}
	}
	return 0
}

// ValidateStageName checks a stage name: lower case, starting with a
// letter, at most 63 characters.
func ValidateStageName(field, name string) error {
	if !stageName(name) {
		return errs.Invalid(field, "must match ^[a-z][a-z0-9_-]{0,62}$ (e.g. staging, production, canary)")
	}
	return nil
}

func stageName(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
