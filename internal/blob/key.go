package blob

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/slipway-ml/slipway/internal/errs"
)

// Key limits. 1024 bytes is S3's limit; 255 bytes is the file-name limit of
// common file systems, so both stores accept the same keys.
const (
	MaxKeyLen     = 1024
	maxSegmentLen = 255
	// maxDecodeRounds is how many times a segment is percent-decoded while
	// looking for hidden '.', '/' or '\'.
	maxDecodeRounds = 3
)

// ValidateKey returns nil when key may name an object, and otherwise an
// error wrapping errs.ErrInvalid that says which rule key breaks. The rules
// are in the package documentation.
func ValidateKey(key string) error {
	return checkKey("key", key, false)
}

// ValidatePath is ValidateKey for a path that names something in Slipway
// (an artifact path, say) rather than an object: the same rules, reported
// under field.
func ValidatePath(field, path string) error {
	return checkKey(field, path, false)
}

// ValidatePrefix is ValidateKey for List's prefix: the empty prefix is
// allowed, a trailing '/' is allowed, and the last segment, when not
// followed by '/', may be "." or ".." since it is only the start of a name
// (prefix "." matches ".cache/x").
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return checkKey("prefix", prefix, true)
}

func checkKey(field, key string, isPrefix bool) error {
	partial := isPrefix
	if isPrefix && strings.HasSuffix(key, "/") {
		key = key[:len(key)-1]
		partial = false
	}
	switch {
	case key == "":
		if isPrefix {
			return errs.Invalid(field, `must not be "/"`)
		}
		return errs.Invalid(field, "must not be empty")
	case len(key) > MaxKeyLen:
		return errs.Invalid(field, "must be at most %d bytes, got %d", MaxKeyLen, len(key))
	case !utf8.ValidString(key):
		return errs.Invalid(field, "must be valid UTF-8")
	case key[0] == '/':
		return errs.Invalid(field, "must be relative: no leading '/'")
	case key[len(key)-1] == '/':
		return errs.Invalid(field, "must not end with '/'")
	}
	if err := checkRunes(field, key, ""); err != nil {
		return err
	}
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		partialSeg := partial && i == len(segs)-1
		switch {
		case seg == "":
			return errs.Invalid(field, "must not contain an empty segment ('//')")
		case (seg == "." || seg == "..") && !partialSeg:
			return errs.Invalid(field, "must not contain a '.' or '..' segment")
		case len(seg) > maxSegmentLen:
			return errs.Invalid(field, "segments must be at most %d bytes, got %d", maxSegmentLen, len(seg))
		}
		if err := checkEncoded(field, seg, partialSeg); err != nil {
			return err
		}
	}
	return nil
}

// checkRunes refuses backslashes, control characters, line separators and
// look-alikes of '.', '/', '\' and '%'. what qualifies the message for
// decoded forms.
func checkRunes(field, s, what string) error {
	for _, r := range s {
		switch {
		case r == '\\':
			return errs.Invalid(field, "must not contain a backslash%s", what)
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			return errs.Invalid(field, "must not contain control characters%s (found U+%04X)", what, r)
		case lookalikes[r]:
			return errs.Invalid(field, "must not contain U+%04X, a look-alike of '.', '/', '\\' or '%%'%s", r, what)
		}
	}
	return nil
}

// checkEncoded refuses a segment whose percent-decoded forms are not
// themselves valid segments: a layer that decodes keys must not find a
// traversal, a separator or a control character in them.
func checkEncoded(field, seg string, partial bool) error {
	for i := 0; i+2 < len(seg); i++ {
		if seg[i] != '%' {
			continue
		}
		if c, ok := unhex2(seg[i+1], seg[i+2]); ok && strings.IndexByte(`./\%`, c) >= 0 {
			return errs.Invalid(field, "must not percent-encode '.', '/', '\\' or '%%' (found %q)", seg[i:i+3])
		}
	}
	const what = " once percent-decoded"
	for range maxDecodeRounds {
		dec := percentDecode(seg)
		if dec == seg {
			return nil
		}
		switch {
		case !utf8.ValidString(dec):
			return errs.Invalid(field, "must be valid UTF-8%s", what)
		case strings.Contains(dec, "/"):
			return errs.Invalid(field, "must not contain '/'%s", what)
		case (dec == "." || dec == "..") && !partial:
			return errs.Invalid(field, "must not contain a '.' or '..' segment%s", what)
		}
		if err := checkRunes(field, dec, what); err != nil {
			return err
		}
		seg = dec
	}
	if percentDecode(seg) != seg {
		return errs.Invalid(field, "must not be percent-encoded more than %d times over", maxDecodeRounds)
	}
	return nil
}

// percentDecode decodes every "%XX" escape of s and leaves any other '%' as
// it is.
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if c, ok := unhex2(s[i+1], s[i+2]); ok {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhex2(hi, lo byte) (byte, bool) {
	h, ok1 := unhex(hi)
	l, ok2 := unhex(lo)
	return h<<4 | l, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// lookalikes are the runes some layer may turn into '.', '/', '\' or '%':
// every rune whose NFKC compatibility form contains one of them (the test
// TestLookalikesCoverNFKC checks this list against
// golang.org/x/text/unicode/norm, which the store itself does not need),
// and visual look-alikes of '/' and '\' that NFKC leaves alone.
var lookalikes = func() map[rune]bool {
	m := make(map[rune]bool)
	for _, r := range []rune{
		// NFKC forms containing '.'.
		'\u2024', '\u2025', '\u2026', '\u2488', '\u2489', '\u248A', '\u248B',
		'\u248C', '\u248D', '\u248E', '\u248F', '\u2490', '\u2491', '\u2492',
		'\u2493', '\u2494', '\u2495', '\u2496', '\u2497', '\u2498', '\u2499',
		'\u249A', '\u249B', '\u33C2', '\u33C7', '\u33D8', '\uFE19', '\uFE30',
		'\uFE52', '\uFF0E', '\U0001F100',
		// NFKC forms containing '/': ℀ ℁ ℅ ℆ ／.
		'\u2100', '\u2101', '\u2105', '\u2106', '\uFF0F',
		// NFKC forms containing '\' or '%'.
		'\uFE68', '\uFF3C', '\uFE6A', '\uFF05',
		// Visual look-alikes: DIVISION SLASH, FRACTION SLASH, BIG SOLIDUS,
		// REVERSE SOLIDUS OPERATOR, SET MINUS, BIG REVERSE SOLIDUS.
		'\u2215', '\u2044', '\u29F8', '\u29F5', '\u2216', '\u29F9',
	} {
		m[r] = true
	}
	return m
}()
