// Package evalreport parses evaluation reports and normalises their values
// into addressable metrics. It knows nothing of storage or HTTP.
//
// # Formats
//
// Parse reads three formats (docs/evaluation-reports.md has examples).
// FormatRecListV0 is RecList 0.x: {"metadata": {…}, "data": [{"test_name",
// "description", "test_result"}, …]}. FormatRecListV2 is RecList 1.x and 2.x:
// {"metadata": {…}, "data": [{"name", "description", "result",
// "display_type"}, …]}. FormatSlipway is Slipway's own JSON:
//
//	{
//	  "format": "slipway/v1",                          // optional
//	  "metrics": {"hit_rate": 0.214, "mrr": 0.0458},   // required: name → number
//	  "slices": {                                      // optional: label → metrics of that slice
//	    "country=US": {"hit_rate": 0.21},
//	    "country=DE": {"hit_rate": 0.19}
//	  },
//	  "tests": [                                       // optional behavioural tests
//	    {"name": "no_empty_recommendations", "passed": true},
//	    {"name": "gender_invariance", "passed": false, "message": "3% of pairs changed"}
//	  ],
//	  "model": "…", "suite": "…", "notes": "…"         // optional strings, kept in Meta
//	}
//
// (without the comments). A metric's key is its name, `hit_rate`; a
// slice's metric is keyed `hit_rate["country=US"]`: its Test is the
// metric's name and its Path the slice, so that a metric's slices group
// with it. Metric names follow the rule of RecList test names below.
// Values are numbers (or NaN/Infinity); a test needs a unique name and a
// boolean "passed", and may have a "message" (string or null). Other
// top-level keys are ignored; a "format" other than "slipway/v1" is
// refused.
//
// Detection streams, so it goes by the top-level keys, in any order: a
// report with "data" is RecList's, one with "metrics" and no "data" is
// Slipway's. A RecList report's version is that of its elements: "test_name"
// and "test_result" for 0.x, "name" and "result" for 1.x/2.x; a report that
// mixes them is refused, and one with no element reads as 1.x/2.x. An
// explicit format wins over detection; the report must then have its shape.
//
// # Normalisation
//
// Each RecList test's result becomes metrics, whose Test is the test's name:
//
//   - a number is one metric whose key is the name: `HIT_RATE`, `HR@10`;
//   - an object gives a metric per numeric leaf, recursively:
//     `MRED_COUNTRY.mred`, `HITS_BY_SLICE["(0, 5]"].hit_rate`;
//   - an array gives its elements by index: `HITS_DISTRIBUTION[4]`;
//   - a string that holds a JSON object, array or number (as pandas' to_json
//     writes) is read as that document: `MRR_BY_COUNTRY.US`; other strings
//     are text, and give no metric;
//   - true and false are 1 and 0; null gives no metric.
//
// A path segment is `.name` for a key that matches ^[A-Za-z_][A-Za-z0-9_]*$,
// `["…"]` (the key as a JSON string) for any other key, `[i]` for an index.
// Test names are written as they are, never quoted, so that keys read like
// the names of the tests (`HR@10`); SplitKey finds where the name ends (at
// the first '.' or '[' from which the rest reads as a path), and Parse
// refuses a name whose keys SplitKey would cut wrongly, such as "a.b" or
// "x[0]". Keys are unique: a test name or an object key given twice is an
// error.
//
// # NaN and Infinity
//
// Python's json.dumps writes float('nan') and float('inf') as the bare
// tokens NaN, Infinity and -Infinity, which are not JSON. Parse accepts them
// wherever a number may be, JSON documents held in strings included, and
// keeps them as math.NaN(), math.Inf(1) and math.Inf(-1); policies treat
// such a value as never passing a threshold. Inside strings they are text,
// and any other token that is not JSON is still an error.
//
// # Limits and errors
//
// Parse streams with json.Decoder's Token API: memory grows with the
// normalised output, not with the report. A report has at most MaxMetrics
// metrics and MaxTests tests; keys are at most MaxKeyBytes long, paths at
// most MaxPathDepth segments deep, strings (and so documents in strings) at
// most MaxStringBytes long, and no value nests more than MaxNesting levels.
// A report that is not JSON, has no recognisable shape, breaks a rule or a
// limit is an *Error, which says where and why and unwraps to
// errs.ErrUnprocessable.
package evalreport
