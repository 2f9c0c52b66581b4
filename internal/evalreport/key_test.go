package evalreport

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSegment(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"mred", ".mred"},
		{"_x9", "._x9"},
		{"US", ".US"},
		{"hit_rate", ".hit_rate"},
		{"", `[""]`},
		{"9a", `["9a"]`},
		{"(0, 5]", `["(0, 5]"]`},
		{"country=US", `["country=US"]`},
		{`say "hi"`, `["say \"hi\""]`},
		{`back\slash`, `["back\\slash"]`},
		{"a.b", `["a.b"]`},
		{"[0]", `["[0]"]`},
		{"día", `["día"]`},
		{"日本", `["日本"]`},
		{"<&>", `["<&>"]`}, // not HTML-escaped
		{"tab\tnew\nline\x00\x1f", `["tab\tnew\nline\u0000\u001f"]`},
		{"bad\xffutf8", `["bad\ufffdutf8"]`},
	} {
		if got := Segment(tc.key); got != tc.want {
			t.Errorf("Segment(%q) = %s, want %s", tc.key, got, tc.want)
		}
		// A quoted segment holds the key as a JSON string.
		if seg := Segment(tc.key); strings.HasPrefix(seg, "[") {
			var back string
			if err := json.Unmarshal([]byte(seg[1:len(seg)-1]), &back); err != nil || back != strings.ToValidUTF8(tc.key, "\ufffd") {
				t.Errorf("Segment(%q) = %s does not decode back: %q, %v", tc.key, seg, back, err)
			}
		}
	}
	if got := Index(3); got != "[3]" {
		t.Errorf("Index(3) = %s", got)
	}
}

func TestKeyPath(t *testing.T) {
	for _, tc := range []struct {
		test string
		keys []string
		want string
	}{
		{"HIT_RATE", nil, "HIT_RATE"},
		{"MRED_COUNTRY", []string{"mred"}, "MRED_COUNTRY.mred"},
		{"HITS_BY_SLICE", []string{"(0, 5]", "hit_rate"}, `HITS_BY_SLICE["(0, 5]"].hit_rate`},
		{"HR@10", nil, "HR@10"},
		{"hit_rate", []string{"country=US"}, `hit_rate["country=US"]`},
	} {
		if got := KeyPath(tc.test, tc.keys...); got != tc.want {
			t.Errorf("KeyPath(%q, %q) = %s, want %s", tc.test, tc.keys, got, tc.want)
		}
	}
}

func TestSplitKey(t *testing.T) {
	for _, tc := range []struct{ key, test, path string }{
		{"HIT_RATE", "HIT_RATE", ""},
		{"MRED_COUNTRY.mred", "MRED_COUNTRY", ".mred"},
		{`HITS_BY_SLICE["(0, 5]"].hit_rate`, "HITS_BY_SLICE", `["(0, 5]"].hit_rate`},
		{"HITS_DISTRIBUTION[4]", "HITS_DISTRIBUTION", "[4]"},
		{"HR@10", "HR@10", ""},
		{"HR@10.US", "HR@10", ".US"},
		{"precision@0.5", "precision@0.5", ""}, // ".5" is no path: the name goes on
		{"precision@0.5.US", "precision@0.5", ".US"},
		{"precision@0.5[1]", "precision@0.5", "[1]"},
		{"ndcg[k=10]", "ndcg[k=10]", ""},
		{"ndcg[k=10][0]", "ndcg[k=10]", "[0]"},
		{"a[01]", "a[01]", ""}, // an index has no leading zero
		{`a["unterminated`, `a["unterminated`, ""},
		{`a["x"]y`, `a["x"]y`, ""},
		{"a.", "a.", ""},
		{"a..b", "a.", ".b"},
		{".a", ".a", ""}, // a test name is never empty
		{".a.b", ".a", ".b"},
		{"", "", ""},
	} {
		test, path := SplitKey(tc.key)
		if test != tc.test || path != tc.path {
			t.Errorf("SplitKey(%q) = %q, %q; want %q, %q", tc.key, test, path, tc.test, tc.path)
		}
	}
}

// awkward are object keys that need quoting, or look like paths.
var awkward = []string{
	"", "plain", "_", "9", "a b", "a.b", ".a", "a.", "[0]", "[", "]", `["x"]`, `"]`, `"]["`,
	`\`, `\\`, `\"`, `"`, `a"b`, "\\u0041", "día", "日本語", "🙂", "tab\t", "nul\x00", "(0, 5]", "country=US",
	"bad\xff", "a]b[c", `."`, `].x`,
}

func TestSplitKeyRoundTrip(t *testing.T) {
	tests := []string{"T", "HR@10", "Coverage@10", "precision@0.5", "ndcg[k=10]", "x]", "a b", "día", "🙂", `q"`, `b\`, ".a", "a.", `a["x`, "a[", `a["`, `a\`}
	for _, test := range tests {
		if why := checkName(test); why != "" {
			t.Fatalf("checkName(%q): %s", test, why)
		}
		for _, k1 := range awkward {
			for _, k2 := range append([]string{}, awkward[:8]...) {
				for _, path := range []string{Segment(k1), Segment(k1) + Segment(k2), Segment(k1) + Index(12) + Segment(k2), Index(0) + Segment(k1)} {
					key := test + path
					if gotTest, gotPath := SplitKey(key); gotTest != test || gotPath != path {
						t.Errorf("SplitKey(%q) = %q, %q; want %q, %q", key, gotTest, gotPath, test, path)
					}
				}
			}
			if key := KeyPath(test, k1); !strings.HasPrefix(key, test) {
				t.Errorf("KeyPath(%q, %q) = %q", test, k1, key)
			}
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, name := range []string{"HIT_RATE", "HR@10", "precision@0.5", "ndcg[k=10]", "a[01]", "x]", "[0]", ".a", "a.", "a b", "día", `a["x`} {
		if why := checkName(name); why != "" {
			t.Errorf("checkName(%q) = %s, want it accepted", name, why)
		}
	}
	for name, want := range map[string]string{
		"":                       "must not be empty",
		"  ":                     "must not be empty",
		"a.b":                    `with path ".b"`,
		"x[0]":                   `with path "[0]"`,
		`x["k"]`:                 `with path "[\"k\"]"`,
		"a.b[1].c":               `test "a" with path ".b[1].c"`,
		"n\x01":                  "control character (U+0001 at byte 1)",
		strings.Repeat("a", 513): "more than 512 (the limit MaxKeyBytes)",
	} {
		if why := checkName(name); !strings.Contains(why, want) {
			t.Errorf("checkName(%q) = %q, want it to say %q", name, why, want)
		}
	}
}

// FuzzKeyPath checks that SplitKey inverts KeyPath for every test name
// checkName accepts, whatever the segments.
func FuzzKeyPath(f *testing.F) {
	f.Add("HR@10", "(0, 5]", "hit_rate", uint8(3))
	f.Add("a", `"]`, `["x"]`, uint8(0))
	f.Add("x[\"", "]", "", uint8(1))
	f.Fuzz(func(t *testing.T, test, k1, k2 string, shape uint8) {
		if checkName(test) != "" {
			return
		}
		segs := []string{Segment(k1), Segment(k2), Index(int(shape))}
		path := ""
		for i, seg := range segs {
			if shape&(1<<i) != 0 {
				path += seg
			}
		}
		if gotTest, gotPath := SplitKey(test + path); gotTest != test || gotPath != path {
			t.Fatalf("SplitKey(%q) = %q, %q; want %q, %q", test+path, gotTest, gotPath, test, path)
		}
	})
}
