package evalreport

import (
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/slipway-ml/slipway/internal/errs"
)

// Format names a report format.
type Format string

// The formats Parse reads.
const (
	FormatSlipway   Format = "slipway"    // Slipway's own JSON: {"metrics": {…}, "slices": {…}, "tests": [...]}
	FormatRecListV0 Format = "reclist-v0" // RecList 0.x: data[] of {test_name, description, test_result}
	FormatRecListV2 Format = "reclist-v2" // RecList 1.x/2.x: data[] of {name, description, result, display_type}
)

// Limits. Each breach is an *Error that names the limit.
const (
	// MaxMetrics bounds the metrics of one report.
	MaxMetrics = 100_000
	// MaxTests bounds the tests of one report: the elements of a RecList
	// report's data, or a Slipway report's behavioural tests.
	MaxTests = 10_000
	// MaxKeyBytes bounds a metric key (test name and path together) and a
	// behavioural test's name.
	MaxKeyBytes = 512
	// MaxPathDepth bounds the segments of a metric's path: how deeply a
	// RecList result nests.
	MaxPathDepth = 8
	// MaxStringBytes bounds every JSON string of a report, and so a JSON
	// document held in a string. It is checked while the report streams
	// in, before the decoder has buffered more than that of one string.
	MaxStringBytes = 16 << 20
	// MaxNesting bounds how deeply any value of a report nests, including
	// the parts that Parse ignores: the decoder keeps state per level, so
	// without a bound a body of "[[[[…" would grow memory with its size.
	MaxNesting = 64
	// MaxMetaBytes is where Parse cuts a Meta value.
	MaxMetaBytes = 256
	// MaxMessageBytes is where Parse cuts a behavioural test's message.
	MaxMessageBytes = 1024
)

// The limits Parse applies: variables, so tests can lower them.
var (
	maxMetrics     = MaxMetrics
	maxTests       = MaxTests
	maxKeyBytes    = MaxKeyBytes
	maxPathDepth   = MaxPathDepth
	maxStringBytes = int64(MaxStringBytes)
	maxNesting     = MaxNesting
)

// Metric is one normalised numeric value.
type Metric struct {
	Key   string  // the address policies use: Test + Path, e.g. `HIT_RATE`, `MRED_COUNTRY.mred`, `HITS_BY_SLICE["(0, 5]"].hit_rate`
	Test  string  // the test (RecList) or metric (Slipway) the value belongs to
	Path  string  // "" for a scalar result, else the path inside it: `.mred`, `["(0, 5]"].hit_rate`, `[3]`
	Value float64 // NaN, +Inf or -Inf when the report said so
}

// Test is a behavioural test with a pass/fail outcome.
type Test struct {
	Name    string
	Passed  bool
	Message string // "" when the report gave none; cut to MaxMessageBytes
}

// Report is a parsed, normalised evaluation report.
type Report struct {
	Format  Format
	Metrics []Metric // in document order; keys unique
	Tests   []Test   // behavioural tests (Slipway format only; RecList has none)
	// Meta holds a few descriptive fields when present, each cut to
	// MaxMetaBytes: RecList metadata's model_name, reclist, run_time and
	// finish_time (a number as written); Slipway's model, suite and notes.
	// It is nil when there are none.
	Meta map[string]string
}

// Error says where and why a report is unusable. It unwraps to
// errs.ErrUnprocessable: the body was read, but it is not a report
// Slipway can use.
type Error struct {
	Where string // JSON path of the offending value, e.g. data[2].result; "" for the report as a whole
	Why   string
}

func (e *Error) Error() string {
	if e.Where == "" {
		return "report: " + e.Why
	}
	return "report: " + e.Where + ": " + e.Why
}

func (e *Error) Unwrap() error { return errs.ErrUnprocessable }

func errorf(where, format string, args ...any) *Error {
	return &Error{Where: where, Why: fmt.Sprintf(format, args...)}
}

// ParseFormat reads a format name: "" (detect it), "slipway", "reclist-v0"
// or "reclist-v2".
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case "", FormatSlipway, FormatRecListV0, FormatRecListV2:
		return f, nil
	}
	return "", errs.Invalid("format", "must be %q, %q or %q, or empty to detect it (got %s)",
		FormatSlipway, FormatRecListV0, FormatRecListV2, quote(s))
}

// Parse reads one report from r and normalises it. With format "" it
// detects the format; an explicit format wins, and the body must then have
// that shape.
//
// Parse streams: memory grows with the normalised output, not with the
// report. On success it has read r to its end, so a caller hashing what it
// reads has hashed every byte. An unusable report is an *Error (which
// unwraps to errs.ErrUnprocessable); an error reading r is returned
// wrapped, as it was; an unknown format is an *errs.FieldError.
func Parse(r io.Reader, format Format) (Report, error) {
	if _, err := ParseFormat(string(format)); err != nil {
		return Report{}, err
	}
	p := &parser{want: format, marks: newMarkers()}
	p.s = newStream(r, p.marks, maxStringBytes)
	return p.parse()
}

// quote quotes user input for a message, cut to a readable length.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q…", cut(s, max))
	}
	return fmt.Sprintf("%q", s)
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// describe names a value by its first token, for messages: `true`,
// `the string "0.3"`, `an object`, `NaN`.
func (m markers) describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return "an object"
	case string:
		if f, ok := m.value(v); ok {
			return nonfiniteText(f)
		}
		return "the string " + quote(v)
	case json.Number:
		return cut(string(v), 64)
	case bool:
		return fmt.Sprint(v)
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}
