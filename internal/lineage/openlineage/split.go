package openlineage

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// The body of an event is checked once, as a whole, by json.Valid. Below
// that, objects and arrays are split into their members by the functions
// here, which rely on the text being valid JSON: each byte is read about
// once, where decoding level by level with encoding/json would scan the
// facets (most of an event) once per level, twice each time. Values are
// slices of the body, not copies.

// splitObject splits a valid JSON object into its members. A key given
// twice keeps its last value, as encoding/json does.
func splitObject(raw []byte) map[string]json.RawMessage {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return nil
	}
	m := map[string]json.RawMessage{}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return m
	}
	for i < len(raw) {
		end := skipString(raw, i)
		key := raw[i:end]
		i = skipSpace(raw, end)
		i = skipSpace(raw, i+1) // ':'
		vend := skipValue(raw, i)
		m[unquoteKey(key)] = raw[i:vend:vend]
		i = skipSpace(raw, vend)
		if i >= len(raw) || raw[i] == '}' {
			break
		}
		i = skipSpace(raw, i+1) // ','
	}
	return m
}

// splitArray splits a valid JSON array into its elements.
func splitArray(raw []byte) []json.RawMessage {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '[' {
		return nil
	}
	a := []json.RawMessage{}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == ']' {
		return a
	}
	for i < len(raw) {
		end := skipValue(raw, i)
		a = append(a, raw[i:end:end])
		i = skipSpace(raw, end)
		if i >= len(raw) || raw[i] == ']' {
			break
		}
		i = skipSpace(raw, i+1) // ','
	}
	return a
}

// unquoteKey decodes a key: as is without escapes, else by encoding/json.
func unquoteKey(lit []byte) string {
	s, _ := unquote(lit)
	return s
}

// unquote decodes a valid JSON string literal, as encoding/json does
// (invalid UTF-8 becomes U+FFFD).
func unquote(lit []byte) (string, bool) {
	if len(lit) >= 2 && bytes.IndexByte(lit, '\\') < 0 && utf8.Valid(lit) {
		return string(lit[1 : len(lit)-1]), true
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return "", false
	}
	return s, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the string literal that starts at i.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value that starts at i.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	// a number, true, false or null
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return i
}
