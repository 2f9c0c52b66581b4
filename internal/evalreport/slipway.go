package evalreport

import (
	"encoding/json"
	"strconv"
)

// slipwayVersion is the one version of Slipway's format; "format" is
// optional, so that a later version can be told apart.
const slipwayVersion = "slipway/v1"

// slipwayKeys are the top-level keys of Slipway's format.
var slipwayKeys = map[string]bool{
	"format": true, "metrics": true, "slices": true, "tests": true,
	"model": true, "suite": true, "notes": true,
}

// slipState is what a Slipway report's keys have given so far.
type slipState struct {
	metricSet
	tests     []Test
	testNames map[string]string // test name → where it was given
	meta      map[string]string
	seen      map[string]bool // top-level keys read
	err       error           // the first problem, returned if the report is Slipway's
}

func (p *parser) slipReport() (Report, error) {
	if p.slip.err != nil {
		return Report{}, p.slip.err
	}
	if !p.hasMetrics {
		why := "is required: an object of metric name → number"
		if p.hasData {
			why = `is required: the format "slipway" was asked for, and this looks like a RecList report (it has "data")`
		}
		return Report{}, errorf("metrics", "%s", why)
	}
	return Report{Format: FormatSlipway, Metrics: p.slip.metrics, Tests: p.slip.tests, Meta: p.slip.meta}, nil
}

// slipSection reads the value of a Slipway top-level key.
func (p *parser) slipSection(key string, tok json.Token) error {
	if p.slip.seen[key] {
		return errorf(key, "is given twice")
	}
	if p.slip.seen == nil {
		p.slip.seen = map[string]bool{}
	}
	p.slip.seen[key] = true
	switch key {
	case "format":
		if s, ok := tok.(string); (!ok || s != slipwayVersion) && tok != nil {
			return errorf(key, "must be %q, the version of Slipway's format this Slipway reads (got %s)", slipwayVersion, p.marks.describe(tok))
		}
		return nil
	case "metrics":
		return p.slipMetrics(tok)
	case "slices":
		return p.slipSlices(tok)
	case "tests":
		return p.slipTests(tok)
	}
	return p.slipMeta(key, tok)
}

// slipMetrics reads "metrics": {name: number}.
func (p *parser) slipMetrics(tok json.Token) error {
	if tok != json.Delim('{') {
		return errorf("metrics", "must be an object of metric name → number (got %s)", p.marks.describe(tok))
	}
	return p.s.members(func(name string) error {
		at := whereKey("metrics", name)
		v, err := p.slipNumber(at)
		if err != nil {
			return err
		}
		if why := checkName(name); why != "" {
			return errorf(at, "%s", why)
		}
		return p.slip.add(Metric{Key: name, Test: name, Value: v}, at)
	})
}

// slipSlices reads "slices": {label: {name: number}}. The metric name
// is the test, so that a metric's slices group with it:
// hit_rate["country=US"].
func (p *parser) slipSlices(tok json.Token) error {
	if tok == nil {
		return nil
	}
	if tok != json.Delim('{') {
		return errorf("slices", "must be an object of slice label → {metric name → number} (got %s)", p.marks.describe(tok))
	}
	return p.s.members(func(label string) error {
		at := whereKey("slices", label)
		tok, err := p.s.token()
		if err != nil {
			return err
		}
		if tok != json.Delim('{') {
			return errorf(at, "must be an object of metric name → number (got %s)", p.marks.describe(tok))
		}
		if len(label) >= maxKeyBytes {
			return errorf(at, "the slice label is %d bytes long: its metrics' keys would be longer than %d bytes (the limit MaxKeyBytes)", len(label), maxKeyBytes)
		}
		path := Segment(label)
		return p.s.members(func(name string) error {
			at := whereKey(at, name)
			v, err := p.slipNumber(at)
			if err != nil {
				return err
			}
			if why := checkName(name); why != "" {
				return errorf(at, "%s", why)
			}
			return p.slip.add(Metric{Key: name + path, Test: name, Path: path, Value: v}, at)
		})
	})
}

// slipNumber reads a metric's value.
func (p *parser) slipNumber(at string) (float64, error) {
	tok, err := p.s.token()
	if err != nil {
		return 0, err
	}
	v, ok := p.marks.number(tok)
	if !ok {
		return 0, errorf(at, "must be a number, NaN or Infinity (got %s)", p.marks.describe(tok))
	}
	return v, nil
}

// slipTests reads "tests": [{name, passed, message}].
func (p *parser) slipTests(tok json.Token) error {
	if tok == nil {
		return nil
	}
	if tok != json.Delim('[') {
		return errorf("tests", `must be an array of {"name": …, "passed": true or false} (got %s)`, p.marks.describe(tok))
	}
	return p.s.elements(func(i int, tok json.Token) error {
		at := "tests[" + strconv.Itoa(i) + "]"
		if i >= maxTests {
			return errorf(at, "the report has more than %d tests (the limit MaxTests)", maxTests)
		}
		if tok != json.Delim('{') {
			return errorf(at, `must be an object {"name": …, "passed": true or false} (got %s)`, p.marks.describe(tok))
		}
		t, err := p.slipTest(at)
		if err != nil {
			return err
		}
		if prev, dup := p.slip.testNames[t.Name]; dup {
			return errorf(at+".name", "the test %s is given twice (also at %s): test names must be unique", quote(t.Name), prev)
		}
		if p.slip.testNames == nil {
			p.slip.testNames = map[string]string{}
		}
		p.slip.testNames[t.Name] = at + ".name"
		p.slip.tests = append(p.slip.tests, t)
		return nil
	})
}

// slipTest reads one test object, whose '{' was just read.
func (p *parser) slipTest(at string) (Test, error) {
	var t Test
	seen := map[string]bool{}
	err := p.s.members(func(key string) error {
		tok, err := p.s.token()
		if err != nil {
			return err
		}
		field := at + "." + key
		switch key {
		case "name", "passed", "message":
			if seen[key] {
				return errorf(field, "is given twice")
			}
			seen[key] = true
		}
		switch key {
		case "name":
			name, ok := p.plainString(tok)
			if !ok {
				return errorf(field, "must be a string (got %s)", p.marks.describe(tok))
			}
			if why := checkLabel(name); why != "" {
				return errorf(field, "%s", why)
			}
			t.Name = name
		case "passed":
			passed, ok := tok.(bool)
			if !ok {
				return errorf(field, "must be true or false (got %s)", p.marks.describe(tok))
			}
			t.Passed = passed
		case "message":
			msg, ok := p.plainString(tok)
			if !ok && tok != nil {
				return errorf(field, "must be a string or null (got %s)", p.marks.describe(tok))
			}
			t.Message = cut(msg, MaxMessageBytes)
		default:
			return p.s.skip(tok)
		}
		return nil
	})
	switch {
	case err != nil:
		return Test{}, err
	case !seen["name"]:
		return Test{}, errorf(at, `has no "name": a test needs one`)
	case !seen["passed"]:
		return Test{}, errorf(at, `has no "passed": true or false`)
	}
	return t, nil
}

// slipMeta reads model, suite or notes: a string, or null.
func (p *parser) slipMeta(key string, tok json.Token) error {
	if tok == nil {
		return nil
	}
	s, ok := p.plainString(tok)
	if !ok {
		return errorf(key, "must be a string (got %s)", p.marks.describe(tok))
	}
	if p.slip.meta == nil {
		p.slip.meta = map[string]string{}
	}
	p.slip.meta[key] = cut(s, MaxMetaBytes)
	return nil
}

// plainString reads a string token that is not a NaN or Infinity.
func (p *parser) plainString(tok json.Token) (string, bool) {
	s, ok := tok.(string)
	if !ok {
		return "", false
	}
	if _, nf := p.marks.value(s); nf {
		return "", false
	}
	return s, true
}

// whereKey is the document path of key inside parent, with a long key cut
// so that the message stays readable.
func whereKey(parent, key string) string {
	const max = 64
	if len(key) > max {
		return parent + "[" + quoteJSON(cut(key, max)) + "…]"
	}
	return parent + Segment(key)
}
