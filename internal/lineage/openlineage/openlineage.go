// Package openlineage parses and validates OpenLineage RunEvents (spec
// 2-0-x) into Go values. It knows nothing of storage: the ingestion code
// decides what to keep.
//
// Parse checks what the RunEvent schema requires (eventTime, producer,
// schemaURL, run.runId, job.namespace, job.name, dataset names) and the
// shape of every container, and keeps every facet as raw JSON, known or
// not. Known facets are read lazily by accessors (Run.Parent,
// Dataset.Schema, Dataset.RowCount, ...), which are lenient: a facet that
// does not have the expected shape reads as absent, except the parent facet,
// whose malformation Run.Parent reports.
//
// Every validation failure is an *errs.FieldError or an errs.FieldErrors
// (several problems at once); both unwrap to errs.ErrInvalid. Field names
// are JSON paths into the event: "run.runId", "inputs[2].name",
// "run.facets.parent.run.runId"; the whole body is "body".
package openlineage

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/slipway-ml/slipway/internal/errs"
)

// Limits.
const (
	// MaxDatasets bounds len(Inputs)+len(Outputs) of one event.
	MaxDatasets = 10000
	// MaxNameBytes bounds a job's or dataset's namespace and name.
	MaxNameBytes = 1024
	// MaxURIBytes bounds producer and schemaURL.
	MaxURIBytes = 8192
	// maxErrors bounds the problems reported for one event; the rest are
	// counted in a last "body" entry.
	maxErrors = 50
)

// Event types of the RunEvent eventType enum.
const (
	Start    = "START"
	Running  = "RUNNING"
	Complete = "COMPLETE"
	Abort    = "ABORT"
	Fail     = "FAIL"
	Other    = "OTHER"
)

var eventTypes = []string{Start, Running, Complete, Abort, Fail, Other}

// RunEvent is one OpenLineage RunEvent.
type RunEvent struct {
	EventType string // START, RUNNING, COMPLETE, ABORT, FAIL or OTHER (absent, null or "" reads as OTHER)
	EventTime time.Time
	Producer  string
	SchemaURL string
	Run       Run
	Job       Job
	Inputs    []Dataset
	Outputs   []Dataset
}

// Terminal reports whether the event ends its run: COMPLETE, FAIL or ABORT.
func (e RunEvent) Terminal() bool {
	switch e.EventType {
	case Complete, Fail, Abort:
		return true
	}
	return false
}

// Run is the run an event reports on.
type Run struct {
	RunID  string // canonical lower-case UUID
	Facets Facets
}

// Job is the job a run is an instance of.
type Job struct {
	Namespace, Name string
	Facets          Facets
}

// Dataset is an input or an output of a run.
type Dataset struct {
	Namespace, Name string
	Facets          Facets // dataset facets
	InputFacets     Facets // inputFacets (inputs only)
	OutputFacets    Facets // outputFacets (outputs only)
}

// Facets keeps every facet as raw JSON, known or not: unknown facets are
// preserved byte for byte, never rejected. Each value is a JSON object.
type Facets map[string]json.RawMessage

// Parse reads one event. It rejects, with the reason, what is not a RunEvent:
// not JSON, not an object, a DatasetEvent or a JobEvent, or a RunEvent that
// breaks the spec's rules. Unknown keys are allowed everywhere; JSON null
// for an optional key reads as if the key were absent.
func Parse(body []byte) (RunEvent, error) {
	top, err := parseBody(body)
	if err != nil {
		return RunEvent{}, err
	}
	if err := checkEventKind(top); err != nil {
		return RunEvent{}, err
	}

	c := &collector{}
	var ev RunEvent

	// eventType: optional; the spec's enum, case-sensitive.
	ev.EventType = Other
	if raw, ok := present(top, "eventType"); ok {
		if s, ok := c.str(raw, "eventType"); ok && s != "" {
			if slices.Contains(eventTypes, s) {
				ev.EventType = s
			} else {
				c.add("eventType", "must be one of %s (got %s)", strings.Join(eventTypes, ", "), quote(s))
			}
		}
	}

	// eventTime: required, RFC 3339.
	if raw, ok := present(top, "eventTime"); !ok {
		c.add("eventTime", "is required: an RFC 3339 date-time such as 2026-11-20T03:05:11.412Z")
	} else if s, ok := c.str(raw, "eventTime"); ok {
		if t, ok := parseTime(s); ok {
			ev.EventTime = t
		} else {
			c.add("eventTime", "must be an RFC 3339 date-time with a time-zone offset, such as 2026-11-20T03:05:11.412Z or 2026-11-20T03:05:11.412+00:00 (got %s)", quote(s))
		}
	}

	ev.Producer = c.uri(top, "producer", "https://github.com/OpenLineage/OpenLineage/tree/1.24.0/integration/dbt")
	ev.SchemaURL = c.uri(top, "schemaURL", "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent")

	// run: required object with a UUID runId.
	if raw, ok := present(top, "run"); !ok {
		c.add("run", "is required: an object with a runId")
	} else if run, ok := c.obj(raw, "run"); ok {
		if raw, ok := present(run, "runId"); !ok {
			c.add("run.runId", "is required: a UUID")
		} else if s, ok := c.str(raw, "run.runId"); ok {
			if id, ok := parseUUID(s); ok {
				ev.Run.RunID = id
			} else {
				c.add("run.runId", "must be a UUID such as 0176a8c2-fe01-7439-87e6-56a1a1b4029f (got %s)", quote(s))
			}
		}
		ev.Run.Facets = c.facets(run, "facets", "run.facets")
	}

	// job: required object with a namespace and a name.
	if raw, ok := present(top, "job"); !ok {
		c.add("job", "is required: an object with a namespace and a name")
	} else if job, ok := c.obj(raw, "job"); ok {
		ev.Job.Namespace = c.name(job, "namespace", "job.namespace")
		ev.Job.Name = c.name(job, "name", "job.name")
		ev.Job.Facets = c.facets(job, "facets", "job.facets")
	}

	// inputs and outputs: optional arrays of datasets, MaxDatasets in all.
	ins := c.arr(top, "inputs")
	outs := c.arr(top, "outputs")
	if n := len(ins) + len(outs); n > MaxDatasets {
		field := "outputs"
		if len(ins) > MaxDatasets {
			field = "inputs"
		}
		c.add(field, "inputs and outputs together must list at most %d datasets; this event lists %d", MaxDatasets, n)
	} else {
		ev.Inputs = c.datasets(ins, "inputs", "inputFacets")
		ev.Outputs = c.datasets(outs, "outputs", "outputFacets")
	}

	if err := c.err(); err != nil {
		return RunEvent{}, err
	}
	return ev, nil
}

const wantRunEvent = "must be a JSON object: an OpenLineage RunEvent"

// parseBody splits the body into its top-level keys.
func parseBody(body []byte) (map[string]json.RawMessage, error) {
	k := kind(body)
	if k == 0 {
		return nil, errs.Invalid("body", "must not be empty: it must be a JSON object, an OpenLineage RunEvent")
	}
	// RFC 8259 JSON is UTF-8; encoding/json would let invalid bytes
	// through into facets, which PostgreSQL's jsonb then refuses.
	if i := invalidUTF8At(body); i >= 0 {
		return nil, errs.Invalid("body", "must be UTF-8 text (an invalid byte sequence starts at byte %d)", i)
	}
	if !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, errs.Invalid("body", "is not valid JSON: %s (at byte %d); it must be a JSON object, an OpenLineage RunEvent", se.Error(), se.Offset)
		}
		return nil, errs.Invalid("body", "is not valid JSON; it must be a JSON object, an OpenLineage RunEvent")
	}
	if k != '{' {
		return nil, errs.Invalid("body", "%s (got %s)", wantRunEvent, kindName(k))
	}
	return splitObject(body), nil
}

// checkEventKind rejects the other OpenLineage events: a DatasetEvent has a
// dataset and no run, a JobEvent a job and no run; and any event whose
// schemaURL fragment names another definition than RunEvent.
func checkEventKind(top map[string]json.RawMessage) error {
	claimed := schemaDef(top)
	if _, ok := present(top, "run"); !ok {
		if _, ok := present(top, "dataset"); ok {
			return errs.Invalid("run", "is missing: this is an OpenLineage DatasetEvent; only RunEvents are accepted")
		}
		if _, ok := present(top, "job"); ok && claimed != "RunEvent" {
			return errs.Invalid("run", "is missing: this is an OpenLineage JobEvent; only RunEvents are accepted")
		}
	}
	if claimed != "" && claimed != "RunEvent" {
		if claimed == "DatasetEvent" || claimed == "JobEvent" {
			return errs.Invalid("schemaURL", "names %s: this is an OpenLineage %s; only RunEvents are accepted", claimed, claimed)
		}
		return errs.Invalid("schemaURL", "names %s: this is not an OpenLineage RunEvent; only RunEvents are accepted", quote(claimed))
	}
	return nil
}

// schemaDef is the event definition a schemaURL's fragment names, as in
// "…/OpenLineage.json#/$defs/RunEvent" (or "#/definitions/RunEvent" of the
// older specs); "" when it names none.
func schemaDef(top map[string]json.RawMessage) string {
	raw, ok := present(top, "schemaURL")
	if !ok || kind(raw) != '"' {
		return ""
	}
	s, ok := unquote(raw)
	if !ok {
		return ""
	}
	_, frag, ok := strings.Cut(s, "#")
	if !ok {
		return ""
	}
	if f, err := url.PathUnescape(frag); err == nil {
		frag = f
	}
	for _, p := range []string{"/$defs/", "/definitions/"} {
		if name, ok := strings.CutPrefix(frag, p); ok && strings.HasSuffix(name, "Event") && !strings.Contains(name, "/") {
			return name
		}
	}
	return ""
}

// parseTime reads an RFC 3339 date-time, with or without fractional
// seconds; "t" and "z" may be lower case, as RFC 3339 allows.
func parseTime(s string) (time.Time, bool) {
	if len(s) < len("2006-01-02T15:04:05Z") || len(s) > 64 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s))
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// parseUUID accepts the 8-4-4-4-12 hexadecimal form of a UUID of any
// version and returns it in lower case.
func parseUUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
			continue
		}
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return "", false
		}
	}
	return strings.ToLower(s), true
}

// collector gathers the problems of one event, at most maxErrors of them.
type collector struct {
	fe      errs.FieldErrors
	dropped int
}

func (c *collector) add(field, format string, args ...any) {
	if len(c.fe) >= maxErrors {
		c.dropped++
		return
	}
	c.fe.Add(field, format, args...)
}

// err is nil, the one problem, or all of them.
func (c *collector) err() error {
	switch {
	case len(c.fe) == 0:
		return nil
	case len(c.fe) == 1:
		return c.fe[0]
	}
	fe := c.fe
	if c.dropped > 0 {
		fe = append(fe, &errs.FieldError{Field: "body", Rule: fmt.Sprintf("has %d more problems, not listed", c.dropped)})
	}
	return fe
}

// str reads a JSON string.
func (c *collector) str(raw json.RawMessage, field string) (string, bool) {
	if k := kind(raw); k != '"' {
		c.add(field, "must be a JSON string (got %s)", kindName(k))
		return "", false
	}
	s, ok := unquote(raw)
	if !ok {
		c.add(field, "must be a JSON string")
	}
	return s, ok
}

// obj reads a JSON object into its keys.
func (c *collector) obj(raw json.RawMessage, field string) (map[string]json.RawMessage, bool) {
	if k := kind(raw); k != '{' {
		c.add(field, "must be a JSON object (got %s)", kindName(k))
		return nil, false
	}
	return splitObject(raw), true
}

// arr reads the optional array m[key].
func (c *collector) arr(m map[string]json.RawMessage, key string) []json.RawMessage {
	raw, ok := present(m, key)
	if !ok {
		return nil
	}
	if k := kind(raw); k != '[' {
		c.add(key, "must be a JSON array of datasets (got %s)", kindName(k))
		return nil
	}
	return splitArray(raw)
}

// uri reads the required absolute URI m[key].
func (c *collector) uri(m map[string]json.RawMessage, key, example string) string {
	raw, ok := present(m, key)
	if !ok {
		c.add(key, "is required: an absolute URI such as %s", example)
		return ""
	}
	s, ok := c.str(raw, key)
	if !ok {
		return ""
	}
	if err := checkURI(s); err != "" {
		c.add(key, "must be an absolute URI such as %s: %s", example, err)
		return ""
	}
	return s
}

// checkURI says what is wrong with s as an absolute URI, "" if nothing.
func checkURI(s string) string {
	switch {
	case s == "":
		return "it is empty"
	case len(s) > MaxURIBytes:
		return fmt.Sprintf("it is %d bytes long, more than %d", len(s), MaxURIBytes)
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Sprintf("%s holds white space or a control character", quote(s))
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Sprintf("%s does not parse: %v", quote(s), err)
	}
	if !u.IsAbs() {
		return fmt.Sprintf("%s has no scheme", quote(s))
	}
	return ""
}

// name reads the required namespace or name m[key]: a non-empty string of
// at most MaxNameBytes bytes of valid UTF-8 without control characters.
func (c *collector) name(m map[string]json.RawMessage, key, field string) string {
	s, err := readName(m, key)
	if err != "" {
		c.add(field, "%s", err)
	}
	return s
}

// readName is name's rule: it returns the name or what is wrong with it.
func readName(m map[string]json.RawMessage, key string) (string, string) {
	raw, ok := present(m, key)
	if !ok {
		return "", "is required: a non-empty string"
	}
	if k := kind(raw); k != '"' {
		return "", fmt.Sprintf("must be a JSON string (got %s)", kindName(k))
	}
	// encoding/json turns invalid UTF-8 and lone surrogates into U+FFFD:
	// judge the raw text.
	if !validUTF8String(raw) {
		return "", "must be valid UTF-8 (it holds an invalid byte sequence or a lone surrogate)"
	}
	s, ok := unquote(raw)
	if !ok {
		return "", "must be a JSON string"
	}
	switch {
	case strings.TrimSpace(s) == "":
		return "", "must not be empty or only white space"
	case len(s) > MaxNameBytes:
		return "", fmt.Sprintf("must be at most %d bytes long (it is %d)", MaxNameBytes, len(s))
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return "", fmt.Sprintf("must not contain control characters (U+%04X at byte %d)", r, i)
	}
	return s, ""
}

// facets reads the optional facet map m[key]: an object whose values are
// objects.
func (c *collector) facets(m map[string]json.RawMessage, key, field string) Facets {
	raw, ok := present(m, key)
	if !ok {
		return nil
	}
	f, ok := c.obj(raw, field)
	if !ok {
		return nil
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	slices.Sort(keys) // report problems in a stable order
	for _, k := range keys {
		if vk := kind(f[k]); vk != '{' {
			c.add(field+pathKey(k), "must be a JSON object, as every facet is (got %s)", kindName(vk))
		}
	}
	return Facets(f)
}

// datasets reads the elements of inputs or outputs; extraKey is
// "inputFacets" or "outputFacets".
func (c *collector) datasets(a []json.RawMessage, field, extraKey string) []Dataset {
	if a == nil {
		return nil
	}
	out := make([]Dataset, 0, len(a))
	for i, raw := range a {
		at := fmt.Sprintf("%s[%d]", field, i)
		m, ok := c.obj(raw, at)
		if !ok {
			continue
		}
		d := Dataset{
			Namespace: c.name(m, "namespace", at+".namespace"),
			Name:      c.name(m, "name", at+".name"),
			Facets:    c.facets(m, "facets", at+".facets"),
		}
		extra := c.facets(m, extraKey, at+"."+extraKey)
		if extraKey == "inputFacets" {
			d.InputFacets = extra
		} else {
			d.OutputFacets = extra
		}
		out = append(out, d)
	}
	return out
}

// present returns m[key] unless it is absent or JSON null.
func present(m map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	raw, ok := m[key]
	if !ok || kind(raw) == 'n' {
		return nil, false
	}
	return raw, true
}

// kind is the first byte of a JSON value ('{', '[', '"', 't', 'f', 'n', a
// digit or '-'), 0 for nothing but white space.
func kind(raw []byte) byte {
	for _, b := range raw {
		switch b {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return b
	}
	return 0
}

func kindName(k byte) string {
	switch k {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case 0:
		return "nothing"
	}
	return "a number"
}

// pathKey appends a facet key to a JSON path: ".key" for an identifier,
// `["key"]` otherwise.
func pathKey(k string) string {
	ident := k != ""
	for i, r := range k {
		if !(r == '_' || r == '$' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || i > 0 && '0' <= r && r <= '9') {
			ident = false
			break
		}
	}
	if ident {
		return "." + k
	}
	return "[" + quote(k) + "]"
}

// quote quotes user input for a message, cut to a readable length.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q…", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}

// validUTF8String reports whether a raw JSON string literal, already known
// to be well-formed JSON, holds only valid UTF-8 and no lone surrogate
// escapes.
func validUTF8String(raw []byte) bool {
	start := 0
	for start < len(raw) && raw[start] != '"' {
		start++
	}
	end := len(raw) - 1
	for end > start && raw[end] != '"' {
		end--
	}
	if end <= start {
		return false
	}
	s := raw[start+1 : end]
	for i := 0; i < len(s); {
		b := s[i]
		switch {
		case b == '\\':
			if i+1 >= len(s) {
				return false
			}
			if s[i+1] != 'u' {
				i += 2
				continue
			}
			r, ok := hex4(s[i+2:])
			if !ok {
				return false
			}
			i += 6
			switch {
			case 0xD800 <= r && r <= 0xDBFF:
				if i+6 > len(s) || s[i] != '\\' || s[i+1] != 'u' {
					return false
				}
				lo, ok := hex4(s[i+2:])
				if !ok || lo < 0xDC00 || lo > 0xDFFF {
					return false
				}
				i += 6
			case 0xDC00 <= r && r <= 0xDFFF:
				return false
			}
		case b < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				return false
			}
			i += size
		}
	}
	return true
}

// invalidUTF8At is the offset of the first invalid UTF-8 sequence in b,
// -1 if there is none.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
