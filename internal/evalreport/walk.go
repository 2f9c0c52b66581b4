package evalreport

import (
	"encoding/json"
	"strings"
)

// walker reads a RecList result into metrics, one per numeric leaf.
type walker struct {
	s     *stream // the report, or a JSON document held in one of its strings
	where string  // document path of the result: data[3].result
	doc   string  // document path of the string whose JSON document s reads; "" for the report
}

// errorf makes an error about the value at path (relative to the result).
func (w walker) errorf(path, format string, args ...any) error {
	e := errorf(w.where+path, format, args...)
	if w.doc != "" {
		e.Why += " (in the JSON document held in the string at " + w.doc + ")"
	}
	return e
}

// walk normalises the value whose first token is tok, at path inside the
// result (depth segments deep): a number is a metric; true and false are
// 1 and 0; null is nothing; objects and arrays are walked; a string that
// holds a JSON document is walked as that document, and other strings are
// text, not metrics.
func (p *parser) walk(w walker, tok json.Token, path string, depth int) error {
	switch v := tok.(type) {
	case json.Number:
		return p.found(w, path, parseNumber(v))
	case bool:
		if v {
			return p.found(w, path, 1)
		}
		return p.found(w, path, 0)
	case string:
		if f, ok := p.marks.value(v); ok {
			return p.found(w, path, f)
		}
		return p.walkDocument(w, v, path, depth)
	case json.Delim:
		if v == '[' {
			return w.s.elements(func(i int, tok json.Token) error {
				child := path + Index(i)
				if err := p.checkChild(w, path, child, depth+1); err != nil {
					return err
				}
				return p.walk(w, tok, child, depth+1)
			})
		}
		return w.s.members(func(key string) error {
			// A key longer than a whole metric key is refused before a
			// segment is made of it.
			if len(path)+len(key)+1 >= maxKeyBytes {
				return w.errorf(path, "the key %s makes metric keys longer than %d bytes (the limit MaxKeyBytes)", quote(key), maxKeyBytes)
			}
			child := path + Segment(key)
			if err := p.checkChild(w, path, child, depth+1); err != nil {
				return err
			}
			tok, err := w.s.token()
			if err != nil {
				return err
			}
			return p.walk(w, tok, child, depth+1)
		})
	}
	return nil // null
}

// checkChild checks the path of a value inside a container at path.
func (p *parser) checkChild(w walker, path, child string, depth int) error {
	if depth > maxPathDepth {
		return w.errorf(path, "nests more than %d levels deep (the limit MaxPathDepth)", maxPathDepth)
	}
	if len(child) >= maxKeyBytes { // a test name takes one byte at least
		return w.errorf(child, "makes metric keys longer than %d bytes (the limit MaxKeyBytes)", maxKeyBytes)
	}
	return nil
}

// found records the metric at path.
func (p *parser) found(w walker, path string, v float64) error {
	if len(p.rec.metrics)+len(p.rec.pending) >= maxMetrics {
		return w.errorf(path, "the report has more than %d metrics (the limit MaxMetrics)", maxMetrics)
	}
	p.rec.pending = append(p.rec.pending, pendingMetric{path: path, value: v})
	return nil
}

// walkDocument walks the JSON document a string holds, as pandas' to_json
// writes results (`"{\"US\":0.051,\"DE\":0.047}"`), at the string's path. A
// string that is not an object, an array or a number in JSON is text:
// skipped, not an error.
func (p *parser) walkDocument(w walker, s, path string, depth int) error {
	if !looksLikeDocument(s) {
		return nil
	}
	if int64(len(s)) > maxStringBytes {
		return w.errorf(path, "holds a JSON document of %d bytes, more than %d (the limit MaxStringBytes)", len(s), maxStringBytes)
	}
	// Check it all first: half a document walked, then found not to be
	// JSON, would have added metrics from text.
	if !json.Valid(rewriteForValidation(s)) {
		return nil
	}
	es := newStreamSize(strings.NewReader(s), p.marks, min(len(s), readBufferSize), 0)
	inner := walker{s: es, where: w.where, doc: w.where + path}
	tok, err := es.token()
	if err != nil {
		return inner.errorf(path, "%v", err)
	}
	if err := p.walk(inner, tok, path, depth); err != nil {
		return err
	}
	return es.end()
}

// looksLikeDocument reports whether s starts like a JSON object, array or
// number (NaN and Infinity included), so that plain text is not rewritten
// and validated for nothing.
func looksLikeDocument(s string) bool {
	t := strings.TrimLeft(s, " \t\r\n")
	if t == "" {
		return false
	}
	switch c := t[0]; {
	case c == '{', c == '[', c == '-', '0' <= c && c <= '9':
		return true
	}
	return strings.HasPrefix(t, "NaN") || strings.HasPrefix(t, "Infinity")
}
