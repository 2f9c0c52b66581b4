package evalreport

import (
	"encoding/json"
	"strconv"
	"strings"
)

// recState is what a RecList report's keys have given so far.
type recState struct {
	metricSet
	version   Format            // of the elements: from the first one, or as asked for
	versionBy string            // what decided version, for messages: "the format … was asked for"
	names     map[string]string // test name → where it was given
	meta      map[string]string
	pending   []pendingMetric // of the element being read
}

// pendingMetric is a metric of an element whose name may not have been
// read yet: JSON does not order keys, so "result" may come before "name".
type pendingMetric struct {
	path  string
	value float64
}

// recElement is what one element of data has given so far.
type recElement struct {
	at         string // data[i]
	version    Format
	versionKey string // the key that decided version
	name       string
	hasName    bool
	hasResult  bool
}

// metaKeys are the RecList metadata fields kept in Report.Meta.
var metaKeys = map[string]bool{"model_name": true, "reclist": true, "run_time": true, "finish_time": true}

func (p *parser) recReport(format Format) (Report, error) {
	if !p.hasData {
		why := "is required: an array of test results"
		if p.hasMetrics {
			why = `is required: the format ` + strconv.Quote(string(format)) + ` was asked for, and this looks like a Slipway report (it has "metrics" and no "data")`
		}
		return Report{}, errorf("data", "%s", why)
	}
	return Report{Format: format, Metrics: p.rec.metrics, Meta: p.rec.meta}, nil
}

// metadata keeps a few descriptive fields of RecList's metadata. It is
// lenient: RecList's metadata is free-form, and a report is not rejected
// for it.
func (p *parser) metadata(tok json.Token) error {
	if tok != json.Delim('{') {
		return p.s.skip(tok)
	}
	return p.s.members(func(key string) error {
		tok, err := p.s.token()
		if err != nil {
			return err
		}
		if metaKeys[key] {
			if v, ok := p.metaText(tok); ok {
				if p.rec.meta == nil {
					p.rec.meta = map[string]string{}
				}
				p.rec.meta[key] = v
			}
		}
		return p.s.skip(tok)
	})
}

// metaText reads a string or a number (as written) for Meta.
func (p *parser) metaText(tok json.Token) (string, bool) {
	switch v := tok.(type) {
	case string:
		if f, ok := p.marks.value(v); ok {
			return nonfiniteText(f), true
		}
		return cut(v, MaxMetaBytes), true
	case json.Number:
		return cut(string(v), MaxMetaBytes), true
	}
	return "", false
}

// data reads RecList's array of test results.
func (p *parser) data(tok json.Token) error {
	if p.rec.names != nil {
		return errorf("data", "is given twice")
	}
	p.rec.names = map[string]string{}
	if p.want != "" {
		p.rec.version, p.rec.versionBy = p.want, "the format "+strconv.Quote(string(p.want))+" was asked for"
	}
	if tok != json.Delim('[') {
		return errorf("data", "must be an array of test results (got %s)", p.marks.describe(tok))
	}
	return p.s.elements(p.recElement)
}

// recElement reads one test result, {test_name, test_result} (0.x) or
// {name, result} (1.x/2.x); other keys (description, display_type) are
// skipped.
func (p *parser) recElement(i int, tok json.Token) error {
	el := recElement{at: "data[" + strconv.Itoa(i) + "]"}
	if i >= maxTests {
		return errorf(el.at, "the report has more than %d tests (the limit MaxTests)", maxTests)
	}
	if tok != json.Delim('{') {
		return errorf(el.at, "must be an object: a RecList test result (got %s)", p.marks.describe(tok))
	}
	p.rec.pending = p.rec.pending[:0]
	err := p.s.members(func(key string) error {
		switch key {
		case "test_name", "name":
			return p.recName(&el, key)
		case "test_result", "result":
			return p.recResult(&el, key)
		}
		tok, err := p.s.token()
		if err != nil {
			return err
		}
		return p.s.skip(tok)
	})
	if err != nil {
		return err
	}
	return p.finishElement(&el)
}

func (p *parser) recName(el *recElement, key string) error {
	if err := p.elementVersion(el, key); err != nil {
		return err
	}
	at := el.at + "." + key
	if el.hasName {
		return errorf(at, "is given twice")
	}
	tok, err := p.s.token()
	if err != nil {
		return err
	}
	name, ok := tok.(string)
	if _, nf := p.marks.value(name); !ok || nf {
		return errorf(at, "must be a string: the test's name (got %s)", p.marks.describe(tok))
	}
	el.name, el.hasName = name, true
	return nil
}

func (p *parser) recResult(el *recElement, key string) error {
	if err := p.elementVersion(el, key); err != nil {
		return err
	}
	w := walker{s: p.s, where: el.at + "." + key}
	if el.hasResult {
		return errorf(w.where, "is given twice")
	}
	el.hasResult = true
	tok, err := p.s.token()
	if err != nil {
		return err
	}
	return p.walk(w, tok, "", 0)
}

// elementVersion checks that key belongs to the same RecList version as
// the element's other keys and the report's other elements.
func (p *parser) elementVersion(el *recElement, key string) error {
	v := FormatRecListV2
	if strings.HasPrefix(key, "test_") {
		v = FormatRecListV0
	}
	if el.version == "" {
		el.version, el.versionKey = v, key
	} else if el.version != v {
		return errorf(el.at, "mixes %s keys (%q) with %s keys (%q)", versionName(el.version), el.versionKey, versionName(v), key)
	}
	switch p.rec.version {
	case "":
		p.rec.version = v
		p.rec.versionBy = el.at + " is a " + versionName(v) + " one: a report cannot mix them"
	case v:
	default:
		return errorf(el.at, "is a %s test result (it has %q), but %s", versionName(v), key, p.rec.versionBy)
	}
	return nil
}

func versionName(f Format) string {
	if f == FormatRecListV0 {
		return "RecList 0.x"
	}
	return "RecList 1.x/2.x"
}

// finishElement checks an element once all of it is read, and adds its
// metrics under its name.
func (p *parser) finishElement(el *recElement) error {
	if el.version == "" {
		return errorf(el.at, `has neither "test_name" and "test_result" (RecList 0.x) nor "name" and "result" (RecList 1.x/2.x)`)
	}
	nameKey, resultKey := "name", "result"
	if el.version == FormatRecListV0 {
		nameKey, resultKey = "test_name", "test_result"
	}
	switch {
	case !el.hasName:
		return errorf(el.at, "has no %q: a test result needs its test's name", nameKey)
	case !el.hasResult:
		return errorf(el.at, "has no %q", resultKey)
	}
	at := el.at + "." + nameKey
	if why := checkName(el.name); why != "" {
		return errorf(at, "%s", why)
	}
	if prev, dup := p.rec.names[el.name]; dup {
		return errorf(at, "the test %s is given twice (also at %s): test names must be unique", quote(el.name), prev)
	}
	p.rec.names[el.name] = at
	for _, pm := range p.rec.pending {
		m := Metric{Key: el.name + pm.path, Test: el.name, Path: pm.path, Value: pm.value}
		if err := p.rec.add(m, el.at+"."+resultKey+pm.path); err != nil {
			return err
		}
	}
	return nil
}
