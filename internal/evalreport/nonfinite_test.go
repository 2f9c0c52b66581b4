package evalreport

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// testMarkers are readable markers, for tests of the reader alone.
var testMarkers = markers{prefix: "P:"}

// splitReader returns its input in two reads, split at n.
type splitReader struct {
	s string
	n int
}

func (r *splitReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	k := min(len(p), len(r.s))
	if r.n > 0 {
		k = min(k, r.n)
		r.n -= k
	}
	copy(p, r.s[:k])
	r.s = r.s[k:]
	return k, nil
}

// rewriteAll reads in through a nonfiniteReader with a small buffer.
func rewriteAll(t *testing.T, in io.Reader, maxString int64) (string, *nonfiniteReader, error) {
	t.Helper()
	r := newNonfiniteReader(in, testMarkers.replacements(), 7, maxString)
	out, err := io.ReadAll(r)
	return string(out), r, err
}

func TestNonfiniteReader(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`[NaN,Infinity,-Infinity]`, `["P:NaN","P:+Inf","P:-Inf"]`},
		{`{"a": NaN, "b":Infinity}`, `{"a": "P:NaN", "b":"P:+Inf"}`},
		{"[\nNaN\t,\r-Infinity ]", "[\n\"P:NaN\"\t,\r\"P:-Inf\" ]"},
		{`NaN`, `"P:NaN"`},
		{`-Infinity`, `"P:-Inf"`},
		// Inside strings, nothing changes, escapes included.
		{`"NaN"`, `"NaN"`},
		{`["NaN is fine", "Infinity", "-Infinity"]`, `["NaN is fine", "Infinity", "-Infinity"]`},
		{`["a\"NaN", "\\", NaN]`, `["a\"NaN", "\\", "P:NaN"]`},
		{`["\\\"NaN\\", NaN]`, `["\\\"NaN\\", "P:NaN"]`},
		{`["\u0022 NaN", NaN]`, `["\u0022 NaN", "P:NaN"]`},
		{`{"NaN": "Infinity"}`, `{"NaN": "Infinity"}`},
		// Other words pass through, for the decoder to refuse.
		{`[NaNa, -NaN, nan, +Infinity, Infinity1, xNaN, NaN-]`, `[NaNa, -NaN, nan, +Infinity, Infinity1, xNaN, NaN-]`},
		{`[12345678901234567890NaN, -Infinityy, 1e400, true, null]`, `[12345678901234567890NaN, -Infinityy, 1e400, true, null]`},
		{`[tru NaN]`, `[tru "P:NaN"]`},
		// Long runs of white space are cut; strings are not.
		{"[1," + strings.Repeat(" ", 200) + "NaN]", "[1," + strings.Repeat(" ", maxSpaceRun) + `"P:NaN"]`},
		{"[\n" + strings.Repeat("\t", 65) + "]" + strings.Repeat("\n", 100), "[\n" + strings.Repeat("\t", 63) + "]" + strings.Repeat("\n", 64)},
		{`"` + strings.Repeat(" ", 100) + `"`, `"` + strings.Repeat(" ", 100) + `"`},
		{``, ``},
	} {
		readers := map[string]func() io.Reader{
			"whole":    func() io.Reader { return strings.NewReader(tc.in) },
			"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(tc.in)) },
			"half":     func() io.Reader { return iotest.HalfReader(strings.NewReader(tc.in)) },
			"data+EOF": func() io.Reader { return iotest.DataErrReader(strings.NewReader(tc.in)) },
		}
		for i := 1; i < len(tc.in); i++ {
			readers[fmt.Sprintf("split at %d", i)] = func() io.Reader { return &splitReader{s: tc.in, n: i} }
		}
		for name, open := range readers {
			got, _, err := rewriteAll(t, open(), 0)
			if err != nil || got != tc.want {
				t.Errorf("%s, %s:\n got %s, %v\nwant %s", tc.in, name, got, err, tc.want)
			}
		}
	}
}

func TestNonfiniteReaderOffsets(t *testing.T) {
	in := `{"a": [NaN, -Infinity, 1], "b":` + strings.Repeat(" ", 100) + `Infinity, "c": x}`
	out, r, err := rewriteAll(t, strings.NewReader(in), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ out, in string }{
		{"x", "x"}, {`"b"`, `"b"`}, {"1]", "1]"}, {`"c"`, `"c"`},
		{`"P:+Inf"`, " Infinity"}, // after the white space cut
	} {
		o, i := strings.Index(out, tc.out), strings.Index(in, tc.in)
		if tc.in[0] == ' ' {
			i += 1
		}
		if got := r.inputOffset(int64(o)); got != int64(i) {
			t.Errorf("inputOffset of %s at %d = %d, want %d", tc.out, o, got, i)
		}
	}
	// Inside a rewritten token: its start.
	o := strings.Index(out, `"P:-Inf"`)
	for k := range len(`"P:-Inf"`) {
		if got, want := r.inputOffset(int64(o+k)), int64(strings.Index(in, "-Infinity")); got != want {
			t.Errorf("inputOffset(%d) = %d, want %d", o+k, got, want)
		}
	}
	// Forgetting what the decoder has passed changes no later answer.
	x := int64(strings.Index(out, "x"))
	r.forget(int64(strings.Index(out, `, "c"`)))
	if len(r.rewrites) != 0 {
		t.Errorf("%d rewrites kept", len(r.rewrites))
	}
	if got := r.inputOffset(x); got != int64(strings.Index(in, "x")) {
		t.Errorf("after forget, inputOffset(x) = %d", got)
	}
}

func TestNonfiniteReaderStringLimit(t *testing.T) {
	in := `{"a": "0123456789", "b": "0123456789a", "c": NaN}`
	at := strings.Index(in, `9a"`) + 1 // the 11th byte of b's string
	for name, open := range map[string]func() io.Reader{
		"whole":    func() io.Reader { return strings.NewReader(in) },
		"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(in)) },
	} {
		out, _, err := rewriteAll(t, open(), 10)
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(e.Why, "longer than 10 bytes (the limit MaxStringBytes), at byte "+strconv.Itoa(at)) {
			t.Errorf("%s: error %v", name, err)
		}
		if !strings.HasPrefix(in, out) || len(out) > at+1 {
			t.Errorf("%s: returned %q before the error", name, out)
		}
	}
}

func TestMarkers(t *testing.T) {
	m := newMarkers()
	if m2 := newMarkers(); m2.prefix == m.prefix {
		t.Errorf("two Parses share the prefix %q", m.prefix)
	}
	r := m.replacements()
	for i, want := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		s := string(r[i][1 : len(r[i])-1])
		got, ok := m.value(s)
		if !ok || !sameValue(got, want) {
			t.Errorf("value(%q) = %v, %v; want %v", s, got, ok, want)
		}
		if nonfiniteText(got) != nonfiniteWords[i] {
			t.Errorf("nonfiniteText(%v) = %s", got, nonfiniteText(got))
		}
	}
	for _, s := range []string{"NaN", "Infinity", m.prefix, m.prefix + "Inf", "x" + m.prefix + "NaN", testMarkers.prefix + "NaN"} {
		if _, ok := m.value(s); ok {
			t.Errorf("value(%q) reads as a number", s)
		}
	}
}

func TestRewriteForValidation(t *testing.T) {
	for in, want := range map[string]string{
		`{"a": NaN, "b": [Infinity, -Infinity]}`: `{"a": 0, "b": [0, 0]}`,
		`{NaN: 1}`:                               `{0: 1}`,
		`"NaN"`:                                  `"NaN"`,
		`NaN`:                                    `0`,
	} {
		if got := string(rewriteForValidation(in)); got != want {
			t.Errorf("rewriteForValidation(%s) = %s, want %s", in, got, want)
		}
	}
}
