package openlineage

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/slipway-ml/slipway/internal/errs"
)

const (
	runID     = "0176a8c2-fe01-7439-87e6-56a1a1b4029f"
	runSchema = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
)

func sample(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/openlineage-run-complete.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// event is a minimal valid START event, changed by edit (a value of nil
// deletes the key at that dotted path) and marshalled.
func event(t testing.TB, edits map[string]any) []byte {
	t.Helper()
	m := map[string]any{
		"eventType": "START",
		"eventTime": "2026-11-20T03:05:11.412Z",
		"producer":  "https://github.com/OpenLineage/OpenLineage/tree/1.24.0/integration/dbt",
		"schemaURL": runSchema,
		"run":       map[string]any{"runId": runID},
		"job":       map[string]any{"namespace": "dbt://analytics", "name": "analytics.session_events_train"},
	}
	for path, v := range edits {
		keys := strings.Split(path, ".")
		cur := m
		for _, k := range keys[:len(keys)-1] {
			next, ok := cur[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[k] = next
			}
			cur = next
		}
		last := keys[len(keys)-1]
		if v == nil {
			delete(cur, last)
		} else {
			cur[last] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// problems flattens a validation error into field → rule.
func problems(t testing.TB, err error) map[string]string {
	t.Helper()
	out := map[string]string{}
	var fes errs.FieldErrors
	var fe *errs.FieldError
	switch {
	case errors.As(err, &fes):
		for _, f := range fes {
			out[f.Field] = f.Rule
		}
	case errors.As(err, &fe):
		out[fe.Field] = fe.Rule
	default:
		t.Fatalf("error %v (%T) is neither a *errs.FieldError nor errs.FieldErrors", err, err)
	}
	return out
}

func mustParse(t *testing.T, body []byte) RunEvent {
	t.Helper()
	ev, err := Parse(body)
	if err != nil {
		t.Fatalf("Parse: %v\nbody: %s", err, body)
	}
	return ev
}

func TestParseSample(t *testing.T) {
	ev := mustParse(t, sample(t))

	if ev.EventType != Complete || !ev.Terminal() {
		t.Errorf("EventType = %q, Terminal = %v; want COMPLETE, true", ev.EventType, ev.Terminal())
	}
	wantTime := time.Date(2026, 11, 20, 3, 5, 11, 412_000_000, time.UTC)
	if !ev.EventTime.Equal(wantTime) {
		t.Errorf("EventTime = %v, want %v", ev.EventTime, wantTime)
	}
	if got, want := ev.Producer, "https://github.com/OpenLineage/OpenLineage/tree/1.24.0/integration/dbt"; got != want {
		t.Errorf("Producer = %q, want %q", got, want)
	}
	if ev.SchemaURL != runSchema {
		t.Errorf("SchemaURL = %q", ev.SchemaURL)
	}
	if ev.Run.RunID != runID {
		t.Errorf("RunID = %q, want %q", ev.Run.RunID, runID)
	}
	if ev.Job.Namespace != "dbt://analytics" || ev.Job.Name != "analytics.session_events_train" {
		t.Errorf("Job = %q %q", ev.Job.Namespace, ev.Job.Name)
	}
	if ev.Job.SourceCode() != nil {
		t.Errorf("SourceCode = %+v, want nil", ev.Job.SourceCode())
	}

	if len(ev.Inputs) != 1 {
		t.Fatalf("%d inputs, want 1", len(ev.Inputs))
	}
	in := ev.Inputs[0]
	if in.Namespace != "snowflake://acme.eu-west-1" || in.Name != "RAW.EVENTS.BROWSING" {
		t.Errorf("input = %q %q", in.Namespace, in.Name)
	}
	wantSchema := []Field{{Name: "session_id", Type: "VARCHAR"}, {Name: "sku", Type: "VARCHAR"}, {Name: "ts", Type: "TIMESTAMP_NTZ"}}
	if diff := cmp.Diff(wantSchema, in.Schema()); diff != "" {
		t.Errorf("input schema (-want +got):\n%s", diff)
	}
	if in.RowCount() != nil || in.Bytes() != nil || in.ColumnStats() != nil || in.Version() != "" {
		t.Errorf("input has statistics it was not given")
	}

	if len(ev.Outputs) != 1 {
		t.Fatalf("%d outputs, want 1", len(ev.Outputs))
	}
	out := ev.Outputs[0]
	if out.Name != "ANALYTICS.ML.SESSION_EVENTS_TRAIN" {
		t.Errorf("output name = %q", out.Name)
	}
	if rc := out.RowCount(); rc == nil || *rc != 1843221 {
		t.Errorf("output RowCount = %v, want 1843221", rc)
	}
	if out.Bytes() != nil {
		t.Errorf("output Bytes = %v, want nil", *out.Bytes())
	}
	if got := len(out.Schema()); got != 2 {
		t.Errorf("output schema has %d fields, want 2", got)
	}
	if out.InputFacets != nil {
		t.Errorf("output has inputFacets %v", out.InputFacets)
	}

	parent, err := ev.Run.Parent()
	if err != nil {
		t.Fatalf("Parent: %v", err)
	}
	want := &ParentRef{RunID: "0176a8c2-fd00-7000-8000-000000000001", JobNamespace: "metaflow", JobName: "SessionRecFlow"}
	if diff := cmp.Diff(want, parent); diff != "" {
		t.Errorf("Parent (-want +got):\n%s", diff)
	}
	if ev.Run.ErrorMessage() != "" || ev.Run.NominalStart() != nil {
		t.Errorf("ErrorMessage %q, NominalStart %v: want none", ev.Run.ErrorMessage(), ev.Run.NominalStart())
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name  string
		body  []byte
		check func(t *testing.T, ev RunEvent)
	}{
		{"START without inputs or outputs", event(t, nil), func(t *testing.T, ev RunEvent) {
			if ev.EventType != Start || ev.Terminal() {
				t.Errorf("EventType %q, Terminal %v", ev.EventType, ev.Terminal())
			}
			if ev.Inputs != nil || ev.Outputs != nil {
				t.Errorf("Inputs %v, Outputs %v; want nil", ev.Inputs, ev.Outputs)
			}
		}},
		{"eventType absent is OTHER", event(t, map[string]any{"eventType": nil}), func(t *testing.T, ev RunEvent) {
			if ev.EventType != Other {
				t.Errorf("EventType %q", ev.EventType)
			}
		}},
		{"eventType empty is OTHER", event(t, map[string]any{"eventType": ""}), func(t *testing.T, ev RunEvent) {
			if ev.EventType != Other {
				t.Errorf("EventType %q", ev.EventType)
			}
		}},
		{"eventType null is OTHER", []byte(strings.Replace(string(event(t, nil)), `"START"`, `null`, 1)), func(t *testing.T, ev RunEvent) {
			if ev.EventType != Other {
				t.Errorf("EventType %q", ev.EventType)
			}
		}},
		{"inputs and outputs null", event(t, map[string]any{"inputs": json.RawMessage(`null`), "outputs": json.RawMessage(`null`)}), func(t *testing.T, ev RunEvent) {
			if ev.Inputs != nil || ev.Outputs != nil {
				t.Errorf("Inputs %v, Outputs %v; want nil", ev.Inputs, ev.Outputs)
			}
		}},
		{"empty inputs", event(t, map[string]any{"inputs": []any{}}), func(t *testing.T, ev RunEvent) {
			if len(ev.Inputs) != 0 {
				t.Errorf("Inputs %v", ev.Inputs)
			}
		}},
		{"upper-case UUID normalised", event(t, map[string]any{"run.runId": strings.ToUpper(runID)}), func(t *testing.T, ev RunEvent) {
			if ev.Run.RunID != runID {
				t.Errorf("RunID %q, want %q", ev.Run.RunID, runID)
			}
		}},
		{"UUID of another version (v4)", event(t, map[string]any{"run.runId": "3F2504E0-4F89-41D3-9A0C-0305E82C3301"}), func(t *testing.T, ev RunEvent) {
			if ev.Run.RunID != "3f2504e0-4f89-41d3-9a0c-0305e82c3301" {
				t.Errorf("RunID %q", ev.Run.RunID)
			}
		}},
		{"eventTime +00:00 with microseconds", event(t, map[string]any{"eventTime": "2026-11-20T03:05:11.412345+00:00"}), func(t *testing.T, ev RunEvent) {
			if want := time.Date(2026, 11, 20, 3, 5, 11, 412_345_000, time.UTC); !ev.EventTime.Equal(want) {
				t.Errorf("EventTime %v, want %v", ev.EventTime, want)
			}
		}},
		{"eventTime +05:30 without fraction", event(t, map[string]any{"eventTime": "2026-11-20T08:35:11+05:30"}), func(t *testing.T, ev RunEvent) {
			if want := time.Date(2026, 11, 20, 3, 5, 11, 0, time.UTC); !ev.EventTime.Equal(want) {
				t.Errorf("EventTime %v, want %v", ev.EventTime, want)
			}
		}},
		{"eventTime lower-case t and z", event(t, map[string]any{"eventTime": "2026-11-20t03:05:11.412z"}), func(t *testing.T, ev RunEvent) {
			if want := time.Date(2026, 11, 20, 3, 5, 11, 412_000_000, time.UTC); !ev.EventTime.Equal(want) {
				t.Errorf("EventTime %v, want %v", ev.EventTime, want)
			}
		}},
		{"older #/definitions/RunEvent schemaURL", event(t, map[string]any{"schemaURL": "https://openlineage.io/spec/1-0-5/OpenLineage.json#/definitions/RunEvent"}), nil},
		{"schemaURL without fragment", event(t, map[string]any{"schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json"}), nil},
		{"urn producer", event(t, map[string]any{"producer": "urn:acme:pipeline:v3"}), nil},
		{"unknown keys everywhere", event(t, map[string]any{
			"acme":     map[string]any{"x": 1},
			"run.acme": true,
			"job.acme": "x",
			"inputs":   []any{map[string]any{"namespace": "s3://b", "name": "k", "acme": []any{1}}},
		}), func(t *testing.T, ev RunEvent) {
			if len(ev.Inputs) != 1 || ev.Inputs[0].Name != "k" {
				t.Errorf("Inputs %+v", ev.Inputs)
			}
		}},
		{"unicode names", event(t, map[string]any{"job.name": "données/τ-job ✓", "job.namespace": strings.Repeat("é", MaxNameBytes/2)}), func(t *testing.T, ev RunEvent) {
			if ev.Job.Name != "données/τ-job ✓" {
				t.Errorf("Job.Name %q", ev.Job.Name)
			}
		}},
		{"escaped surrogate pair in a name", []byte(strings.Replace(string(event(t, nil)), `"analytics.session_events_train"`, `"job \ud83d\ude80"`, 1)), func(t *testing.T, ev RunEvent) {
			if ev.Job.Name != "job 🚀" {
				t.Errorf("Job.Name %q", ev.Job.Name)
			}
		}},
		{"MaxDatasets in all", event(t, map[string]any{"inputs": datasets(MaxDatasets / 2), "outputs": datasets(MaxDatasets / 2)}), func(t *testing.T, ev RunEvent) {
			if len(ev.Inputs)+len(ev.Outputs) != MaxDatasets {
				t.Errorf("%d+%d datasets", len(ev.Inputs), len(ev.Outputs))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := mustParse(t, tt.body)
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}

func datasets(n int) []any {
	a := make([]any, n)
	for i := range a {
		a[i] = map[string]any{"namespace": "s3://bucket", "name": fmt.Sprintf("t%d", i)}
	}
	return a
}

// TestFacetsPreserved: every facet, known or not, comes back byte for byte,
// big numbers unmangled.
func TestFacetsPreserved(t *testing.T) {
	custom := `{"_producer": "https://acme.example/p",  "big": 123456789012345678901234567890, "x": [1, 2.50, "三"], "nested": {"deep": null}}`
	quality := `{"rowCount":12,"columnMetrics":{}}`
	body := `{"eventTime":"2026-11-20T03:05:11.412Z","producer":"https://acme.example/p","schemaURL":"` + runSchema + `",
	 "run":{"runId":"` + runID + `","facets":{"acme_custom": ` + custom + `}},
	 "job":{"namespace":"n","name":"j","facets":{"acme_job":` + custom + `}},
	 "inputs":[{"namespace":"n","name":"i","facets":{"acme_ds":` + custom + `},"inputFacets":{"dataQualityMetrics":` + quality + `,"acme_in":{}}}],
	 "outputs":[{"namespace":"n","name":"o","outputFacets":{"acme_out":` + custom + `}}]}`
	ev := mustParse(t, []byte(body))
	for name, got := range map[string]json.RawMessage{
		"run.facets.acme_custom":           ev.Run.Facets["acme_custom"],
		"job.facets.acme_job":              ev.Job.Facets["acme_job"],
		"inputs[0].facets.acme_ds":         ev.Inputs[0].Facets["acme_ds"],
		"outputs[0].outputFacets.acme_out": ev.Outputs[0].OutputFacets["acme_out"],
	} {
		if string(got) != custom {
			t.Errorf("%s = %s, want %s", name, got, custom)
		}
	}
	if got := string(ev.Inputs[0].InputFacets["dataQualityMetrics"]); got != quality {
		t.Errorf("dataQualityMetrics = %s", got)
	}
	if got := string(ev.Inputs[0].InputFacets["acme_in"]); got != "{}" {
		t.Errorf("acme_in = %s", got)
	}
}

func TestParseRejects(t *testing.T) {
	long := strings.Repeat("x", MaxNameBytes+1)
	base := string(event(t, nil))
	tests := []struct {
		name  string
		body  []byte
		field string
		frag  string
	}{
		{"empty body", nil, "body", "must not be empty"},
		{"white space", []byte(" \n"), "body", "must not be empty"},
		{"not JSON", []byte(`{"eventType":`), "body", "is not valid JSON"},
		{"not JSON at all", []byte(`eventType=START`), "body", "is not valid JSON"},
		{"two values", []byte(`{}{}`), "body", "is not valid JSON"},
		{"JSON array", []byte(`[{"eventType":"START"}]`), "body", "must be a JSON object: an OpenLineage RunEvent (got an array)"},
		{"JSON string", []byte(`"START"`), "body", "must be a JSON object: an OpenLineage RunEvent"},
		{"JSON null", []byte(`null`), "body", "must be a JSON object: an OpenLineage RunEvent"},
		{"DatasetEvent", []byte(`{"eventTime":"2026-11-20T03:05:11.412Z","producer":"https://p.example","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent","dataset":{"namespace":"n","name":"d"}}`),
			"run", "this is an OpenLineage DatasetEvent; only RunEvents are accepted"},
		{"JobEvent", []byte(`{"eventTime":"2026-11-20T03:05:11.412Z","producer":"https://p.example","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent","job":{"namespace":"n","name":"j"},"inputs":[]}`),
			"run", "this is an OpenLineage JobEvent; only RunEvents are accepted"},
		{"JobEvent without schemaURL", []byte(`{"job":{"namespace":"n","name":"j"}}`), "run", "JobEvent"},
		{"run but DatasetEvent schemaURL", event(t, map[string]any{"schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent"}),
			"schemaURL", "this is an OpenLineage DatasetEvent; only RunEvents are accepted"},
		{"run but #/definitions/JobEvent schemaURL", event(t, map[string]any{"schemaURL": "https://openlineage.io/spec/1-0-5/OpenLineage.json#/definitions/JobEvent"}),
			"schemaURL", "JobEvent"},
		{"schemaURL naming another event", event(t, map[string]any{"schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/BaseEvent"}),
			"schemaURL", "not an OpenLineage RunEvent"},

		{"eventTime missing", event(t, map[string]any{"eventTime": nil}), "eventTime", "is required"},
		{"eventTime with a space", event(t, map[string]any{"eventTime": "2026-11-20 03:05:11Z"}), "eventTime", "RFC 3339"},
		{"eventTime without offset", event(t, map[string]any{"eventTime": "2026-11-20T03:05:11.412"}), "eventTime", "time-zone offset"},
		{"eventTime a date", event(t, map[string]any{"eventTime": "2026-11-20"}), "eventTime", "RFC 3339"},
		{"eventTime out of range", event(t, map[string]any{"eventTime": "2026-13-20T03:05:11Z"}), "eventTime", "RFC 3339"},
		{"eventTime a number", event(t, map[string]any{"eventTime": 1794539111}), "eventTime", "must be a JSON string (got a number)"},
		{"eventType lower case", event(t, map[string]any{"eventType": "complete"}), "eventType", "must be one of START, RUNNING, COMPLETE, ABORT, FAIL, OTHER"},
		{"eventType unknown", event(t, map[string]any{"eventType": "DONE"}), "eventType", `(got "DONE")`},
		{"eventType a number", event(t, map[string]any{"eventType": 3}), "eventType", "must be a JSON string"},
		{"producer missing", event(t, map[string]any{"producer": nil}), "producer", "is required"},
		{"producer relative", event(t, map[string]any{"producer": "dbt/1.24"}), "producer", "has no scheme"},
		{"producer empty", event(t, map[string]any{"producer": ""}), "producer", "it is empty"},
		{"producer with space", event(t, map[string]any{"producer": "https://acme.example/my producer"}), "producer", "white space"},
		{"producer bad host", event(t, map[string]any{"producer": "https://[::1/"}), "producer", "does not parse"},
		{"producer an object", event(t, map[string]any{"producer": map[string]any{}}), "producer", "must be a JSON string (got an object)"},
		{"schemaURL missing", event(t, map[string]any{"schemaURL": nil}), "schemaURL", "is required"},
		{"schemaURL relative", event(t, map[string]any{"schemaURL": "OpenLineage.json#/$defs/RunEvent"}), "schemaURL", "absolute URI"},
		{"run missing", event(t, map[string]any{"run": nil}), "run", "is required"},
		{"run not an object", event(t, map[string]any{"run": runID}), "run", "must be a JSON object (got a string)"},
		{"runId missing", event(t, map[string]any{"run.runId": nil}), "run.runId", "is required"},
		{"runId not a UUID", event(t, map[string]any{"run.runId": "run-42"}), "run.runId", `must be a UUID such as`},
		{"runId without hyphens", event(t, map[string]any{"run.runId": "0176a8c2fe01743987e656a1a1b4029f"}), "run.runId", "must be a UUID"},
		{"runId in braces", event(t, map[string]any{"run.runId": "{" + runID + "}"}), "run.runId", "must be a UUID"},
		{"runId not hex", event(t, map[string]any{"run.runId": "0176a8c2-fe01-7439-87e6-56a1a1b4029g"}), "run.runId", "must be a UUID"},
		{"runId a number", event(t, map[string]any{"run.runId": 42}), "run.runId", "must be a JSON string"},
		{"job missing", event(t, map[string]any{"job": nil}), "job", "is required"},
		{"job an array", event(t, map[string]any{"job": []any{}}), "job", "must be a JSON object (got an array)"},
		{"job.namespace missing", event(t, map[string]any{"job.namespace": nil}), "job.namespace", "is required"},
		{"job.namespace empty", event(t, map[string]any{"job.namespace": ""}), "job.namespace", "must not be empty"},
		{"job.name blank", event(t, map[string]any{"job.name": " \t"}), "job.name", "must not be empty"},
		{"job.name too long", event(t, map[string]any{"job.name": long}), "job.name", "at most 1024 bytes"},
		{"job.name control character", event(t, map[string]any{"job.name": "a\u0007b"}), "job.name", "control characters (U+0007 at byte 1)"},
		{"job.name C1 control", event(t, map[string]any{"job.name": "a\u0085"}), "job.name", "control characters"},
		{"invalid UTF-8", []byte(strings.Replace(base, `"analytics.session_events_train"`, "\"bad\xff\xfename\"", 1)), "body", "must be UTF-8 text (an invalid byte sequence starts at byte"},
		{"job.name lone surrogate", []byte(strings.Replace(base, `"analytics.session_events_train"`, `"bad\ud800name"`, 1)), "job.name", "lone surrogate"},
		{"job.name a number", event(t, map[string]any{"job.name": 7}), "job.name", "must be a JSON string"},
		{"inputs not an array", event(t, map[string]any{"inputs": map[string]any{"namespace": "n", "name": "i"}}), "inputs", "must be a JSON array"},
		{"outputs a string", event(t, map[string]any{"outputs": "t"}), "outputs", "must be a JSON array"},
		{"input not an object", event(t, map[string]any{"inputs": []any{map[string]any{"namespace": "n", "name": "i"}, "n.i"}}), "inputs[1]", "must be a JSON object"},
		{"input name missing", event(t, map[string]any{"inputs": []any{
			map[string]any{"namespace": "n", "name": "a"}, map[string]any{"namespace": "n", "name": "b"}, map[string]any{"namespace": "n"},
		}}), "inputs[2].name", "is required"},
		{"output namespace too long", event(t, map[string]any{"outputs": []any{map[string]any{"namespace": long, "name": "o"}}}), "outputs[0].namespace", "at most 1024 bytes"},
		{"output name control character", event(t, map[string]any{"outputs": []any{map[string]any{"namespace": "n", "name": "o\n"}}}), "outputs[0].name", "control characters"},
		{"run.facets not an object", event(t, map[string]any{"run.facets": []any{}}), "run.facets", "must be a JSON object"},
		{"run facet a string", event(t, map[string]any{"run.facets.parent": "x"}), "run.facets.parent", "must be a JSON object, as every facet is (got a string)"},
		{"run facet null", event(t, map[string]any{"run.facets.parent": json.RawMessage(`null`)}), "run.facets.parent", "(got null)"},
		{"job facet an array", event(t, map[string]any{"job.facets.sql": []any{"select 1"}}), "job.facets.sql", "must be a JSON object"},
		{"dataset facet with an odd key", event(t, map[string]any{"inputs": []any{map[string]any{"namespace": "n", "name": "i", "facets": map[string]any{"a.b": 1}}}}),
			`inputs[0].facets["a.b"]`, "(got a number)"},
		{"inputFacets not an object", event(t, map[string]any{"inputs": []any{map[string]any{"namespace": "n", "name": "i", "inputFacets": true}}}),
			"inputs[0].inputFacets", "(got a boolean)"},
		{"outputFacets value an array", event(t, map[string]any{"outputs": []any{map[string]any{"namespace": "n", "name": "o", "outputFacets": map[string]any{"outputStatistics": []any{}}}}}),
			"outputs[0].outputFacets.outputStatistics", "must be a JSON object"},
		{"too many inputs", event(t, map[string]any{"inputs": datasets(MaxDatasets + 1)}), "inputs", "at most 10000 datasets; this event lists 10001"},
		{"too many in all", event(t, map[string]any{"inputs": datasets(6000), "outputs": datasets(5000)}), "outputs", "at most 10000 datasets; this event lists 11000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.body)
			if err == nil {
				t.Fatalf("Parse accepted %s", tt.body)
			}
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("error %v does not unwrap to errs.ErrInvalid", err)
			}
			got := problems(t, err)
			rule, ok := got[tt.field]
			if !ok {
				t.Fatalf("no problem on %q; got %v", tt.field, got)
			}
			if !strings.Contains(rule, tt.frag) {
				t.Errorf("%s: %q does not contain %q", tt.field, rule, tt.frag)
			}
			if len(got) != 1 {
				t.Errorf("want only the problem on %s, got %v", tt.field, got)
			}
		})
	}
}

func TestParseCollectsProblems(t *testing.T) {
	body := event(t, map[string]any{"eventTime": nil, "run.runId": "nope", "job.name": "", "inputs": []any{7}})
	_, err := Parse(body)
	var fes errs.FieldErrors
	if !errors.As(err, &fes) || !errors.Is(err, errs.ErrInvalid) {
		t.Fatalf("err = %v (%T), want errs.FieldErrors", err, err)
	}
	var fields []string
	for _, f := range fes {
		fields = append(fields, f.Field)
	}
	if want := []string{"eventTime", "run.runId", "job.name", "inputs[0]"}; !slices.Equal(fields, want) {
		t.Errorf("fields = %v, want %v", fields, want)
	}
}

func TestParseCapsProblems(t *testing.T) {
	ins := make([]any, 200)
	for i := range ins {
		ins[i] = map[string]any{"namespace": "n"}
	}
	_, err := Parse(event(t, map[string]any{"inputs": ins}))
	var fes errs.FieldErrors
	if !errors.As(err, &fes) {
		t.Fatalf("err = %v", err)
	}
	if len(fes) != maxErrors+1 {
		t.Fatalf("%d problems, want %d", len(fes), maxErrors+1)
	}
	if last := fes[len(fes)-1]; last.Field != "body" || !strings.Contains(last.Rule, "150 more problems") {
		t.Errorf("last problem = %v", last)
	}
}

func TestTerminal(t *testing.T) {
	for typ, want := range map[string]bool{Start: false, Running: false, Complete: true, Abort: true, Fail: true, Other: false} {
		if got := (RunEvent{EventType: typ}).Terminal(); got != want {
			t.Errorf("%s: Terminal = %v, want %v", typ, got, want)
		}
	}
}

func TestParent(t *testing.T) {
	const parentID = "0176a8c2-fd00-7000-8000-000000000001"
	tests := []struct {
		name   string
		facet  string // "" for no parent facet
		want   *ParentRef
		field  string
		frag   string
		fields int // number of problems, when more than one
	}{
		{name: "absent"},
		{name: "valid, upper-case id", facet: `{"run":{"runId":"0176A8C2-FD00-7000-8000-000000000001"},"job":{"namespace":"metaflow","name":"SessionRecFlow"},"root":{"run":{"runId":"` + parentID + `"}}}`,
			want: &ParentRef{RunID: parentID, JobNamespace: "metaflow", JobName: "SessionRecFlow"}},
		{name: "not an object", facet: `"` + parentID + `"`, field: "run.facets.parent", frag: "must be a JSON object"},
		{name: "run missing", facet: `{"job":{"namespace":"metaflow","name":"SessionRecFlow"}}`, field: "run.facets.parent.run", frag: "is required"},
		{name: "run not an object", facet: `{"run":"` + parentID + `","job":{"namespace":"metaflow","name":"SessionRecFlow"}}`, field: "run.facets.parent.run", frag: "must be a JSON object"},
		{name: "runId not a UUID", facet: `{"run":{"runId":"42"},"job":{"namespace":"metaflow","name":"SessionRecFlow"}}`, field: "run.facets.parent.run.runId", frag: "must be a UUID"},
		{name: "runId is the run's own", facet: `{"run":{"runId":"` + runID + `"},"job":{"namespace":"metaflow","name":"SessionRecFlow"}}`, field: "run.facets.parent.run.runId", frag: "cannot be its own parent"},
		{name: "job missing", facet: `{"run":{"runId":"` + parentID + `"}}`, field: "run.facets.parent.job", frag: "is required"},
		{name: "job name empty", facet: `{"run":{"runId":"` + parentID + `"},"job":{"namespace":"metaflow","name":""}}`, field: "run.facets.parent.job.name", frag: "must not be empty"},
		{name: "job name invalid UTF-8", facet: "{\"run\":{\"runId\":\"" + parentID + "\"},\"job\":{\"namespace\":\"m\",\"name\":\"a\xffb\"}}", field: "run.facets.parent.job.name", frag: "valid UTF-8"},
		{name: "job namespace lone low surrogate", facet: `{"run":{"runId":"` + parentID + `"},"job":{"namespace":"m\udc00","name":"f"}}`, field: "run.facets.parent.job.namespace", frag: "lone surrogate"},
		{name: "job namespace high surrogate then text", facet: `{"run":{"runId":"` + parentID + `"},"job":{"namespace":"m\ud83dx","name":"f"}}`, field: "run.facets.parent.job.namespace", frag: "lone surrogate"},
		{name: "everything wrong", facet: `{"run":{"runId":7},"job":{"namespace":7}}`, field: "run.facets.parent.job.name", frag: "is required", fields: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := Run{RunID: runID}
			if tt.facet != "" {
				// Through Parse when it can, by hand for what Parse refuses.
				if body := event(t, map[string]any{"run.facets.parent": json.RawMessage(tt.facet)}); kind([]byte(tt.facet)) == '{' && utf8.Valid(body) {
					run = mustParse(t, body).Run
				} else {
					run.Facets = Facets{"parent": json.RawMessage(tt.facet)}
				}
			}
			got, err := run.Parent()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Parent: %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("Parent (-want +got):\n%s", diff)
				}
				return
			}
			if got != nil || !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("Parent = %v, %v; want nil and an errs.ErrInvalid", got, err)
			}
			p := problems(t, err)
			if !strings.Contains(p[tt.field], tt.frag) {
				t.Errorf("problems %v: want %q on %s", p, tt.frag, tt.field)
			}
			if n := max(tt.fields, 1); len(p) != n {
				t.Errorf("%d problems, want %d: %v", len(p), n, p)
			}
		})
	}
}

func TestRunFacets(t *testing.T) {
	ev := mustParse(t, event(t, map[string]any{
		"eventType": "FAIL",
		"run.facets": map[string]any{
			"errorMessage": map[string]any{"message": "division by zero", "programmingLanguage": "python", "stackTrace": "Traceback…"},
			"nominalTime":  map[string]any{"nominalStartTime": "2026-11-20T03:00:00+01:00", "nominalEndTime": "2026-11-20T04:00:00+01:00"},
		},
	}))
	if got := ev.Run.ErrorMessage(); got != "division by zero" {
		t.Errorf("ErrorMessage = %q", got)
	}
	want := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)
	if got := ev.Run.NominalStart(); got == nil || !got.Equal(want) {
		t.Errorf("NominalStart = %v, want %v", got, want)
	}

	bad := Run{Facets: Facets{"errorMessage": json.RawMessage(`{"message":42}`), "nominalTime": json.RawMessage(`{"nominalStartTime":"yesterday"}`)}}
	if bad.ErrorMessage() != "" || bad.NominalStart() != nil {
		t.Errorf("malformed facets read as %q, %v", bad.ErrorMessage(), bad.NominalStart())
	}
}

func TestSourceCode(t *testing.T) {
	ev := mustParse(t, event(t, map[string]any{"job.facets.sourceCodeLocation": map[string]any{
		"_producer": "https://acme.example/p",
		"type":      "git",
		"url":       "https://github.com/acme/recs/blob/9f8e7d6c5b4a39281706f5e4d3c2b1a098765432/flows/session.py",
		"repoUrl":   "git@github.com:acme/recs.git",
		"path":      "flows/session.py",
		"version":   "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
		"tag":       "v1.4.0",
		"branch":    "main",
	}}))
	want := &SourceCode{
		Type:    "git",
		URL:     "https://github.com/acme/recs/blob/9f8e7d6c5b4a39281706f5e4d3c2b1a098765432/flows/session.py",
		RepoURL: "git@github.com:acme/recs.git",
		Path:    "flows/session.py",
		Version: "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
		Tag:     "v1.4.0",
		Branch:  "main",
	}
	if diff := cmp.Diff(want, ev.Job.SourceCode()); diff != "" {
		t.Errorf("SourceCode (-want +got):\n%s", diff)
	}
	deleted := Job{Facets: Facets{"sourceCodeLocation": json.RawMessage(`{"_deleted":true}`)}}
	if got := deleted.SourceCode(); got != nil {
		t.Errorf("deleted facet read as %+v", got)
	}
	partial := Job{Facets: Facets{"sourceCodeLocation": json.RawMessage(`{"type":"git","version":123}`)}}
	if got := partial.SourceCode(); got == nil || got.Type != "git" || got.Version != "" {
		t.Errorf("partial facet read as %+v", got)
	}
}

func TestDatasetFacets(t *testing.T) {
	nested := `{"fields":[{"name":"user","type":"STRUCT","description":"who","fields":[{"name":"id","type":"INT64"},{"name":"tags","type":"ARRAY","fields":[{"name":"_element","type":"STRING"}]}]},"junk",{"name":"ts","type":"TIMESTAMP"}]}`
	quality := `{"rowCount":5000,"bytes":1048576,"fileCount":3,"columnMetrics":{
		"price":{"nullCount":12,"distinctCount":450,"sum":125000.5,"count":4988,"min":0.99,"max":999,"quantiles":{"0.5":19.99,"0.99":420,"bad":"x"}},
		"sku":{"nullCount":0,"distincCount":4988},
		"broken":"x"}}`
	body := `{"eventTime":"2026-11-20T03:05:11.412Z","producer":"https://acme.example/p","schemaURL":"` + runSchema + `",
	 "run":{"runId":"` + runID + `"},"job":{"namespace":"n","name":"j"},
	 "inputs":[{"namespace":"n","name":"i","facets":{"schema":` + nested + `,"version":{"datasetVersion":"v42"}},"inputFacets":{"dataQualityMetrics":` + quality + `}}],
	 "outputs":[{"namespace":"n","name":"o","facets":{"version":{"datasetVersion":7}},"outputFacets":{"outputStatistics":{"rowCount":10,"size":2048,"fileCount":1}}}]}`
	ev := mustParse(t, []byte(body))
	in, out := ev.Inputs[0], ev.Outputs[0]

	wantSchema := []Field{
		{Name: "user", Type: "STRUCT", Description: "who", Fields: []Field{
			{Name: "id", Type: "INT64"},
			{Name: "tags", Type: "ARRAY", Fields: []Field{{Name: "_element", Type: "STRING"}}},
		}},
		{Name: "ts", Type: "TIMESTAMP"},
	}
	if diff := cmp.Diff(wantSchema, in.Schema()); diff != "" {
		t.Errorf("Schema (-want +got):\n%s", diff)
	}
	if out.Schema() != nil {
		t.Errorf("output Schema = %v, want nil", out.Schema())
	}
	if got := in.Version(); got != "v42" {
		t.Errorf("input Version = %q", got)
	}
	if got := out.Version(); got != "" {
		t.Errorf("output Version (a number) = %q, want \"\"", got)
	}

	for _, c := range []struct {
		name      string
		got, want *int64
	}{
		{"input RowCount", in.RowCount(), ptr[int64](5000)},
		{"input Bytes", in.Bytes(), ptr[int64](1048576)},
		{"output RowCount", out.RowCount(), ptr[int64](10)},
		{"output Bytes", out.Bytes(), ptr[int64](2048)},
	} {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}

	want := map[string]ColumnStats{
		"price": {NullCount: ptr[int64](12), DistinctCount: ptr[int64](450), Sum: ptr(125000.5), Count: ptr(4988.0), Min: ptr(0.99), Max: ptr(999.0),
			Quantiles: map[string]float64{"0.5": 19.99, "0.99": 420}},
		"sku": {NullCount: ptr[int64](0), DistinctCount: ptr[int64](4988)},
	}
	if diff := cmp.Diff(want, in.ColumnStats()); diff != "" {
		t.Errorf("ColumnStats (-want +got):\n%s", diff)
	}
	if out.ColumnStats() != nil {
		t.Errorf("output ColumnStats = %v", out.ColumnStats())
	}
}

func TestCounts(t *testing.T) {
	tests := []struct {
		name string
		d    Dataset
		rows *int64
		size *int64
	}{
		{"none", Dataset{}, nil, nil},
		{"output statistics first", Dataset{
			OutputFacets: Facets{"outputStatistics": json.RawMessage(`{"rowCount":1}`)},
			InputFacets:  Facets{"dataQualityMetrics": json.RawMessage(`{"rowCount":2,"bytes":20}`)},
		}, ptr[int64](1), ptr[int64](20)},
		{"dataset dataQualityMetrics facet last", Dataset{
			Facets: Facets{"dataQualityMetrics": json.RawMessage(`{"rowCount":3,"bytes":30}`)},
		}, ptr[int64](3), ptr[int64](30)},
		{"exponent", Dataset{OutputFacets: Facets{"outputStatistics": json.RawMessage(`{"rowCount":1.5e3,"size":9223372036854775807}`)}}, ptr[int64](1500), ptr[int64](9223372036854775807)},
		{"not counts", Dataset{OutputFacets: Facets{"outputStatistics": json.RawMessage(`{"rowCount":-1,"size":9223372036854775808}`)}}, nil, nil},
		{"fraction, string", Dataset{OutputFacets: Facets{"outputStatistics": json.RawMessage(`{"rowCount":1.5,"size":"10"}`)}}, nil, nil},
		{"huge", Dataset{OutputFacets: Facets{"outputStatistics": json.RawMessage(`{"rowCount":1e400,"size":1e19}`)}}, nil, nil},
		{"malformed facet", Dataset{OutputFacets: Facets{"outputStatistics": json.RawMessage(`[1]`)}}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.rows, tt.d.RowCount()); diff != "" {
				t.Errorf("RowCount (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.size, tt.d.Bytes()); diff != "" {
				t.Errorf("Bytes (-want +got):\n%s", diff)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func FuzzParse(f *testing.F) {
	f.Add(sample(f))
	f.Add(event(f, nil))
	f.Add(event(f, map[string]any{"run.facets.parent": map[string]any{"run": map[string]any{"runId": runID}}}))
	f.Add(event(f, map[string]any{"inputs": datasets(2), "outputs": []any{map[string]any{"namespace": "n", "name": "o", "outputFacets": map[string]any{"outputStatistics": map[string]any{"rowCount": 1}}}}}))
	f.Add([]byte(`{"eventTime":"2026-11-20T03:05:11.412Z","producer":"https://p","schemaURL":"https://s#/$defs/DatasetEvent","dataset":{}}`))
	f.Add([]byte(`{"job":{"namespace":"n","name":"j\ud800"}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Add([]byte(`{"run":{"runId":1},"inputs":{},"outputs":[null,1,{"facets":[]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := Parse(body)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("error %v (%T) does not unwrap to errs.ErrInvalid", err, err)
			}
			for field, rule := range problems(t, err) {
				if field == "" || rule == "" {
					t.Fatalf("problem without a field or a rule: %q: %q", field, rule)
				}
			}
			return
		}
		if id, ok := parseUUID(ev.Run.RunID); !ok || id != ev.Run.RunID {
			t.Fatalf("RunID %q is not a canonical UUID", ev.Run.RunID)
		}
		if !slices.Contains(eventTypes, ev.EventType) {
			t.Fatalf("EventType %q", ev.EventType)
		}
		if ev.EventTime.IsZero() || ev.Producer == "" || ev.SchemaURL == "" || ev.Job.Namespace == "" || ev.Job.Name == "" {
			t.Fatalf("accepted an event missing a required member: %+v", ev)
		}
		if len(ev.Inputs)+len(ev.Outputs) > MaxDatasets {
			t.Fatalf("%d datasets", len(ev.Inputs)+len(ev.Outputs))
		}
		if _, err := ev.Run.Parent(); err != nil && !errors.Is(err, errs.ErrInvalid) {
			t.Fatalf("Parent error %v does not unwrap to errs.ErrInvalid", err)
		}
		ev.Run.ErrorMessage()
		ev.Run.NominalStart()
		ev.Job.SourceCode()
		for _, d := range slices.Concat(ev.Inputs, ev.Outputs) {
			if d.Namespace == "" || d.Name == "" {
				t.Fatalf("dataset without a namespace or a name: %+v", d)
			}
			d.Schema()
			d.Version()
			d.RowCount()
			d.Bytes()
			d.ColumnStats()
		}
	})
}
