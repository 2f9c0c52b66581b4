package evalreport

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A metric key is a test name followed by a path: KeyPath("MRED_COUNTRY",
// "mred") is `MRED_COUNTRY.mred`, KeyPath("HITS_BY_SLICE", "(0, 5]",
// "hit_rate") is `HITS_BY_SLICE["(0, 5]"].hit_rate`. Path segments are
// `.name` for an identifier, `["…"]` (the key as a JSON string) otherwise,
// `[i]` for an array index. Test names are written as they are, never
// quoted, so the keys of RecList reports read like the names of their
// tests (`HR@10`); SplitKey finds where the name ends.

// Segment formats an object key as a path segment: `.name` when the key
// matches ^[A-Za-z_][A-Za-z0-9_]*$, else `["…"]` with the key quoted as a
// JSON string (`"` and `\` escaped, invalid UTF-8 as \ufffd).
func Segment(key string) string {
	if isIdent(key) {
		return "." + key
	}
	return "[" + quoteJSON(key) + "]"
}

// Index formats an array index as a path segment: `[i]`.
func Index(i int) string {
	return "[" + strconv.Itoa(i) + "]"
}

// KeyPath is the key of the metric at the object keys keys of test's
// result (index segments are made by Index and appended).
func KeyPath(test string, keys ...string) string {
	var b strings.Builder
	b.WriteString(test)
	for _, k := range keys {
		b.WriteString(Segment(k))
	}
	return b.String()
}

// SplitKey splits a metric key into its test name and its path: the path
// starts at the first '.' or '[' (after the key's first byte) from which
// the rest of the key reads as a path. It inverts KeyPath for every test
// name that Parse accepts; a key without a path is all test name.
func SplitKey(key string) (test, path string) {
	i := splitIndex(key)
	return key[:i], key[i:]
}

// splitIndex is where SplitKey splits. A segment read from a given byte
// ends at one place only (identifiers and indexes run as far as they can,
// strings to their closing quote), so whether the key from byte i on is a
// path follows from whether it is from that segment's end on: one pass
// from the right decides it for every i.
func splitIndex(key string) int {
	n := len(key)
	var small [MaxKeyBytes + 1]bool
	pathFrom := small[:]
	if n+1 > len(small) {
		pathFrom = make([]bool, n+1)
	}
	pathFrom[n] = true
	split := n
	for i := n - 1; i >= 1; i-- {
		if c := key[i]; c != '.' && c != '[' {
			continue
		}
		if end, ok := segmentEnd(key, i); ok && pathFrom[end] {
			pathFrom[i] = true
			split = i
		}
	}
	return split
}

// segmentEnd reads the path segment at key[i], which is '.' or '[', and
// returns the index after it.
func segmentEnd(key string, i int) (int, bool) {
	n := len(key)
	j := i + 1
	if key[i] == '.' {
		if j >= n || !identStart(key[j]) {
			return 0, false
		}
		for j++; j < n && identPart(key[j]); j++ {
		}
		return j, true
	}
	if j >= n {
		return 0, false
	}
	switch c := key[j]; {
	case c == '"':
		end, ok := jsonStringEnd(key, j)
		if !ok || end >= n || key[end] != ']' {
			return 0, false
		}
		return end + 1, true
	case c == '0':
		j++
	case '1' <= c && c <= '9':
		for j++; j < n && '0' <= key[j] && key[j] <= '9'; j++ {
		}
	default:
		return 0, false
	}
	if j >= n || key[j] != ']' {
		return 0, false
	}
	return j + 1, true
}

// jsonStringEnd reads the JSON string literal at s[i] (a quote) and returns
// the index after its closing quote.
func jsonStringEnd(s string, i int) (int, bool) {
	for j := i + 1; j < len(s); {
		switch c := s[j]; {
		case c == '"':
			return j + 1, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			if j+1 >= len(s) {
				return 0, false
			}
			switch s[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(s) || !isHex4(s[j+2:j+6]) {
					return 0, false
				}
				j += 6
			default:
				return 0, false
			}
		default:
			j++
		}
	}
	return 0, false
}

func isHex4(s string) bool {
	for i := 0; i < 4; i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func isIdent(s string) bool {
	if s == "" || !identStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !identPart(s[i]) {
			return false
		}
	}
	return true
}

func identStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func identPart(c byte) bool {
	return identStart(c) || '0' <= c && c <= '9'
}

// quoteJSON quotes s as a JSON string. Unlike encoding/json it leaves <, >
// and & alone: keys are read by people, not embedded in HTML.
func quoteJSON(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b.WriteString(`\ufffd`)
			} else {
				b.WriteString(s[i : i+size])
			}
			i += size
			continue
		}
		switch c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, c)
			} else {
				b.WriteByte(c)
			}
		}
		i++
	}
	b.WriteByte('"')
	return b.String()
}

// checkName says what is wrong with name as a RecList test's or a Slipway
// metric's name, "" if nothing. Besides being non-empty, short enough and
// free of control characters, a name must not end in something that reads
// as a path ("a.b", "x[0]"): SplitKey would cut it there, and its metrics
// could not be addressed.
func checkName(name string) string {
	if why := checkLabel(name); why != "" {
		return why
	}
	if i := splitIndex(name); i < len(name) {
		return fmt.Sprintf("%s cannot name a test: its metrics' keys would read as test %s with path %s; a name must not end in .name, [\"…\"] or [n]",
			quote(name), quote(name[:i]), quote(name[i:]))
	}
	return ""
}

// checkLabel says what is wrong with name as a behavioural test's name, ""
// if nothing.
func checkLabel(name string) string {
	switch {
	case strings.TrimSpace(name) == "":
		return "must not be empty or only white space"
	case len(name) > maxKeyBytes:
		return fmt.Sprintf("%s is %d bytes long, more than %d (the limit MaxKeyBytes)", quote(name), len(name), maxKeyBytes)
	}
	if i := strings.IndexFunc(name, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(name[i:])
		return fmt.Sprintf("%s holds a control character (U+%04X at byte %d)", quote(name), r, i)
	}
	return ""
}
