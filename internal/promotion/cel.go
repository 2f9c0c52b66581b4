package promotion

import (
	"fmt"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
)

// CEL rules see three variables:
//
//	candidate, champion  maps with
//	    version  int                  the version number (0 for no champion)
//	    metrics  map(string, double)  every metric key, from the newest report that has it
//	    tests    map(string, bool)    behavioural tests of the newest report of each suite
//	    tags     map(string, string)  the version's tags
//	has_champion  bool                whether a version holds the stage
//
// e.g. `candidate.metrics["HIT_RATE"] >= 0.2 || !has_champion` or
// `!has_champion || candidate.metrics["MRR"] - champion.metrics["MRR"] > -0.001`.
// An expression must be of type bool; one that fails when evaluated (a
// missing key, say) fails its rule with the error.

// celCost bounds the work of one evaluation.
const celCost = 100_000

var (
	celEnvOnce sync.Once
	celEnv     *cel.Env
	celEnvErr  error
)

func env() (*cel.Env, error) {
	celEnvOnce.Do(func() {
		side := cel.MapType(cel.StringType, cel.DynType)
		celEnv, celEnvErr = cel.NewEnv(
			cel.Variable("candidate", side),
			cel.Variable("champion", side),
			cel.Variable("has_champion", cel.BoolType),
		)
	})
	return celEnv, celEnvErr
}

// compileCEL checks an expression and makes its program.
func compileCEL(expr string) (cel.Program, error) {
	e, err := env()
	if err != nil {
		return nil, err
	}
	ast, iss := e.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("does not compile: %s", strings.ReplaceAll(iss.Err().Error(), "\n", " "))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("must be of type bool, not %s", ast.OutputType())
	}
	return e.Program(ast, cel.CostLimit(celCost))
}

// celSide is the map a CEL expression sees of one version.
func celSide(e *Evidence) map[string]any {
	if e == nil {
		return map[string]any{"version": 0, "metrics": map[string]float64{}, "tests": map[string]bool{}, "tags": map[string]string{}}
	}
	metrics := map[string]float64{}
	tests := map[string]bool{}
	seen := map[string]bool{}
	// reports are newest first: the first value of a key wins
	for _, r := range e.Reports {
		for k, v := range r.Metrics {
			if _, ok := metrics[k]; !ok {
				metrics[k] = v
			}
		}
		if !seen[r.Suite] {
			seen[r.Suite] = true
			for _, t := range r.Tests {
				if _, ok := tests[t.Name]; !ok {
					tests[t.Name] = t.Passed
				}
			}
		}
	}
	tags := e.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return map[string]any{"version": e.Version, "metrics": metrics, "tests": tests, "tags": tags}
}

// programs caches compiled expressions: a policy's few expressions are
// compiled once, not at every evaluation. Bounded, since expressions come
// from admins' edits over the life of the process.
var programs = struct {
	sync.Mutex
	m map[string]cel.Program
}{m: map[string]cel.Program{}}

const maxPrograms = 1000

func program(expr string) (cel.Program, error) {
	programs.Lock()
	prg, ok := programs.m[expr]
	programs.Unlock()
	if ok {
		return prg, nil
	}
	prg, err := compileCEL(expr)
	if err != nil {
		return nil, err
	}
	programs.Lock()
	if len(programs.m) >= maxPrograms {
		clear(programs.m)
	}
	programs.m[expr] = prg
	programs.Unlock()
	return prg, nil
}

func celRule(r Rule, in Input, res *RuleResult) {
	prg, err := program(r.Expression)
	if err != nil {
		res.Message = "the expression " + err.Error()
		return
	}
	out, _, err := prg.Eval(map[string]any{
		"candidate":    celSide(&in.Candidate),
		"champion":     celSide(in.Champion),
		"has_champion": in.Champion != nil,
	})
	if err != nil {
		res.Message = "the expression failed: " + err.Error()
		return
	}
	b, ok := out.Value().(bool)
	if !ok {
		res.Message = fmt.Sprintf("the expression gave %v, not a bool", out.Value())
		return
	}
	res.Passed = b
	if b {
		res.Message = "the expression is true"
	} else {
		res.Message = "the expression is false"
	}
}
