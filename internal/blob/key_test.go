package blob_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/blob/blobtest"
	"github.com/slipway-ml/slipway/internal/errs"
)

func TestValidateKey(t *testing.T) {
	good := []string{
		"a",
		"a/b",
		"models/fraud-detector/1.4.0/model.onnx",
		"reports/2024-01-01T00:00:00Z.json",
		".hidden",
		"..a",
		"a..",
		"...",
		"a.b/c.d",
		"%",
		"100%",
		"a%2",
		"a%zz",
		"%41%42",    // encoded letters are harmless
		"%e2%82%ac", // encoded '€'
		"日本/語",
		"a b",
		"~/-_=+",
		strings.Repeat("a", 255),
		strings.Repeat(strings.Repeat("a", 204)+"/", 4) + strings.Repeat("a", 204), // 1024 bytes
	}
	for _, key := range good {
		if err := blob.ValidateKey(key); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want nil", key, err)
		}
	}

	// Each bad key with the rule its error must name.
	bad := map[string]string{
		"":                              "must not be empty",
		"/etc/passwd":                   "no leading '/'",
		"a/":                            "must not end with '/'",
		"a//b":                          "empty segment",
		"..":                            "'..' segment",
		"../../x":                       "'..' segment",
		"a/../../x":                     "'..' segment",
		"./a":                           "'.' or '..' segment",
		"a\\..\\b":                      "backslash",
		"a\x00b":                        "control characters",
		"a\nb":                          "control characters",
		"a\u0085b":                      "control characters",
		"\xff":                          "UTF-8",
		"\xc0\xae\xc0\xae/x":            "UTF-8",
		"%2e%2e/x":                      "percent-encode",
		"..%2fx":                        "percent-encode",
		"%2e%2e%2f":                     "percent-encode",
		"a/%2E%2E/b":                    "percent-encode",
		"..%5cx":                        "percent-encode",
		"%252e%252e/x":                  "percent-encode",
		"%%32%65%%32%65/x":              "'..' segment once percent-decoded",
		"%%32%66":                       "'/' once percent-decoded",
		"%%35%63":                       "backslash once percent-decoded",
		"%c0%ae%c0%ae/x":                "UTF-8 once percent-decoded",
		"a%0ab":                         "control characters once percent-decoded",
		"%e2%80%a4%e2%80%a4/x":          "look-alike",
		"\uff0e\uff0e/x":                "U+FF0E",
		"\u2024\u2024/x":                "U+2024",
		"a\u2215b":                      "U+2215",
		"a\uff3cb":                      "U+FF3C",
		strings.Repeat("a", 1025):       "at most 1024 bytes",
		strings.Repeat("a", 256) + "/b": "at most 255 bytes",
	}
	for key, rule := range bad {
		err := blob.ValidateKey(key)
		var fe *errs.FieldError
		switch {
		case !errors.Is(err, errs.ErrInvalid):
			t.Errorf("ValidateKey(%q) = %v, want errs.ErrInvalid", key, err)
		case !errors.As(err, &fe) || fe.Field != "key":
			t.Errorf("ValidateKey(%q) = %v, want a *errs.FieldError for field key", key, err)
		case !strings.Contains(err.Error(), rule):
			t.Errorf("ValidateKey(%q) = %q, want the rule %q", key, err, rule)
		}
	}
	for _, key := range blobtest.BadKeys {
		if err := blob.ValidateKey(key); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("ValidateKey(%q) = %v, want errs.ErrInvalid", key, err)
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	for _, p := range []string{"", "a", "a/", "a/b/", ".", "..", "a/.", "a/..", ".h", "100%", "a/%4"} {
		if err := blob.ValidatePrefix(p); err != nil {
			t.Errorf("ValidatePrefix(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"/", "//", "/a", "a//", "./", "../", "a/../", "../x", "a\\", "a\x00", "%2e", "a/%2e%2e/", "\uff0e"} {
		err := blob.ValidatePrefix(p)
		var fe *errs.FieldError
		if !errors.As(err, &fe) || fe.Field != "prefix" {
			t.Errorf("ValidatePrefix(%q) = %v, want a *errs.FieldError for field prefix", p, err)
		}
	}
}

// TestLookalikesCoverNFKC checks that every rune whose NFKC compatibility
// form contains '.', '/', '\' or '%' is refused, so the hand-written list
// in key.go stays complete when Unicode grows.
func TestLookalikesCoverNFKC(t *testing.T) {
	for r := rune(0x80); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		s := string(r)
		if !strings.ContainsAny(norm.NFKC.String(s), `./\%`) {
			continue
		}
		if err := blob.ValidateKey("x" + s + "x"); err == nil {
			t.Errorf("ValidateKey accepts U+%04X %q, whose NFKC form is %q", r, s, norm.NFKC.String(s))
		}
	}
}

func FuzzValidateKey(f *testing.F) {
	for _, k := range blobtest.BadKeys {
		f.Add(k)
	}
	f.Add("models/a/1.0/model.bin")
	f.Fuzz(func(t *testing.T, key string) {
		if blob.ValidateKey(key) != nil {
			return
		}
		// An accepted key never yields a traversal, however decoded.
		for _, form := range []string{key, norm.NFKC.String(key), norm.NFKC.String(pctDecode(pctDecode(key)))} {
			for _, seg := range strings.Split(form, "/") {
				if seg == "" || seg == "." || seg == ".." || strings.ContainsRune(seg, '\\') {
					t.Fatalf("ValidateKey(%q) = nil, but a decoded form %q has segment %q", key, form, seg)
				}
			}
		}
	})
}

// pctDecode decodes %XX escapes, leaving anything else as is.
func pctDecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool { return strings.IndexByte("0123456789abcdefABCDEF", c) >= 0 }

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
