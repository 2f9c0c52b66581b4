package evalreport

import (
	"encoding/json"
	"errors"
)

// parser reads one report. Because it streams, it cannot look ahead to
// learn the format: it reads each top-level key as it comes, into the
// state of the format that key belongs to, and decides at the end. A
// "data" key makes a report RecList's, whatever came before it.
type parser struct {
	s     *stream
	marks markers
	want  Format // as asked for; "" to detect

	hasData, hasMetrics bool // the top-level keys were present
	rec                 recState
	slip                slipState
}

// metricSet collects metrics with unique keys.
type metricSet struct {
	metrics []Metric
	keys    map[string]struct{}
}

// add appends m; where is the document path of its value, for messages.
func (ms *metricSet) add(m Metric, where string) error {
	if len(m.Key) > maxKeyBytes {
		return errorf(where, "the metric key %s is %d bytes long, more than %d (the limit MaxKeyBytes)", quote(m.Key), len(m.Key), maxKeyBytes)
	}
	if _, dup := ms.keys[m.Key]; dup {
		return errorf(where, "the metric key %s is given twice: keys must be unique", quote(m.Key))
	}
	if len(ms.metrics) >= maxMetrics {
		return errTooManyMetrics(where)
	}
	if ms.keys == nil {
		ms.keys = map[string]struct{}{}
	}
	ms.keys[m.Key] = struct{}{}
	ms.metrics = append(ms.metrics, m)
	return nil
}

func errTooManyMetrics(where string) error {
	return errorf(where, "the report has more than %d metrics (the limit MaxMetrics)", maxMetrics)
}

func (p *parser) parse() (Report, error) {
	tok, err := p.s.token()
	if err != nil {
		return Report{}, err
	}
	if tok != json.Delim('{') {
		return Report{}, errorf("", "a report is a JSON object, not %s", p.marks.describe(tok))
	}
	if err := p.s.members(p.topMember); err != nil {
		return Report{}, err
	}
	if err := p.s.end(); err != nil {
		return Report{}, err
	}
	return p.result()
}

// topMember reads the value of one top-level key. Keys of no format, and
// keys of the format the report is not, are skipped.
func (p *parser) topMember(key string) error {
	tok, err := p.s.token()
	if err != nil {
		return err
	}
	switch key {
	case "data":
		p.hasData = true
	case "metrics":
		p.hasMetrics = true
	}
	switch {
	case key == "data" && p.want != FormatSlipway:
		return p.data(tok)
	case key == "metadata" && p.want != FormatSlipway:
		return p.metadata(tok)
	case slipwayKeys[key] && p.readsSlipway():
		return p.slipMember(key, tok)
	}
	return p.s.skip(tok)
}

// readsSlipway reports whether the report may still be Slipway's.
func (p *parser) readsSlipway() bool {
	switch p.want {
	case FormatSlipway:
		return true
	case "":
		return !p.hasData
	}
	return false
}

// slipMember reads a Slipway key. While the format is undecided, a
// problem is kept rather than returned: a "data" key may follow, making
// the report RecList's, for which this key means nothing.
func (p *parser) slipMember(key string, tok json.Token) error {
	if p.slip.err != nil {
		return p.s.skip(tok) // the report is rejected if it is Slipway's
	}
	err := p.slipSection(key, tok)
	if err == nil || p.want == FormatSlipway || p.errFatal(err) {
		return err
	}
	p.slip.err = err
	return p.s.skipTo(1) // the rest of this top-level value
}

// errFatal reports whether err must end parsing at once, whatever the
// format turns out to be: the body is not JSON, breaks a limit of the
// stream, or could not be read.
func (p *parser) errFatal(err error) bool {
	var e *Error
	return p.s.err != nil || !errors.As(err, &e)
}

// result decides the format and returns what was read for it.
func (p *parser) result() (Report, error) {
	format := p.want
	if format == "" {
		switch {
		case p.hasData:
			format = p.rec.version
			if format == "" {
				format = FormatRecListV2 // an empty data array: today's RecList
			}
		case p.hasMetrics:
			format = FormatSlipway
		default:
			return Report{}, errorf("", `no recognisable shape: expected Slipway's {"metrics": …} or a RecList report {"metadata": …, "data": [...]}`)
		}
	}
	if format == FormatSlipway {
		return p.slipReport()
	}
	return p.recReport(format)
}
