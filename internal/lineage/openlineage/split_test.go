package openlineage

import (
	"bytes"
	"encoding/json"
	"testing"
)

// The splitter must agree with encoding/json on every valid object and
// array: same keys (escapes decoded, the last of duplicates kept), same
// values byte for byte.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, ` { "a" : 1 , "b":[1,{"c":"}]"}], "a": "x\"y" } `,
		`{"k\u00e9y":{"n":null,"t":true,"f":false},"e":-1.5e+3,"s":"\\","":[]}`,
		`[ 1, "two", {"three": [3]}, [], null ]`,
		`{"dup":1,"dup":2}`, `{"a":"\ud83d\ude00"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		switch kind(b) {
		case '{':
			var want map[string]json.RawMessage
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			got := splitObject(b)
			if len(got) != len(want) {
				t.Fatalf("%q: %d members, want %d", b, len(got), len(want))
			}
			for k, v := range want {
				if !bytes.Equal(got[k], v) {
					t.Fatalf("%q: member %q is %q, want %q", b, k, got[k], v)
				}
			}
		case '[':
			var want []json.RawMessage
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			got := splitArray(b)
			if len(got) != len(want) {
				t.Fatalf("%q: %d elements, want %d", b, len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("%q: element %d is %q, want %q", b, i, got[i], want[i])
				}
			}
		}
	})
}
