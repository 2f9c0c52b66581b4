package openlineage

import (
	"bytes"
	"encoding/json"
	"time"
)

// ParentRef names the run that started a run (the "parent" run facet): a
// dbt model run inside a Metaflow flow run, an Airflow task inside a DAG run.
type ParentRef struct {
	RunID        string // canonical lower-case UUID
	JobNamespace string
	JobName      string
}

// Parent reads the "parent" run facet (ParentRunFacet): nil, nil when the
// run has none; an error (field errors on run.facets.parent…, unwrapping to
// errs.ErrInvalid) when it is malformed or names the run itself. Parse does
// not call it: the caller decides whether a bad parent rejects the event.
func (r Run) Parent() (*ParentRef, error) {
	raw, ok := present(r.Facets, "parent")
	if !ok {
		return nil, nil
	}
	const at = "run.facets.parent"
	c := &collector{}
	p, ok := c.obj(raw, at)
	if !ok {
		return nil, c.err()
	}
	var ref ParentRef
	if raw, ok := present(p, "run"); !ok {
		c.add(at+".run", "is required: an object with the parent run's runId")
	} else if run, ok := c.obj(raw, at+".run"); ok {
		if raw, ok := present(run, "runId"); !ok {
			c.add(at+".run.runId", "is required: the parent run's UUID")
		} else if s, ok := c.str(raw, at+".run.runId"); ok {
			switch id, ok := parseUUID(s); {
			case !ok:
				c.add(at+".run.runId", "must be a UUID such as 0176a8c2-fd00-7000-8000-000000000001 (got %s)", quote(s))
			case id == r.RunID:
				c.add(at+".run.runId", "must differ from run.runId: a run cannot be its own parent")
			default:
				ref.RunID = id
			}
		}
	}
	if raw, ok := present(p, "job"); !ok {
		c.add(at+".job", "is required: an object with the parent job's namespace and name")
	} else if job, ok := c.obj(raw, at+".job"); ok {
		ref.JobNamespace = c.name(job, "namespace", at+".job.namespace")
		ref.JobName = c.name(job, "name", at+".job.name")
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return &ref, nil
}

// ErrorMessage is the "errorMessage" run facet's message, "" if none.
func (r Run) ErrorMessage() string {
	return str(facet(r.Facets, "errorMessage"), "message")
}

// NominalStart is the "nominalTime" run facet's nominalStartTime: when the
// run was scheduled to start. Nil if absent or not an RFC 3339 date-time.
func (r Run) NominalStart() *time.Time {
	t, ok := parseTime(str(facet(r.Facets, "nominalTime"), "nominalStartTime"))
	if !ok {
		return nil
	}
	return &t
}

// SourceCode is the "sourceCodeLocation" job facet: where the job's code
// lives.
type SourceCode struct {
	Type    string // "git", "svn", …
	URL     string // a URL to the code at this version
	RepoURL string
	Path    string
	Version string // usually the commit
	Tag     string
	Branch  string
}

// SourceCode reads the "sourceCodeLocation" job facet; nil if absent.
// Members of the wrong JSON type read as "".
func (j Job) SourceCode() *SourceCode {
	f := facet(j.Facets, "sourceCodeLocation")
	if f == nil {
		return nil
	}
	return &SourceCode{
		Type:    str(f, "type"),
		URL:     str(f, "url"),
		RepoURL: str(f, "repoUrl"),
		Path:    str(f, "path"),
		Version: str(f, "version"),
		Tag:     str(f, "tag"),
		Branch:  str(f, "branch"),
	}
}

// Field is a field of a dataset's schema; Fields holds the subfields of a
// struct, map or array type.
type Field struct {
	Name, Type, Description string
	Fields                  []Field
}

// Schema reads the "schema" dataset facet's fields: nil if there is no
// schema facet or it has no fields array. Elements that are not objects are
// skipped.
func (d Dataset) Schema() []Field {
	a, ok := facet(d.Facets, "schema")["fields"].([]any)
	if !ok {
		return nil
	}
	return fields(a)
}

func fields(a []any) []Field {
	out := make([]Field, 0, len(a))
	for _, v := range a {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		f := Field{Name: str(m, "name"), Type: str(m, "type"), Description: str(m, "description")}
		if sub, ok := m["fields"].([]any); ok && len(sub) > 0 {
			f.Fields = fields(sub)
		}
		out = append(out, f)
	}
	return out
}

// Version is the "version" dataset facet's datasetVersion, "" if none.
func (d Dataset) Version() string {
	return str(facet(d.Facets, "version"), "datasetVersion")
}

// RowCount is the output's outputStatistics.rowCount, else the input's
// dataQualityMetrics.rowCount (the input facet, then the newer dataset
// facet of that name); nil if none is a non-negative integer.
func (d Dataset) RowCount() *int64 {
	return firstCount(d.stats(), "rowCount", "rowCount", "rowCount")
}

// Bytes is the output's outputStatistics.size, else the input's
// dataQualityMetrics.bytes; nil if none.
func (d Dataset) Bytes() *int64 {
	return firstCount(d.stats(), "size", "bytes", "bytes")
}

// stats are the facets that hold a dataset's statistics, in order of
// preference.
func (d Dataset) stats() []map[string]any {
	return []map[string]any{
		facet(d.OutputFacets, "outputStatistics"),
		facet(d.InputFacets, "dataQualityMetrics"),
		facet(d.Facets, "dataQualityMetrics"),
	}
}

func firstCount(fs []map[string]any, keys ...string) *int64 {
	for i, f := range fs {
		if n := count(f[keys[i]]); n != nil {
			return n
		}
	}
	return nil
}

// ColumnStats are a column's data-quality metrics; nil members were not
// reported.
type ColumnStats struct {
	NullCount, DistinctCount *int64
	Sum, Count, Min, Max     *float64
	Quantiles                map[string]float64 // quantile ("0.5") to value
}

// ColumnStats reads dataQualityMetrics.columnMetrics (the input facet, else
// the newer dataset facet), keyed by column name; nil if none.
func (d Dataset) ColumnStats() map[string]ColumnStats {
	cm, ok := facet(d.InputFacets, "dataQualityMetrics")["columnMetrics"].(map[string]any)
	if !ok {
		cm, ok = facet(d.Facets, "dataQualityMetrics")["columnMetrics"].(map[string]any)
	}
	if !ok || len(cm) == 0 {
		return nil
	}
	out := make(map[string]ColumnStats, len(cm))
	for col, v := range cm {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		s := ColumnStats{
			NullCount:     count(m["nullCount"]),
			DistinctCount: count(m["distinctCount"]),
			Sum:           number(m["sum"]),
			Count:         number(m["count"]),
			Min:           number(m["min"]),
			Max:           number(m["max"]),
		}
		if s.DistinctCount == nil {
			// The spec's own example spells it so.
			s.DistinctCount = count(m["distincCount"])
		}
		if q, ok := m["quantiles"].(map[string]any); ok {
			for k, v := range q {
				if x := number(v); x != nil {
					if s.Quantiles == nil {
						s.Quantiles = make(map[string]float64, len(q))
					}
					s.Quantiles[k] = *x
				}
			}
		}
		out[col] = s
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// facet decodes facet key of f, numbers kept as json.Number; nil when it is
// absent, not an object, or marked {"_deleted": true}.
func facet(f Facets, key string) map[string]any {
	raw, ok := f[key]
	if !ok {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil {
		return nil
	}
	if del, _ := m["_deleted"].(bool); del {
		return nil
	}
	return m
}

// str is m[key] if it is a string, "" otherwise.
func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

// count reads a non-negative integer that fits an int64 ("1843221",
// "1.843221e6"); nil otherwise.
func count(v any) *int64 {
	n, ok := v.(json.Number)
	if !ok {
		return nil
	}
	if i, err := n.Int64(); err == nil {
		if i < 0 {
			return nil
		}
		return &i
	}
	f, err := n.Float64()
	// 1<<63 is the first float64 past math.MaxInt64.
	if err != nil || f < 0 || f >= 1<<63 || f != float64(int64(f)) {
		return nil
	}
	i := int64(f)
	return &i
}

// number reads a finite JSON number; nil otherwise.
func number(v any) *float64 {
	n, ok := v.(json.Number)
	if !ok {
		return nil
	}
	f, err := n.Float64()
	if err != nil {
		return nil
	}
	return &f
}
