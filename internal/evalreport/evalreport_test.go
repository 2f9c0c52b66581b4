package evalreport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/slipway-ml/slipway/internal/errs"
)

func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t *testing.T, body string, f Format) Report {
	t.Helper()
	r, err := Parse(strings.NewReader(body), f)
	if err != nil {
		t.Fatalf("Parse: %v\nbody: %s", err, body)
	}
	return r
}

// parseError parses a report that must be refused and returns the *Error.
func parseError(t *testing.T, body string, f Format) *Error {
	t.Helper()
	_, err := Parse(strings.NewReader(body), f)
	if err == nil {
		t.Fatalf("Parse accepted %s", body)
	}
	if !errors.Is(err, errs.ErrUnprocessable) {
		t.Fatalf("error %v (%T) does not unwrap to errs.ErrUnprocessable", err, err)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	return e
}

func m(key, test, path string, v float64) Metric {
	return Metric{Key: key, Test: test, Path: path, Value: v}
}

// s is a metric with a scalar result.
func s(key string, v float64) Metric { return m(key, key, "", v) }

func sameValue(a, b float64) bool {
	return a == b && math.Signbit(a) == math.Signbit(b) || math.IsNaN(a) && math.IsNaN(b)
}

// diffMetrics describes how got differs from want, "" if it does not.
func diffMetrics(got, want []Metric) string {
	var b strings.Builder
	for i := 0; i < max(len(got), len(want)); i++ {
		switch {
		case i >= len(got):
			fmt.Fprintf(&b, "\n  missing [%d] %+v", i, want[i])
		case i >= len(want):
			fmt.Fprintf(&b, "\n  extra   [%d] %+v", i, got[i])
		case got[i].Key != want[i].Key || got[i].Test != want[i].Test || got[i].Path != want[i].Path || !sameValue(got[i].Value, want[i].Value):
			fmt.Fprintf(&b, "\n  [%d] got  %+v\n      want %+v", i, got[i], want[i])
		}
	}
	return b.String()
}

func checkMetrics(t *testing.T, got, want []Metric) {
	t.Helper()
	if d := diffMetrics(got, want); d != "" {
		t.Errorf("metrics differ:%s", d)
	}
}

func checkMeta(t *testing.T, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("Meta = %q, want %q", got, want)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Meta[%q] = %q, want %q", k, got[k], v)
		}
	}
}

// v2 is a RecList 2.x report of one test T with the given result.
func v2(result string) string {
	return `{"metadata": {"reclist": "R"}, "data": [{"name": "T", "description": "", "result": ` + result + `, "display_type": "None"}]}`
}

func setLimit[T any](t *testing.T, limit *T, v T) {
	t.Helper()
	old := *limit
	*limit = v
	t.Cleanup(func() { *limit = old })
}

func TestParseRecListSamples(t *testing.T) {
	for _, tc := range []struct {
		file   string
		format Format
		want   []Metric
		meta   map[string]string
	}{{
		file:   "reclist-v0-report.json",
		format: FormatRecListV0,
		want: []Metric{
			m("stats.training_set_size", "stats", ".training_set_size", 90000),
			m("stats.test_set_size", "stats", ".test_set_size", 10000),
			m("stats.num_non_null_predictions", "stats", ".num_non_null_predictions", 9987),
			s("HR@10", 0.1132), // a test name is never quoted, even when it is not an identifier
			m(`HITS_BY_SLICE["(0, 5]"].hit_rate`, "HITS_BY_SLICE", `["(0, 5]"].hit_rate`, 0.031),
			m(`HITS_BY_SLICE["(5, 50]"].hit_rate`, "HITS_BY_SLICE", `["(5, 50]"].hit_rate`, 0.094),
			m(`HITS_BY_SLICE["(50, 1000]"].hit_rate`, "HITS_BY_SLICE", `["(50, 1000]"].hit_rate`, 0.182),
			s("Coverage@10", 0.0842),
			m("MRR_BY_COUNTRY.US", "MRR_BY_COUNTRY", ".US", 0.051), // pandas' JSON in a string
			m("MRR_BY_COUNTRY.DE", "MRR_BY_COUNTRY", ".DE", 0.047),
		},
		meta: map[string]string{"model_name": "LSTMRecModel", "reclist": "CoveoCartRecList", "run_time": "1763604765000"},
	}, {
		file:   "reclist-v2-report.json",
		format: FormatRecListV2,
		want: []Metric{
			s("HIT_RATE", 0.2141),
			s("MRR", 0.0458),
			m("MRED_COUNTRY.mred", "MRED_COUNTRY", ".mred", -0.0061),
			m("MRED_COUNTRY.mr", "MRED_COUNTRY", ".mr", 0.786),
			m("MRED_COUNTRY.US", "MRED_COUNTRY", ".US", 0.781),
			m("MRED_COUNTRY.DE", "MRED_COUNTRY", ".DE", 0.792),
			m("MRED_COUNTRY.UK", "MRED_COUNTRY", ".UK", 0.779),
			m("MRED_COUNTRY.IT", "MRED_COUNTRY", ".IT", 0.801),
			s("BEING_LESS_WRONG", 0.297),
			s("POPULARITY_BIAS", 0.0011),
			m("HITS_DISTRIBUTION[0]", "HITS_DISTRIBUTION", "[0]", 0.02),
			m("HITS_DISTRIBUTION[1]", "HITS_DISTRIBUTION", "[1]", 0.11),
			m("HITS_DISTRIBUTION[2]", "HITS_DISTRIBUTION", "[2]", 0.19),
			m("HITS_DISTRIBUTION[3]", "HITS_DISTRIBUTION", "[3]", 0.31),
			m("HITS_DISTRIBUTION[4]", "HITS_DISTRIBUTION", "[4]", 0.37),
		},
		meta: map[string]string{"model_name": "SessionRecsTwoTower", "reclist": "DFSessionRecList", "finish_time": "2026-11-20 03:12:45"},
	}} {
		body := string(sample(t, tc.file))
		for _, asked := range []Format{"", tc.format} {
			t.Run(tc.file+"/"+string(asked), func(t *testing.T) {
				r := mustParse(t, body, asked)
				if r.Format != tc.format {
					t.Errorf("Format = %q, want %q", r.Format, tc.format)
				}
				checkMetrics(t, r.Metrics, tc.want)
				checkMeta(t, r.Meta, tc.meta)
				if r.Tests != nil {
					t.Errorf("Tests = %v, want none", r.Tests)
				}
				for _, mt := range r.Metrics {
					if test, path := SplitKey(mt.Key); test != mt.Test || path != mt.Path {
						t.Errorf("SplitKey(%q) = %q, %q; want %q, %q", mt.Key, test, path, mt.Test, mt.Path)
					}
				}
			})
		}
	}
}

func TestParseSlipway(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes: Meta cuts it at 256, between runes
	body := `{
	  "format": "slipway/v1",
	  "metrics": {"hit_rate": 0.214, "mrr": 0.0458, "HR@10": 1e-3, "nan_rate": NaN, "loss": -Infinity},
	  "slices": {
	    "country=US": {"hit_rate": 0.21, "mrr": Infinity},
	    "country=DE": {"hit_rate": 0.19},
	    "US": {"hit_rate": 0.5},
	    "say \"hi\"\\": {"hit_rate": 0}
	  },
	  "tests": [
	    {"name": "no_empty_recommendations", "passed": true},
	    {"name": "gender_invariance", "passed": false, "message": "3% of pairs changed", "extra": [NaN]},
	    {"name": "with null message", "message": null, "passed": true}
	  ],
	  "model": "two-tower", "suite": "nightly", "notes": "` + long + `",
	  "unknown": {"anything": [1, "NaN", NaN]}
	}`
	r := mustParse(t, body, "")
	if r.Format != FormatSlipway {
		t.Errorf("Format = %q", r.Format)
	}
	checkMetrics(t, r.Metrics, []Metric{
		s("hit_rate", 0.214),
		s("mrr", 0.0458),
		s("HR@10", 0.001),
		s("nan_rate", math.NaN()),
		s("loss", math.Inf(-1)),
		m(`hit_rate["country=US"]`, "hit_rate", `["country=US"]`, 0.21),
		m(`mrr["country=US"]`, "mrr", `["country=US"]`, math.Inf(1)),
		m(`hit_rate["country=DE"]`, "hit_rate", `["country=DE"]`, 0.19),
		m(`hit_rate.US`, "hit_rate", `.US`, 0.5),
		m(`hit_rate["say \"hi\"\\"]`, "hit_rate", `["say \"hi\"\\"]`, 0),
	})
	wantTests := []Test{
		{Name: "no_empty_recommendations", Passed: true},
		{Name: "gender_invariance", Passed: false, Message: "3% of pairs changed"},
		{Name: "with null message", Passed: true},
	}
	if fmt.Sprint(r.Tests) != fmt.Sprint(wantTests) {
		t.Errorf("Tests = %+v\nwant %+v", r.Tests, wantTests)
	}
	checkMeta(t, r.Meta, map[string]string{"model": "two-tower", "suite": "nightly", "notes": strings.Repeat("é", 128)})

	// The smallest report; optional keys may be null.
	r = mustParse(t, `{"metrics": {}, "slices": null, "tests": null, "format": null, "model": null}`, "")
	if r.Format != FormatSlipway || len(r.Metrics) != 0 || len(r.Tests) != 0 || r.Meta != nil {
		t.Errorf("got %+v", r)
	}

	// A message is cut.
	r = mustParse(t, `{"metrics": {}, "tests": [{"name": "t", "passed": true, "message": "`+strings.Repeat("m", 2000)+`"}]}`, FormatSlipway)
	if got := len(r.Tests[0].Message); got != MaxMessageBytes {
		t.Errorf("message of %d bytes, want %d", got, MaxMessageBytes)
	}
}

func TestParseFormat(t *testing.T) {
	for _, s := range []string{"", "slipway", "reclist-v0", "reclist-v2"} {
		if f, err := ParseFormat(s); err != nil || string(f) != s {
			t.Errorf("ParseFormat(%q) = %q, %v", s, f, err)
		}
	}
	for _, s := range []string{"Slipway", "reclist", "reclist-v1", "slipway/v1", " slipway"} {
		_, err := ParseFormat(s)
		var fe *errs.FieldError
		if !errors.As(err, &fe) || fe.Field != "format" || !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("ParseFormat(%q) = %v, want a FieldError for format", s, err)
		}
		// Parse refuses it before reading anything.
		if _, err := Parse(strings.NewReader(`{"metrics": {}}`), Format(s)); !errors.As(err, &fe) {
			t.Errorf("Parse with format %q = %v, want a FieldError", s, err)
		}
	}
}

func TestDetection(t *testing.T) {
	v0 := string(sample(t, "reclist-v0-report.json"))
	v2r := string(sample(t, "reclist-v2-report.json"))
	for _, tc := range []struct {
		name, body string
		asked      Format
		want       Format
		metrics    []Metric
	}{
		{"v0", v0, "", FormatRecListV0, nil},
		{"v2", v2r, "", FormatRecListV2, nil},
		{"v0 asked", v0, FormatRecListV0, FormatRecListV0, nil},
		{"v2 asked", v2r, FormatRecListV2, FormatRecListV2, nil},
		{"data before metadata", `{"data": [{"result": 1, "name": "A"}], "metadata": {"reclist": "R"}}`, "", FormatRecListV2, []Metric{s("A", 1)}},
		{"no metadata", `{"data": [{"test_result": 1, "test_name": "A"}]}`, "", FormatRecListV0, []Metric{s("A", 1)}},
		{"empty data", `{"metadata": {}, "data": []}`, "", FormatRecListV2, []Metric{}},
		{"empty data asked v0", `{"data": []}`, FormatRecListV0, FormatRecListV0, []Metric{}},
		{"metrics and data: RecList", `{"metrics": {"a": 1}, "data": [{"name": "A", "result": 2}]}`, "", FormatRecListV2, []Metric{s("A", 2)}},
		{"bad metrics and data: RecList", `{"metrics": {"a": "x"}, "tests": 3, "data": [{"name": "A", "result": 2}], "format": 1}`, "", FormatRecListV2, []Metric{s("A", 2)}},
		{"data and metrics asked slipway", `{"data": 7, "metrics": {"a": 1}}`, FormatSlipway, FormatSlipway, []Metric{s("a", 1)}},
		{"metrics and data asked v2", `{"metrics": 7, "data": [{"name": "A", "result": 2}]}`, FormatRecListV2, FormatRecListV2, []Metric{s("A", 2)}},
		{"tests before metrics", `{"tests": [{"name": "t", "passed": true}], "slices": {"s": {"a": 2}}, "metrics": {"a": 1}}`, "", FormatSlipway, []Metric{m(`a.s`, "a", ".s", 2), s("a", 1)}},
		{"unknown keys", `{"x": {"y": [NaN, {"z": null}]}, "metrics": {"a": 1}, "metadata": 3}`, "", FormatSlipway, []Metric{s("a", 1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustParse(t, tc.body, tc.asked)
			if r.Format != tc.want {
				t.Errorf("Format = %q, want %q", r.Format, tc.want)
			}
			if tc.metrics != nil {
				checkMetrics(t, r.Metrics, tc.metrics)
			}
		})
	}
}

func TestExplicitFormatMismatch(t *testing.T) {
	v0 := string(sample(t, "reclist-v0-report.json"))
	v2r := string(sample(t, "reclist-v2-report.json"))
	slip := `{"metrics": {"a": 1}}`
	for _, tc := range []struct {
		name, body string
		asked      Format
		want       string
	}{
		{"v0 as v2", v0, FormatRecListV2, `report: data[0]: is a RecList 0.x test result (it has "test_name"), but the format "reclist-v2" was asked for`},
		{"v2 as v0", v2r, FormatRecListV0, `report: data[0]: is a RecList 1.x/2.x test result (it has "name"), but the format "reclist-v0" was asked for`},
		{"RecList as Slipway", v2r, FormatSlipway, `report: metrics: is required: the format "slipway" was asked for, and this looks like a RecList report (it has "data")`},
		{"Slipway as RecList", slip, FormatRecListV0, `report: data: is required: the format "reclist-v0" was asked for, and this looks like a Slipway report (it has "metrics" and no "data")`},
		{"nothing as Slipway", `{}`, FormatSlipway, `report: metrics: is required: an object of metric name → number`},
		{"nothing as RecList", `{"metadata": {}}`, FormatRecListV2, `report: data: is required: an array of test results`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseError(t, tc.body, tc.asked).Error(); got != tc.want {
				t.Errorf("error\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestNormalise(t *testing.T) {
	for _, tc := range []struct {
		name, result string
		want         []Metric
	}{
		{"number", `0.5`, []Metric{s("T", 0.5)}},
		{"integer", `-3`, []Metric{s("T", -3)}},
		{"exponent", `1.5e-3`, []Metric{s("T", 0.0015)}},
		{"too large", `1e400`, []Metric{s("T", math.Inf(1))}},
		{"true", `true`, []Metric{s("T", 1)}},
		{"false", `false`, []Metric{s("T", 0)}},
		{"null", `null`, []Metric{}},
		{"object", `{"mred": -0.0061, "US": 0.781}`, []Metric{m("T.mred", "T", ".mred", -0.0061), m("T.US", "T", ".US", 0.781)}},
		{"nested", `{"(0, 5]": {"hit_rate": 0.031, "n": 4}}`, []Metric{
			m(`T["(0, 5]"].hit_rate`, "T", `["(0, 5]"].hit_rate`, 0.031), m(`T["(0, 5]"].n`, "T", `["(0, 5]"].n`, 4)}},
		{"array", `[0.02, 0.11]`, []Metric{m("T[0]", "T", "[0]", 0.02), m("T[1]", "T", "[1]", 0.11)}},
		{"arrays and objects", `[{"a": [1, [2]]}, [], {}, null, "text"]`, []Metric{m("T[0].a[0]", "T", "[0].a[0]", 1), m("T[0].a[1][0]", "T", "[0].a[1][0]", 2)}},
		{"awkward keys", `{"": 1, "1st": 2, "a.b": 3, "q\"b\\": 4, "día": 5, "_x9": 6, "[0]": 7, "tab\t": 8}`, []Metric{
			m(`T[""]`, "T", `[""]`, 1), m(`T["1st"]`, "T", `["1st"]`, 2), m(`T["a.b"]`, "T", `["a.b"]`, 3),
			m(`T["q\"b\\"]`, "T", `["q\"b\\"]`, 4), m(`T["día"]`, "T", `["día"]`, 5), m(`T._x9`, "T", `._x9`, 6),
			m(`T["[0]"]`, "T", `["[0]"]`, 7), m(`T["tab\t"]`, "T", `["tab\t"]`, 8)}},
		{"text", `"n/a"`, []Metric{}},
		{"empty string", `""`, []Metric{}},
		{"JSON object in a string", `"{\"US\":0.051,\"DE\":0.047}"`, []Metric{m("T.US", "T", ".US", 0.051), m("T.DE", "T", ".DE", 0.047)}},
		{"JSON array in a string", `" [1, 2] "`, []Metric{m("T[0]", "T", "[0]", 1), m("T[1]", "T", "[1]", 2)}},
		{"JSON number in a string", `"0.25"`, []Metric{s("T", 0.25)}},
		{"pandas DataFrame in a string", `"{\"hit_rate\":{\"0\":0.1,\"1\":0.2},\"country\":{\"0\":\"US\",\"1\":\"DE\"}}"`, []Metric{
			m(`T.hit_rate["0"]`, "T", `.hit_rate["0"]`, 0.1), m(`T.hit_rate["1"]`, "T", `.hit_rate["1"]`, 0.2)}},
		{"JSON in JSON in a string", `{"a": "{\"b\": \"[1]\"}"}`, []Metric{m("T.a.b[0]", "T", ".a.b[0]", 1)}},
		{"not JSON in a string", `"{not json}"`, []Metric{}},
		{"cut JSON in a string", `"[1, 2"`, []Metric{}},
		{"two values in a string", `"1 2"`, []Metric{}},
		{"a JSON string in a string", `"\"0.5\""`, []Metric{}},
		{"a JSON boolean in a string", `"true"`, []Metric{}},
		{"half a document in a string is not half read", `"{\"a\": 1, \"a\": 2, oops}"`, []Metric{}},
		{"NaN key in a string", `"{NaN: 1}"`, []Metric{}},
		{"eight levels", `{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":1}}}}}}}}`, []Metric{m("T.a.a.a.a.a.a.a.a", "T", ".a.a.a.a.a.a.a.a", 1)}},
		{"eight levels and an empty ninth", `[[[[[[[[[]]]]]]]]]`, []Metric{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustParse(t, v2(tc.result), "")
			checkMetrics(t, r.Metrics, tc.want)
		})
	}
}

func TestNormaliseKeyOrder(t *testing.T) {
	// The result may come before the name, in both versions.
	r := mustParse(t, `{"data": [{"result": {"a": 1}, "display_type": "x", "name": "A"}, {"name": "B", "result": 2}]}`, "")
	checkMetrics(t, r.Metrics, []Metric{m("A.a", "A", ".a", 1), s("B", 2)})
	r = mustParse(t, `{"data": [{"test_result": [3], "test_name": "A"}]}`, "")
	checkMetrics(t, r.Metrics, []Metric{m("A[0]", "A", "[0]", 3)})
}

func TestNonfiniteValues(t *testing.T) {
	nan, inf, ninf := math.NaN(), math.Inf(1), math.Inf(-1)
	for _, tc := range []struct {
		name, body string
		want       []Metric
	}{
		{"Slipway top level", `{"metrics": {"a": NaN, "b": Infinity, "c": -Infinity}}`, []Metric{s("a", nan), s("b", inf), s("c", ninf)}},
		{"Slipway slices", `{"metrics": {}, "slices": {"s":{"a":NaN}}}`, []Metric{m("a.s", "a", ".s", nan)}},
		{"RecList scalar", v2(`NaN`), []Metric{s("T", nan)}},
		{"RecList nested", v2(`{"x": [Infinity, {"y": -Infinity}], "z": NaN}`), []Metric{m("T.x[0]", "T", ".x[0]", inf), m("T.x[1].y", "T", ".x[1].y", ninf), m("T.z", "T", ".z", nan)}},
		{"in a JSON document in a string", v2(`"{\"US\": NaN, \"DE\": [Infinity,-Infinity]}"`), []Metric{m("T.US", "T", ".US", nan), m("T.DE[0]", "T", ".DE[0]", inf), m("T.DE[1]", "T", ".DE[1]", ninf)}},
		{"a string that is NaN in JSON", v2(`"NaN"`), []Metric{s("T", nan)}},
		{"a string that is -Infinity in JSON", v2(`" -Infinity"`), []Metric{s("T", ninf)}},
		{"white space around", "{\"metrics\":{\"a\":\n\tNaN\r\n,\"b\":Infinity}}", []Metric{s("a", nan), s("b", inf)}},
		{"no white space", `{"data":[{"name":"A","result":[NaN,Infinity,-Infinity]}]}`, []Metric{m("A[0]", "A", "[0]", nan), m("A[1]", "A", "[1]", inf), m("A[2]", "A", "[2]", ninf)}},
		{"not inside strings", `{"data": [{"name": "NaN", "description": "NaN is fine, so is \"Infinity\" and \\", "result": NaN},
			{"name": "Infinity", "result": "-Infinity is text here \" NaN"}, {"name": "C", "result": {"NaN": 1, "a\"NaN": 2, "\\": NaN}}]}`,
			[]Metric{s("NaN", nan), m(`C.NaN`, "C", ".NaN", 1), m(`C["a\"NaN"]`, "C", `["a\"NaN"]`, 2), m(`C["\\"]`, "C", `["\\"]`, nan)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustParse(t, tc.body, "")
			checkMetrics(t, r.Metrics, tc.want)
			// The same, a byte at a time: tokens split across reads.
			r1, err := Parse(iotest.OneByteReader(strings.NewReader(tc.body)), "")
			if err != nil {
				t.Fatalf("one byte at a time: %v", err)
			}
			checkMetrics(t, r1.Metrics, tc.want)
		})
	}

	// Strings stay strings.
	r := mustParse(t, `{"metrics": {}, "notes": "NaN Infinity -Infinity", "model": "\"NaN\""}`, "")
	checkMeta(t, r.Meta, map[string]string{"notes": "NaN Infinity -Infinity", "model": `"NaN"`})
	r = mustParse(t, `{"metadata": {"model_name": "NaN", "run_time": NaN}, "data": []}`, "")
	checkMeta(t, r.Meta, map[string]string{"model_name": "NaN", "run_time": "NaN"})
}

func TestNonfiniteRefused(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"lower case", `{"metrics": {"a": nan}}`, "not JSON: invalid character 'a' in literal null (expecting 'u'), in the value that starts at byte 18"},
		{"+Infinity", `{"metrics": {"a": +Infinity}}`, "not JSON: invalid character '+' looking for beginning of value at byte 18"},
		{"-NaN", `{"metrics": {"a": -NaN}}`, "not JSON: invalid character 'N' in numeric literal, in the value that starts at byte 18"},
		{"NaNs", `{"metrics": {"a": NaNs}}`, "not JSON: invalid character 'N' looking for beginning of value at byte 18"},
		{"Infinityy", `{"metrics": {"a": Infinityy}}`, "not JSON: invalid character 'I' looking for beginning of value at byte 18"},
		{"NaN1", `{"metrics": {"a": NaN1}}`, "not JSON: invalid character 'N' looking for beginning of value at byte 18"},
		{"as a key", `{"metrics": {NaN: 1}}`, "not JSON: NaN, Infinity and -Infinity are numbers and cannot be object keys, at byte 13"},
		{"as a key, ignored", `{"x": {-Infinity: 1}, "metrics": {}}`, "not JSON: NaN, Infinity and -Infinity are numbers and cannot be object keys, at byte 7"},
		{"as a top-level key", `{Infinity: 1}`, "not JSON: NaN, Infinity and -Infinity are numbers and cannot be object keys, at byte 1"},
		{"as the report", `NaN`, "a report is a JSON object, not NaN"},
		{"as a name", `{"data": [{"name": NaN, "result": 1}]}`, "data[0].name: must be a string: the test's name (got NaN)"},
		{"as a test name", `{"metrics": {}, "tests": [{"name": Infinity, "passed": true}]}`, "tests[0].name: must be a string (got Infinity)"},
		{"as a model", `{"metrics": {}, "model": -Infinity}`, "model: must be a string (got -Infinity)"},
		{"as passed", `{"metrics": {}, "tests": [{"name": "t", "passed": NaN}]}`, "tests[0].passed: must be true or false (got NaN)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := parseError(t, tc.body, "")
			if got := strings.TrimPrefix(e.Error(), "report: "); got != tc.want {
				t.Errorf("error\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		asked      Format
		want       string // the error without "report: "
	}{
		// Not a JSON object.
		{"empty body", ``, "", "the body is empty: a report is a JSON object"},
		{"white space", " \n\t ", "", "the body is empty: a report is a JSON object"},
		{"not JSON", `{"metrics": {"hit_rate": x}}`, "", "not JSON: invalid character 'x' looking for beginning of value at byte 25"},
		{"not JSON after white space", `{"metrics": {` + strings.Repeat("\n ", 1000) + `x}}`, "", "not JSON: invalid character 'x' at byte 2013"},
		{"not JSON after NaN", `{"metrics": {"a": NaN, "b": NaN, "c": x}}`, "", "not JSON: invalid character 'x' looking for beginning of value at byte 38"},
		{"bad literal", `{"metrics": {"a": tru}}`, "", "not JSON: invalid character '}' in literal true (expecting 'e'), in the value that starts at byte 18"},
		{"single quotes", `{'metrics': {}}`, "", "not JSON: invalid character '\\'' at byte 1"},
		{"cut short", `{"metrics": {"a": 1`, "", "not JSON: the input ends at byte 19, inside a value: the report is cut short"},
		{"cut short in a string", `{"metrics": {"a`, "", "not JSON: the input ends at byte 15, inside a value: the report is cut short"},
		{"top-level array", `[{"metrics": {}}]`, "", "a report is a JSON object, not an array"},
		{"top-level string", `"report"`, "", `a report is a JSON object, not the string "report"`},
		{"top-level number", `42`, "", "a report is a JSON object, not 42"},
		{"trailing garbage", `{"metrics": {}} x`, "", "trailing data after the JSON object: invalid character 'x' looking for beginning of value at byte 16"},
		{"trailing object", `{"metrics": {}}{}`, "", "trailing data after the JSON object, which ends at byte 15: an object"},
		{"trailing NaN", `{"metrics": {}} NaN`, "", "trailing data after the JSON object, which ends at byte 15: NaN"},
		{"trailing comma", `{"metrics": {}},`, "", "trailing data after the JSON object: invalid character ',' looking for beginning of value at byte 15"},
		{"unknown shape", `{"results": {"a": 1}}`, "", `no recognisable shape: expected Slipway's {"metrics": …} or a RecList report {"metadata": …, "data": [...]}`},
		{"empty object", `{}`, "", `no recognisable shape: expected Slipway's {"metrics": …} or a RecList report {"metadata": …, "data": [...]}`},
		{"metadata only", `{"metadata": {"reclist": "R"}}`, "", `no recognisable shape: expected Slipway's {"metrics": …} or a RecList report {"metadata": …, "data": [...]}`},

		// RecList.
		{"data not an array", `{"data": {"name": "A"}}`, "", "data: must be an array of test results (got an object)"},
		{"data null", `{"data": null}`, "", "data: must be an array of test results (got null)"},
		{"data twice", `{"data": [], "data": []}`, "", "data: is given twice"},
		{"element not an object", `{"data": [{"name": "A", "result": 1}, 3]}`, "", "data[1]: must be an object: a RecList test result (got 3)"},
		{"element of neither version", `{"data": [{"description": "x"}]}`, "", `data[0]: has neither "test_name" and "test_result" (RecList 0.x) nor "name" and "result" (RecList 1.x/2.x)`},
		{"no name", `{"data": [{"result": 1}]}`, "", `data[0]: has no "name": a test result needs its test's name`},
		{"no test_result", `{"data": [{"test_name": "A", "description": ""}]}`, "", `data[0]: has no "test_result"`},
		{"name not a string", `{"data": [{"name": 3, "result": 1}]}`, "", "data[0].name: must be a string: the test's name (got 3)"},
		{"name twice", `{"data": [{"name": "A", "name": "B", "result": 1}]}`, "", "data[0].name: is given twice"},
		{"result twice", `{"data": [{"name": "A", "result": 1, "result": 2}]}`, "", "data[0].result: is given twice"},
		{"empty name", `{"data": [{"name": " ", "result": 1}]}`, "", "data[0].name: must not be empty or only white space"},
		{"control character in a name", `{"data": [{"name": "A\u0000", "result": 1}]}`, "", `data[0].name: "A\x00" holds a control character (U+0000 at byte 1)`},
		{"name with a path", `{"data": [{"name": "HITS.at_10", "result": 1}]}`, "", `data[0].name: "HITS.at_10" cannot name a test: its metrics' keys would read as test "HITS" with path ".at_10"; a name must not end in .name, ["…"] or [n]`},
		{"name with an index", `{"data": [{"test_name": "HR[10]", "test_result": 1}]}`, "", `data[0].test_name: "HR[10]" cannot name a test: its metrics' keys would read as test "HR" with path "[10]"; a name must not end in .name, ["…"] or [n]`},
		{"mixed keys in an element", `{"data": [{"test_name": "A", "result": 1}]}`, "", `data[0]: mixes RecList 0.x keys ("test_name") with RecList 1.x/2.x keys ("result")`},
		{"mixed versions", `{"data": [{"test_name": "A", "test_result": 1}, {"name": "B", "result": 2}]}`, "", `data[1]: is a RecList 1.x/2.x test result (it has "name"), but data[0] is a RecList 0.x one: a report cannot mix them`},
		{"duplicate test names", `{"data": [{"name": "A", "result": 1}, {"name": "B", "result": 2}, {"name": "A", "result": null}]}`, "", `data[2].name: the test "A" is given twice (also at data[0].name): test names must be unique`},
		{"duplicate result keys", v2(`{"a": 1, "b": 2, "a": 3}`), "", `data[0].result.a: the metric key "T.a" is given twice: keys must be unique`},
		{"duplicate keys in JSON in a string", v2(`"{\"a\": 1, \"a\": 3}"`), "", `data[0].result.a: the metric key "T.a" is given twice: keys must be unique`},

		// Slipway.
		{"metrics not an object", `{"metrics": [1]}`, "", "metrics: must be an object of metric name → number (got an array)"},
		{"metrics null", `{"metrics": null}`, "", "metrics: must be an object of metric name → number (got null)"},
		{"metric a string", `{"metrics": {"hit_rate": "0.2"}}`, "", `metrics.hit_rate: must be a number, NaN or Infinity (got the string "0.2")`},
		{"metric true", `{"metrics": {"hit rate": true}}`, "", `metrics["hit rate"]: must be a number, NaN or Infinity (got true)`},
		{"metric an object", `{"metrics": {"a": {"b": 1}}}`, "", `metrics.a: must be a number, NaN or Infinity (got an object)`},
		{"metric name with a path", `{"metrics": {"a[\"b\"]": 1}}`, "", `metrics["a[\"b\"]"]: "a[\"b\"]" cannot name a test: its metrics' keys would read as test "a" with path "[\"b\"]"; a name must not end in .name, ["…"] or [n]`},
		{"metrics twice", `{"metrics": {}, "metrics": {}}`, "", "metrics: is given twice"},
		{"duplicate metric", `{"metrics": {"a": 1, "a": 2}}`, "", `metrics.a: the metric key "a" is given twice: keys must be unique`},
		{"slices not an object", `{"metrics": {}, "slices": []}`, "", "slices: must be an object of slice label → {metric name → number} (got an array)"},
		{"slice not an object", `{"metrics": {}, "slices": {"country=US": 0.2}}`, "", `slices["country=US"]: must be an object of metric name → number (got 0.2)`},
		{"slice metric a string", `{"metrics": {}, "slices": {"s": {"a": "x"}}}`, "", `slices.s.a: must be a number, NaN or Infinity (got the string "x")`},
		{"slice given twice", `{"metrics": {}, "slices": {"s": {"a": 1}, "s": {"a": 2}}}`, "", `slices.s.a: the metric key "a.s" is given twice: keys must be unique`},
		{"tests not an array", `{"metrics": {}, "tests": {}}`, "", `tests: must be an array of {"name": …, "passed": true or false} (got an object)`},
		{"test not an object", `{"metrics": {}, "tests": ["t"]}`, "", `tests[0]: must be an object {"name": …, "passed": true or false} (got the string "t")`},
		{"test without a name", `{"metrics": {}, "tests": [{"passed": true}]}`, "", `tests[0]: has no "name": a test needs one`},
		{"test without passed", `{"metrics": {}, "tests": [{"name": "t"}]}`, "", `tests[0]: has no "passed": true or false`},
		{"passed a string", `{"metrics": {}, "tests": [{"name": "t", "passed": "yes"}]}`, "", `tests[0].passed: must be true or false (got the string "yes")`},
		{"message a number", `{"metrics": {}, "tests": [{"name": "t", "passed": true, "message": 1}]}`, "", `tests[0].message: must be a string or null (got 1)`},
		{"test name empty", `{"metrics": {}, "tests": [{"name": "", "passed": true}]}`, "", `tests[0].name: must not be empty or only white space`},
		{"test name twice", `{"metrics": {}, "tests": [{"name": "t", "name": "u", "passed": true}]}`, "", `tests[0].name: is given twice`},
		{"duplicate tests", `{"metrics": {}, "tests": [{"name": "t", "passed": true}, {"name": "t", "passed": false}]}`, "", `tests[1].name: the test "t" is given twice (also at tests[0].name): test names must be unique`},
		{"format unknown", `{"format": "slipway/v2", "metrics": {}}`, "", `format: must be "slipway/v1", the version of Slipway's format this Slipway reads (got the string "slipway/v2")`},
		{"model a number", `{"metrics": {}, "model": 3}`, "", `model: must be a string (got 3)`},
		{"first problem wins", `{"model": 3, "metrics": {"a": "x"}}`, "", `model: must be a string (got 3)`},
		{"problem before metrics", `{"tests": 3, "metrics": {}}`, "", `tests: must be an array of {"name": …, "passed": true or false} (got 3)`},
		{"asked, problem at once", `{"metrics": {"a": "x"}}`, FormatSlipway, `metrics.a: must be a number, NaN or Infinity (got the string "x")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := parseError(t, tc.body, tc.asked)
			if got := strings.TrimPrefix(e.Error(), "report: "); got != tc.want {
				t.Errorf("error\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, tc := range []struct {
		name  string
		set   func(t *testing.T)
		ok    string // just within the limit
		bad   string // just beyond it
		error string
	}{{
		name:  "MaxMetrics RecList",
		set:   func(t *testing.T) { setLimit(t, &maxMetrics, 3) },
		ok:    `{"data": [{"name": "A", "result": [1, 2]}, {"name": "B", "result": 3}]}`,
		bad:   `{"data": [{"name": "A", "result": [1, 2]}, {"name": "B", "result": [3, 4]}]}`,
		error: "data[1].result[1]: the report has more than 3 metrics (the limit MaxMetrics)",
	}, {
		name:  "MaxMetrics Slipway",
		set:   func(t *testing.T) { setLimit(t, &maxMetrics, 3) },
		ok:    `{"metrics": {"a": 1, "b": 2}, "slices": {"s": {"a": 1}}}`,
		bad:   `{"metrics": {"a": 1, "b": 2}, "slices": {"s": {"a": 1, "b": 2}}}`,
		error: "slices.s.b: the report has more than 3 metrics (the limit MaxMetrics)",
	}, {
		name:  "MaxTests RecList",
		set:   func(t *testing.T) { setLimit(t, &maxTests, 2) },
		ok:    `{"data": [{"name": "A", "result": null}, {"name": "B", "result": null}]}`,
		bad:   `{"data": [{"name": "A", "result": null}, {"name": "B", "result": null}, {"name": "C", "result": null}]}`,
		error: "data[2]: the report has more than 2 tests (the limit MaxTests)",
	}, {
		name:  "MaxTests Slipway",
		set:   func(t *testing.T) { setLimit(t, &maxTests, 1) },
		ok:    `{"metrics": {}, "tests": [{"name": "a", "passed": true}]}`,
		bad:   `{"metrics": {}, "tests": [{"name": "a", "passed": true}, {"name": "b", "passed": true}]}`,
		error: "tests[1]: the report has more than 1 tests (the limit MaxTests)",
	}, {
		name:  "MaxKeyBytes test name",
		set:   func(t *testing.T) { setLimit(t, &maxKeyBytes, 8) },
		ok:    `{"data": [{"name": "ABCDEFGH", "result": 1}]}`,
		bad:   `{"data": [{"name": "ABCDEFGHI", "result": 1}]}`,
		error: `data[0].name: "ABCDEFGHI" is 9 bytes long, more than 8 (the limit MaxKeyBytes)`,
	}, {
		name:  "MaxKeyBytes test name and path",
		set:   func(t *testing.T) { setLimit(t, &maxKeyBytes, 8) },
		ok:    `{"data": [{"name": "ABCDE", "result": {"xy": 1}}]}`,
		bad:   `{"data": [{"name": "ABCDEF", "result": {"xy": 1}}]}`,
		error: `data[0].result.xy: the metric key "ABCDEF.xy" is 9 bytes long, more than 8 (the limit MaxKeyBytes)`,
	}, {
		name:  "MaxKeyBytes path",
		set:   func(t *testing.T) { setLimit(t, &maxKeyBytes, 8) },
		ok:    `{"data": [{"name": "A", "result": {"abc": {"de": 1}}}]}`,
		bad:   `{"data": [{"name": "A", "result": {"abc": {"def": 1}}}]}`,
		error: `data[0].result.abc: the key "def" makes metric keys longer than 8 bytes (the limit MaxKeyBytes)`,
	}, {
		name:  "MaxKeyBytes index",
		set:   func(t *testing.T) { setLimit(t, &maxKeyBytes, 8) },
		ok:    `{"data": [{"name": "A", "result": {"abc": [1]}}]}`,
		bad:   `{"data": [{"name": "A", "result": {"abcde": [1]}}]}`,
		error: `data[0].result.abcde[0]: makes metric keys longer than 8 bytes (the limit MaxKeyBytes)`,
	}, {
		name:  "MaxKeyBytes slice",
		set:   func(t *testing.T) { setLimit(t, &maxKeyBytes, 8) },
		ok:    `{"metrics": {}, "slices": {"abcdef": {"a": 1}}}`,
		bad:   `{"metrics": {}, "slices": {"abcdefg": {"a": 1}}}`,
		error: `slices.abcdefg.a: the metric key "a.abcdefg" is 9 bytes long, more than 8 (the limit MaxKeyBytes)`,
	}, {
		name:  "MaxPathDepth",
		set:   func(t *testing.T) { setLimit(t, &maxPathDepth, 2) },
		ok:    v2(`{"a": [1, []]}`),
		bad:   v2(`{"a": [1, [2]]}`),
		error: `data[0].result.a[1]: nests more than 2 levels deep (the limit MaxPathDepth)`,
	}, {
		name:  "MaxPathDepth in a string",
		set:   func(t *testing.T) { setLimit(t, &maxPathDepth, 2) },
		ok:    v2(`{"a": "[1, []]"}`),
		bad:   v2(`{"a": "[1, [2]]"}`),
		error: `data[0].result.a[1]: nests more than 2 levels deep (the limit MaxPathDepth) (in the JSON document held in the string at data[0].result.a)`,
	}, {
		name:  "MaxStringBytes",
		set:   func(t *testing.T) { setLimit(t, &maxStringBytes, 16) },
		ok:    `{"metrics": {}, "notes": "0123456789abcdef"}`,
		bad:   `{"metrics": {}, "notes": "0123456789abcdefg"}`,
		error: "a string is longer than 16 bytes (the limit MaxStringBytes), at byte",
	}, {
		name:  "MaxStringBytes escapes",
		set:   func(t *testing.T) { setLimit(t, &maxStringBytes, 16) },
		ok:    `{"metrics": {}, "notes": "\"\"\"\"\"\"\"\"\u00e9\u00e9\"\""}`, // 8 + 2×3 + 2 counted
		bad:   `{"metrics": {}, "notes": "\"\"\"\"\"\"\"\"\u00e9\u00e9\"\"\""}`,
		error: "a string is longer than 16 bytes (the limit MaxStringBytes), at byte",
	}, {
		name:  "MaxStringBytes number",
		set:   func(t *testing.T) { setLimit(t, &maxStringBytes, 16) },
		ok:    `{"metrics": {"a": 1234567890.12345}}`,
		bad:   `{"metrics": {"a": 1234567890.123456}}`,
		error: "a number (or other bare token) is longer than 16 bytes (the limit MaxStringBytes), at byte 34",
	}, {
		name:  "MaxStringBytes JSON in a string",
		set:   func(t *testing.T) { setLimit(t, &maxStringBytes, 16) },
		ok:    v2(`"{\"a\":1,\"b\":2222}"`),
		bad:   v2(`"{\"a\":1,\"b\":22222}"`),
		error: "a string is longer than 16 bytes (the limit MaxStringBytes), at byte",
	}, {
		name:  "MaxNesting",
		set:   func(t *testing.T) { setLimit(t, &maxNesting, 5) },
		ok:    `{"ignored": ` + deep(4) + `, "metrics": {}}`,
		bad:   `{"ignored": ` + deep(5) + `, "metrics": {}}`,
		error: "values nest more than 5 levels deep (the limit MaxNesting), at byte 16",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tc.set(t)
			mustParse(t, tc.ok, "")
			e := parseError(t, tc.bad, "")
			if !strings.Contains(e.Error(), tc.error) {
				t.Errorf("error\n got %s\nwant %s", e, tc.error)
			}
			if !strings.Contains(e.Error(), "(the limit Max") {
				t.Errorf("error %s does not name the limit", e)
			}
		})
	}
}

func TestLimitDefaults(t *testing.T) {
	// The defaults, as the package documents them.
	if maxMetrics != 100_000 || maxTests != 10_000 || maxKeyBytes != 512 || maxPathDepth != 8 || maxStringBytes != 16<<20 {
		t.Errorf("limits: %d metrics, %d tests, %d-byte keys, %d levels, %d-byte strings", maxMetrics, maxTests, maxKeyBytes, maxPathDepth, maxStringBytes)
	}
	// A document in a string of more than MaxStringBytes, at the real limit.
	doc := `"[` + strings.Repeat("0,", MaxStringBytes/2) + `0]"`
	e := parseError(t, v2(doc), "")
	if !strings.Contains(e.Error(), "a string is longer than 16777216 bytes (the limit MaxStringBytes)") {
		t.Errorf("error %s", e)
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestParseReadsToEnd(t *testing.T) {
	bodies := []string{
		string(sample(t, "reclist-v0-report.json")),
		string(sample(t, "reclist-v2-report.json")) + "\n\n   \t",
		`{"metrics": {"a": NaN}}` + strings.Repeat(" ", 100_000),
		`{"data": [], "padding": "` + strings.Repeat("x", 200_000) + `"}` + "\n",
	}
	for i, body := range bodies {
		for name, wrap := range map[string]func(io.Reader) io.Reader{
			"plain":    func(r io.Reader) io.Reader { return r },
			"one byte": iotest.OneByteReader,
			"data+EOF": iotest.DataErrReader,
			"half":     iotest.HalfReader,
		} {
			c := &countingReader{r: strings.NewReader(body)}
			if _, err := Parse(wrap(c), ""); err != nil {
				t.Fatalf("body %d, %s: %v", i, name, err)
			}
			if c.n != len(body) {
				t.Errorf("body %d, %s: read %d bytes of %d", i, name, c.n, len(body))
			}
		}
	}
}

// repeatReader reads unit n times.
type repeatReader struct {
	unit string
	n    int
	rest string
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.rest == "" {
		if r.n == 0 {
			return 0, io.EOF
		}
		r.rest = r.unit
		r.n--
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}

// heapSampler reads through r, noting the live heap every MiB.
type heapSampler struct {
	r        io.Reader
	n, next  int
	maxHeap  uint64
	baseline uint64
}

func (h *heapSampler) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.n += n
	if h.n >= h.next {
		h.next += 1 << 20
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		h.maxHeap = max(h.maxHeap, ms.HeapAlloc)
	}
	return n, err
}

func TestParseMemoryDoesNotGrow(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 64 MiB")
	}
	for name, body := range map[string]func() io.Reader{
		"ignored values": func() io.Reader {
			return io.MultiReader(strings.NewReader(`{"metrics": {"a": 1}, "x": [`),
				&repeatReader{unit: `{"k": [1, 2.5, "s", null, true, NaN, {"d": ["` + strings.Repeat("z", 100) + `"]}]},` + "\n  ", n: 200_000},
				strings.NewReader(`0]}`))
		},
		"white space": func() io.Reader {
			return io.MultiReader(strings.NewReader(`{"metrics": {"a": `),
				&repeatReader{unit: strings.Repeat(" ", 1<<10), n: 32 << 10},
				strings.NewReader(`1}}`),
				&repeatReader{unit: strings.Repeat("\n", 1<<10), n: 32 << 10})
		},
	} {
		t.Run(name, func(t *testing.T) {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			h := &heapSampler{r: body(), baseline: ms.HeapAlloc}
			r, err := Parse(h, "")
			if err != nil || len(r.Metrics) != 1 {
				t.Fatalf("%d metrics, %v", len(r.Metrics), err)
			}
			if h.n < 25<<20 {
				t.Fatalf("read %d bytes", h.n)
			}
			grew := int64(h.maxHeap) - int64(h.baseline)
			t.Logf("read %d MiB; the live heap grew by %d KiB at most", h.n>>20, grew>>10)
			if grew > 4<<20 {
				t.Errorf("reading %d MiB, the live heap grew by %d KiB", h.n>>20, grew>>10)
			}
		})
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader(`{"metrics": {"a": 1`), iotest.ErrReader(boom))
	_, err := Parse(r, "")
	if !errors.Is(err, boom) {
		t.Fatalf("error %v does not wrap the reader's", err)
	}
	if errors.Is(err, errs.ErrUnprocessable) {
		t.Errorf("error %v reads as the report's fault", err)
	}
	// A caller's limit (http.MaxBytesReader and the like) stays what it is.
	tooLarge := fmt.Errorf("body: %w", errs.ErrTooLarge)
	_, err = Parse(io.MultiReader(strings.NewReader(`{"data": [`), iotest.ErrReader(tooLarge)), "")
	if !errors.Is(err, errs.ErrTooLarge) {
		t.Errorf("error %v does not wrap errs.ErrTooLarge", err)
	}
}

func TestErrorMessage(t *testing.T) {
	// Where and Why, as the HTTP layer shows them.
	e := parseError(t, `{"data": [{"name": "A", "result": 1}, {"name": "B", "result": {"a": []}}, {"name": 1, "result": true}]}`, "")
	if e.Where != "data[2].name" || e.Why != "must be a string: the test's name (got 1)" {
		t.Errorf("Where = %q, Why = %q", e.Where, e.Why)
	}
	if e.Error() != "report: data[2].name: must be a string: the test's name (got 1)" {
		t.Errorf("Error() = %q", e.Error())
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample(f, "reclist-v0-report.json"), uint8(0))
	f.Add(sample(f, "reclist-v2-report.json"), uint8(2))
	f.Add([]byte(`{"format": "slipway/v1", "metrics": {"a": NaN, "b": -Infinity}, "slices": {"s=1": {"a": 1}}, "tests": [{"name": "t", "passed": true}]}`), uint8(1))
	f.Add([]byte(`{"data": [{"name": "X", "result": "{\"a\": [1, NaN, {\"b\\\"c\": \"[2]\"}]}"}]}`), uint8(0))
	f.Add([]byte(`{"data": [{"test_name": "a]", "test_result": {"": {"x.y": [true, null, "text"]}}}]}`), uint8(0))
	f.Add([]byte(`{"metrics": {"x": 1}, "data": [{"name": "n\\", "result": [[["[\"]\"]"]]]}]}`), uint8(0))
	f.Add([]byte(`{NaN: 1}`), uint8(0))
	f.Add([]byte(`[]`), uint8(0))
	f.Add([]byte(``), uint8(0))
	f.Add([]byte(`{"metrics": {}} x`), uint8(1))
	formats := []Format{"", FormatSlipway, FormatRecListV0, FormatRecListV2}
	f.Fuzz(func(t *testing.T, body []byte, fi uint8) {
		format := formats[int(fi)%len(formats)]
		r, err := Parse(bytes.NewReader(body), format)
		if err != nil {
			var e *Error
			if !errors.Is(err, errs.ErrUnprocessable) || !errors.As(err, &e) || e.Why == "" {
				t.Fatalf("error %v (%T) is not an *Error that unwraps to errs.ErrUnprocessable", err, err)
			}
		} else {
			checkReport(t, r, format)
		}
		// Read a byte at a time, the result is the same.
		r1, err1 := Parse(iotest.OneByteReader(bytes.NewReader(body)), format)
		if (err == nil) != (err1 == nil) || err != nil && err.Error() != err1.Error() {
			t.Fatalf("errors differ: %v, one byte at a time %v", err, err1)
		}
		if d := diffMetrics(r1.Metrics, r.Metrics); d != "" {
			t.Fatalf("metrics differ when read a byte at a time:%s", d)
		}
	})
}

// checkReport checks the promises Parse makes of a report it accepts.
func checkReport(t *testing.T, r Report, asked Format) {
	t.Helper()
	if asked != "" && r.Format != asked {
		t.Fatalf("Format %q, asked %q", r.Format, asked)
	}
	if len(r.Metrics) > MaxMetrics || len(r.Tests) > MaxTests {
		t.Fatalf("%d metrics, %d tests", len(r.Metrics), len(r.Tests))
	}
	keys := map[string]bool{}
	for _, mt := range r.Metrics {
		if keys[mt.Key] {
			t.Fatalf("key %q twice", mt.Key)
		}
		keys[mt.Key] = true
		if mt.Key != mt.Test+mt.Path || len(mt.Key) > MaxKeyBytes || mt.Test == "" {
			t.Fatalf("metric %+v", mt)
		}
		if test, path := SplitKey(mt.Key); test != mt.Test || path != mt.Path {
			t.Fatalf("SplitKey(%q) = %q, %q; want %q, %q", mt.Key, test, path, mt.Test, mt.Path)
		}
	}
	names := map[string]bool{}
	for _, tt := range r.Tests {
		if names[tt.Name] || tt.Name == "" || len(tt.Message) > MaxMessageBytes {
			t.Fatalf("test %+v", tt)
		}
		names[tt.Name] = true
	}
	for k, v := range r.Meta {
		if len(v) > MaxMetaBytes {
			t.Fatalf("Meta[%q] is %d bytes", k, len(v))
		}
	}
}

// report generates a report of n metrics in format f.
func report(f Format, n int) []byte {
	var b bytes.Buffer
	switch f {
	case FormatSlipway:
		b.WriteString(`{"format": "slipway/v1", "model": "bench", "metrics": {`)
		for i := range n / 2 {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, `"metric_%d": %g`, i, float64(i)/1000)
		}
		b.WriteString(`}, "slices": {"country=US": {`)
		for i := range n - n/2 {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, `"metric_%d": NaN`, i)
		}
		b.WriteString(`}}, "tests": [{"name": "t", "passed": true}]}`)
	default:
		// Tests of 10 metrics each: a scalar, an object of 4 slices, an
		// array of 3, and pandas' JSON in a string of 2.
		b.WriteString(`{"metadata": {"model_name": "bench", "reclist": "Bench"}, "data": [`)
		for i := range n / 10 {
			if i > 0 {
				b.WriteString(",\n")
			}
			fmt.Fprintf(&b, `{"name": "T%d", "description": "test %d", "display_type": "None", "result": {"rate": %d.5, "by_slice": {"(0, 5]": 0.1, "(5, 50]": 0.2, "(50, 100]": 0.3, "(100, 1000]": NaN}, "bins": [0.1, 0.2, 0.3], "pandas": "{\"US\":0.051,\"DE\":0.047}"}}`, i, i, i)
		}
		b.WriteString("]}")
	}
	return b.Bytes()
}

func TestBenchmarkReports(t *testing.T) {
	for _, f := range []Format{FormatSlipway, FormatRecListV2} {
		r, err := Parse(bytes.NewReader(report(f, 1000)), "")
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Metrics) != 1000 || r.Format != f {
			t.Errorf("%s: %d metrics, format %s", f, len(r.Metrics), r.Format)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	for _, f := range []Format{FormatSlipway, FormatRecListV2} {
		body := report(f, 1000)
		b.Run(string(f), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				r, err := Parse(bytes.NewReader(body), "")
				if err != nil || len(r.Metrics) != 1000 {
					b.Fatalf("%d metrics, %v", len(r.Metrics), err)
				}
			}
		})
	}
}
