// Package blobtest is the conformance suite of blob.Store: every
// implementation runs it, so the S3 and the filesystem stores behave the
// same for the rest of Slipway.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/errs"
)

// BadKeys are keys every store must refuse with errs.ErrInvalid.
var BadKeys = []string{
	"",
	"/",
	"a/",
	"/etc/passwd",
	"a//b",
	".",
	"..",
	"./a",
	"a/.",
	"../../x",
	"a/../../x",
	"a\\..\\b",
	"a\\b",
	"a\x00b",
	"a\nb",
	"a\rb",
	"a\tb",
	"a\x7fb",
	"a\u0085b",           // C1 NEXT LINE
	"a\u2028b",           // LINE SEPARATOR
	"\xff",               // not UTF-8
	"\xc0\xae\xc0\xae/x", // overlong '.'
	// Percent-encoded dots, slashes and backslashes.
	"%2e%2e/x",
	"..%2fx",
	"%2e%2e%2f",
	"a/%2E%2E/b",
	"..%5cx",
	"..%5Cx",
	"a%2fb",
	"%2e",
	"x%2e",
	// Double and nested encodings.
	"%252e%252e/x",
	"%252e%252e/",
	"%%32%65%%32%65/x",
	"%c0%ae%c0%ae/x", // percent-encoded overlong '.'
	"a%00b",
	"a%0ab",
	"%e2%80%a4%e2%80%a4/x", // percent-encoded U+2024
	// Look-alikes of '.', '/', '\' and '%'.
	"\uff0e\uff0e/x",     // FULLWIDTH FULL STOP
	"\u2024\u2024/x",     // ONE DOT LEADER
	"\u2025/x",           // TWO DOT LEADER
	"\ufe52\ufe52/x",     // SMALL FULL STOP
	"a\uff0fb",           // FULLWIDTH SOLIDUS
	"a\u2215b",           // DIVISION SLASH
	"a\u2044b",           // FRACTION SLASH
	"a\uff3cb",           // FULLWIDTH REVERSE SOLIDUS
	"a\u29f5b",           // REVERSE SOLIDUS OPERATOR
	"a\ufe68b",           // SMALL REVERSE SOLIDUS
	"\uff052e\uff052e/x", // FULLWIDTH PERCENT SIGN
	// Lengths.
	strings.Repeat("a", blob.MaxKeyLen+1),
	strings.Repeat("a", 256) + "/x",
}

// Run runs the suite. newStore returns an empty store for one test; it
// registers its own cleanup with t.
func Run(t *testing.T, newStore func(t *testing.T) blob.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s blob.Store)
	}{
		{"PutGetRoundTrip", testPutGetRoundTrip},
		{"EmptyObject", testEmptyObject},
		{"LargeStream", testLargeStream},
		{"SHA256Mismatch", testSHA256Mismatch},
		{"SizeMismatch", testSizeMismatch},
		{"FailedPutKeepsPrevious", testFailedPutKeepsPrevious},
		{"InvalidPutOptions", testInvalidPutOptions},
		{"ReaderError", testReaderError},
		{"GetRange", testGetRange},
		{"Missing", testMissing},
		{"Overwrite", testOverwrite},
		{"Delete", testDelete},
		{"ContentType", testContentType},
		{"List", testList},
		{"ListEarlyStop", testListEarlyStop},
		{"ListInvalidPrefix", testListInvalidPrefix},
		{"InvalidKeys", testInvalidKeys},
		{"CancelDuringPut", testCancelDuringPut},
		{"KeyAndPrefix", testKeyAndPrefix},
		{"ConcurrentOverwrite", testConcurrentOverwrite},
		{"Ping", testPing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

// digest is the lowercase hex SHA-256 of b.
func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

// onlyReader hides every method but Read, so stores cannot seek or stat
// the stream.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func put(t *testing.T, s blob.Store, key string, data []byte, opts blob.PutOptions) blob.Info {
	t.Helper()
	info, err := s.Put(t.Context(), key, onlyReader{bytes.NewReader(data)}, opts)
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return info
}

func get(t *testing.T, s blob.Store, key string, rng *blob.Range) ([]byte, blob.Info) {
	t.Helper()
	rc, info, err := s.Get(t.Context(), key, rng)
	if err != nil {
		t.Fatalf("Get(%q, %+v): %v", key, rng, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q, %+v): read: %v", key, rng, err)
	}
	return b, info
}

// ignoreModTime compares Infos without ModTime, which checkModTime checks.
var ignoreModTime = cmpopts.IgnoreFields(blob.Info{}, "ModTime")

// checkInfo compares got with want. When declared is false, the store may
// not know the digest, so got.SHA256 may also be "".
func checkInfo(t *testing.T, what string, got, want blob.Info, declared bool) {
	t.Helper()
	if !declared && got.SHA256 == "" {
		want.SHA256 = ""
	}
	if diff := cmp.Diff(want, got, ignoreModTime); diff != "" {
		t.Errorf("%s Info mismatch (-want +got):\n%s", what, diff)
	}
	checkModTime(t, what, got.ModTime)
}

// checkModTime checks that a store's clock and the test's roughly agree.
func checkModTime(t *testing.T, what string, mt time.Time) {
	t.Helper()
	if d := time.Since(mt); d < -time.Minute || d > time.Hour {
		t.Errorf("%s ModTime = %v, want about now", what, mt)
	}
}

// checkAbsent checks that key does not exist and that nothing at all is
// listed: the tests that use it put nothing else.
func checkAbsent(t *testing.T, s blob.Store, key string) {
	t.Helper()
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("Stat(%q) error = %v, want errs.ErrNotFound", key, err)
	}
	if keys := listKeys(t, s, ""); len(keys) != 0 {
		t.Errorf("List(\"\") = %q, want nothing", keys)
	}
}

func listKeys(t *testing.T, s blob.Store, prefix string) []string {
	t.Helper()
	var keys []string
	err := s.List(t.Context(), prefix, func(info blob.Info) error {
		keys = append(keys, info.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return keys
}

func testPutGetRoundTrip(t *testing.T, s blob.Store) {
	data := randomBytes(100_000, 1)
	tests := []struct {
		name     string
		key      string
		opts     blob.PutOptions
		declared bool
	}{
		{"unknown size", "round/unknown", blob.PutOptions{Size: -1}, false},
		{"known size", "round/known", blob.PutOptions{Size: int64(len(data))}, false},
		{"declared digest", "round/declared", blob.PutOptions{Size: -1, SHA256: digest(data)}, true},
		{"everything declared", "round/all", blob.PutOptions{Size: int64(len(data)), SHA256: digest(data), ContentType: "application/x-onnx"}, true},
		{"unicode key", "modèles/ä b/日本語-v1.0.bin", blob.PutOptions{Size: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := tt.opts.ContentType
			if ct == "" {
				ct = blob.DefaultContentType
			}
			want := blob.Info{Key: tt.key, Size: int64(len(data)), SHA256: digest(data), ContentType: ct}

			got := put(t, s, tt.key, data, tt.opts)
			checkInfo(t, "Put", got, want, true)

			stat, err := s.Stat(t.Context(), tt.key)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			checkInfo(t, "Stat", stat, want, tt.declared)

			b, info := get(t, s, tt.key, nil)
			if !bytes.Equal(b, data) {
				t.Errorf("Get returned %d bytes with SHA-256 %s, want %d bytes with %s", len(b), digest(b), len(data), digest(data))
			}
			checkInfo(t, "Get", info, want, tt.declared)
		})
	}
}

func testEmptyObject(t *testing.T, s blob.Store) {
	for _, size := range []int64{-1, 0} {
		key := fmt.Sprintf("empty/size%d", size)
		want := blob.Info{Key: key, Size: 0, SHA256: digest(nil), ContentType: blob.DefaultContentType}
		got := put(t, s, key, nil, blob.PutOptions{Size: size, SHA256: digest(nil)})
		checkInfo(t, "Put", got, want, true)
		b, info := get(t, s, key, nil)
		if len(b) != 0 {
			t.Errorf("Get(%q) returned %d bytes, want 0", key, len(b))
		}
		checkInfo(t, "Get", info, want, true)
		if _, _, err := s.Get(t.Context(), key, &blob.Range{Offset: 0, Length: -1}); !errors.Is(err, blob.ErrUnsatisfiableRange) {
			t.Errorf("Get(%q, 0-) of an empty object: error = %v, want blob.ErrUnsatisfiableRange", key, err)
		}
	}
}

// generator produces n pseudo-random bytes on the fly, as an upload from
// the network would: no []byte holds the object.
type generator struct {
	rng *rand.ChaCha8
	n   int64
}

func newGenerator(n int64) *generator {
	return &generator{rng: rand.NewChaCha8([32]byte{42}), n: n}
}

func (g *generator) Read(p []byte) (int, error) {
	if g.n == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.n {
		p = p[:g.n]
	}
	// Odd-sized reads, as from a network connection.
	if len(p) > 7777 {
		p = p[:7777]
	}
	n, _ := g.rng.Read(p)
	g.n -= int64(n)
	return n, nil
}

func testLargeStream(t *testing.T, s blob.Store) {
	const n = 20<<20 + 12345 // more than one 16 MiB part
	h := sha256.New()
	io.Copy(h, newGenerator(n))
	sum := hex.EncodeToString(h.Sum(nil))

	for _, size := range []int64{-1, n} {
		key := fmt.Sprintf("large/size%d", size)
		got, err := s.Put(t.Context(), key, newGenerator(n), blob.PutOptions{Size: size})
		if err != nil {
			t.Fatalf("Put(%q): %v", key, err)
		}
		want := blob.Info{Key: key, Size: n, SHA256: sum, ContentType: blob.DefaultContentType}
		checkInfo(t, "Put", got, want, true)

		rc, info, err := s.Get(t.Context(), key, nil)
		if err != nil {
			t.Fatalf("Get(%q): %v", key, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			t.Fatalf("Get(%q): read: %v", key, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != sum {
			t.Errorf("Get(%q) content SHA-256 = %s, want %s", key, got, sum)
		}
		checkInfo(t, "Get", info, want, false)
	}
}

func testSHA256Mismatch(t *testing.T, s blob.Store) {
	data := []byte("the real content")
	wrong := digest([]byte("something else"))
	for _, size := range []int64{-1, int64(len(data))} {
		t.Run(fmt.Sprintf("size %d", size), func(t *testing.T) {
			key := fmt.Sprintf("mismatch/sha/%d", size)
			_, err := s.Put(t.Context(), key, onlyReader{bytes.NewReader(data)}, blob.PutOptions{Size: size, SHA256: wrong})
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("Put with a wrong SHA256: error = %v, want errs.ErrInvalid", err)
			}
			if _, err := s.Stat(t.Context(), key); !errors.Is(err, errs.ErrNotFound) {
				t.Errorf("Stat after a failed Put: error = %v, want errs.ErrNotFound", err)
			}
		})
	}
	// Streams in many reads, below and above a 16 MiB part: the mismatch
	// shows only at the very end, after most bytes went to the backend.
	for _, n := range []int64{1 << 20, 17 << 20} {
		for _, size := range []int64{-1, n} {
			key := fmt.Sprintf("mismatch/sha/%d/%d", n, size)
			_, err := s.Put(t.Context(), key, newGenerator(n), blob.PutOptions{Size: size, SHA256: wrong})
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("Put of %d bytes (size %d) with a wrong SHA256: error = %v, want errs.ErrInvalid", n, size, err)
			}
			if _, err := s.Stat(t.Context(), key); !errors.Is(err, errs.ErrNotFound) {
				t.Errorf("Stat(%q) after a failed Put: error = %v, want errs.ErrNotFound", key, err)
			}
		}
	}
	checkAbsent(t, s, "mismatch/sha")
}

func testSizeMismatch(t *testing.T, s blob.Store) {
	data := []byte("0123456789")
	tests := []struct {
		name string
		data []byte
		size int64
	}{
		{"stream shorter", data, 11},
		{"stream longer", data, 9},
		{"stream not empty", data, 0},
		{"stream empty", nil, 1},
		{"with digest", data, 9},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("mismatch/size/%d", i)
			opts := blob.PutOptions{Size: tt.size}
			if tt.name == "with digest" {
				opts.SHA256 = digest(tt.data[:tt.size])
			}
			_, err := s.Put(t.Context(), key, onlyReader{bytes.NewReader(tt.data)}, opts)
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("Put of %d bytes declared as %d: error = %v, want errs.ErrInvalid", len(tt.data), tt.size, err)
			}
			if _, err := s.Stat(t.Context(), key); !errors.Is(err, errs.ErrNotFound) {
				t.Errorf("Stat after a failed Put: error = %v, want errs.ErrNotFound", err)
			}
		})
	}
	// Larger than a part, one byte off either way.
	for _, size := range []int64{17<<20 - 1, 17<<20 + 1} {
		key := fmt.Sprintf("mismatch/size/large%d", size)
		_, err := s.Put(t.Context(), key, newGenerator(17<<20), blob.PutOptions{Size: size})
		if !errors.Is(err, errs.ErrInvalid) {
			t.Fatalf("Put of 17 MiB declared as %d: error = %v, want errs.ErrInvalid", size, err)
		}
		if _, err := s.Stat(t.Context(), key); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("Stat after a failed Put: error = %v, want errs.ErrNotFound", err)
		}
	}
	if keys := listKeys(t, s, ""); len(keys) != 0 {
		t.Errorf("List(\"\") after failed Puts = %q, want nothing", keys)
	}
}

func testFailedPutKeepsPrevious(t *testing.T, s blob.Store) {
	const key = "keep/previous"
	old := []byte("version one")
	put(t, s, key, old, blob.PutOptions{Size: -1, ContentType: "text/plain"})

	bad := []byte("version two, corrupted")
	for _, opts := range []blob.PutOptions{
		{Size: -1, SHA256: digest(old)},
		{Size: int64(len(bad)) + 1},
		{Size: int64(len(bad)) - 1},
	} {
		if _, err := s.Put(t.Context(), key, onlyReader{bytes.NewReader(bad)}, opts); !errors.Is(err, errs.ErrInvalid) {
			t.Fatalf("Put(%+v): error = %v, want errs.ErrInvalid", opts, err)
		}
	}
	b, info := get(t, s, key, nil)
	if !bytes.Equal(b, old) {
		t.Errorf("Get after failed overwrites = %q, want %q", b, old)
	}
	checkInfo(t, "Get", info, blob.Info{Key: key, Size: int64(len(old)), SHA256: digest(old), ContentType: "text/plain"}, false)
}

func testInvalidPutOptions(t *testing.T, s blob.Store) {
	for _, opts := range []blob.PutOptions{
		{Size: -2},
		{Size: -1, SHA256: "abc"},
		{Size: -1, SHA256: strings.ToUpper(digest(nil))},
		{Size: -1, ContentType: "text/plain\r\nX-Injected: 1"},
		{Size: -1, ContentType: "not a media type"},
	} {
		if _, err := s.Put(t.Context(), "opts/bad", strings.NewReader(""), opts); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("Put(%+v): error = %v, want errs.ErrInvalid", opts, err)
		}
	}
	checkAbsent(t, s, "opts/bad")
}

// failingReader returns n bytes and then err.
type failingReader struct {
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	n := min(len(p), f.n)
	clear(p[:n])
	f.n -= n
	return n, nil
}

func testReaderError(t *testing.T, s blob.Store) {
	errBroken := errors.New("connection to the client broken")
	for _, n := range []int{0, 1000, 17 << 20} {
		key := fmt.Sprintf("broken/%d", n)
		_, err := s.Put(t.Context(), key, &failingReader{n: n, err: errBroken}, blob.PutOptions{Size: -1})
		if !errors.Is(err, errBroken) {
			t.Errorf("Put from a reader failing after %d bytes: error = %v, want the reader's error", n, err)
		}
	}
	checkAbsent(t, s, "broken/0")
}

func testGetRange(t *testing.T, s blob.Store) {
	const key = "range/object"
	data := randomBytes(1000, 2)
	put(t, s, key, data, blob.PutOptions{Size: -1, SHA256: digest(data), ContentType: "text/csv"})
	whole := blob.Info{Key: key, Size: 1000, SHA256: digest(data), ContentType: "text/csv"}

	tests := []struct {
		rng  blob.Range
		want []byte
	}{
		{blob.Range{Offset: 0, Length: -1}, data},
		{blob.Range{Offset: 10, Length: -1}, data[10:]},
		{blob.Range{Offset: 10, Length: 20}, data[10:30]},
		{blob.Range{Offset: 0, Length: 1}, data[:1]},
		{blob.Range{Offset: 999, Length: 1}, data[999:]},
		{blob.Range{Offset: 999, Length: -1}, data[999:]},
		{blob.Range{Offset: 990, Length: 100}, data[990:]}, // cut at the end
		{blob.Range{Offset: 0, Length: 1000}, data},
		{blob.Range{Offset: 1, Length: 1<<63 - 1}, data[1:]},
	}
	for _, tt := range tests {
		got, info := get(t, s, key, &tt.rng)
		if !bytes.Equal(got, tt.want) {
			t.Errorf("Get(%+v) returned %d bytes, want %d (bytes %d-)", tt.rng, len(got), len(tt.want), tt.rng.Offset)
		}
		checkInfo(t, fmt.Sprintf("Get(%+v)", tt.rng), info, whole, true)
	}

	for _, rng := range []blob.Range{
		{Offset: 1000, Length: -1},
		{Offset: 1000, Length: 1},
		{Offset: 5000, Length: 10},
	} {
		_, _, err := s.Get(t.Context(), key, &rng)
		if !errors.Is(err, blob.ErrUnsatisfiableRange) || !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("Get(%+v): error = %v, want blob.ErrUnsatisfiableRange wrapping errs.ErrInvalid", rng, err)
		}
	}
	for _, rng := range []blob.Range{
		{Offset: -1, Length: 5},
		{Offset: 0, Length: 0},
		{Offset: 0, Length: -2},
	} {
		_, _, err := s.Get(t.Context(), key, &rng)
		if !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("Get(%+v): error = %v, want errs.ErrInvalid", rng, err)
		}
	}
	// A range of a missing object is not found, not unsatisfiable.
	if _, _, err := s.Get(t.Context(), "range/missing", &blob.Range{Offset: 5, Length: -1}); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("Get of a missing key with a range: error = %v, want errs.ErrNotFound", err)
	}
}

func testMissing(t *testing.T, s blob.Store) {
	const key = "missing/key"
	if _, _, err := s.Get(t.Context(), key, nil); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("Get(%q): error = %v, want errs.ErrNotFound", key, err)
	}
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("Stat(%q): error = %v, want errs.ErrNotFound", key, err)
	}
	for range 2 {
		if err := s.Delete(t.Context(), key); err != nil {
			t.Errorf("Delete(%q) of a missing key: %v, want nil", key, err)
		}
	}
	// A prefix of an existing key is not an object.
	put(t, s, "missing/dir/object", []byte("x"), blob.PutOptions{Size: -1})
	for _, key := range []string{"missing/dir", "missing"} {
		if _, err := s.Stat(t.Context(), key); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("Stat(%q) of a prefix: error = %v, want errs.ErrNotFound", key, err)
		}
		if _, _, err := s.Get(t.Context(), key, nil); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("Get(%q) of a prefix: error = %v, want errs.ErrNotFound", key, err)
		}
		if err := s.Delete(t.Context(), key); err != nil {
			t.Errorf("Delete(%q) of a prefix: %v, want nil", key, err)
		}
	}
	if got := listKeys(t, s, ""); !slices.Equal(got, []string{"missing/dir/object"}) {
		t.Errorf("List after deleting prefixes = %q, want [missing/dir/object]", got)
	}
}

func testOverwrite(t *testing.T, s blob.Store) {
	const key = "overwrite/me"
	v1 := []byte("version one, rather long")
	v2 := []byte("v2")
	put(t, s, key, v1, blob.PutOptions{Size: -1, SHA256: digest(v1), ContentType: "text/plain"})
	got := put(t, s, key, v2, blob.PutOptions{Size: int64(len(v2)), ContentType: "application/json"})
	want := blob.Info{Key: key, Size: 2, SHA256: digest(v2), ContentType: "application/json"}
	checkInfo(t, "Put", got, want, true)

	b, info := get(t, s, key, nil)
	if !bytes.Equal(b, v2) {
		t.Errorf("Get after overwrite = %q, want %q", b, v2)
	}
	// The first version's declared digest must not survive.
	checkInfo(t, "Get", info, want, false)
	stat, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	checkInfo(t, "Stat", stat, want, false)
	if keys := listKeys(t, s, ""); !slices.Equal(keys, []string{key}) {
		t.Errorf("List = %q, want [%s]", keys, key)
	}
}

func testDelete(t *testing.T, s blob.Store) {
	put(t, s, "del/a", []byte("a"), blob.PutOptions{Size: -1})
	put(t, s, "del/b/c", []byte("c"), blob.PutOptions{Size: -1})
	for _, key := range []string{"del/a", "del/b/c"} {
		if err := s.Delete(t.Context(), key); err != nil {
			t.Fatalf("Delete(%q): %v", key, err)
		}
		if _, err := s.Stat(t.Context(), key); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("Stat(%q) after Delete: error = %v, want errs.ErrNotFound", key, err)
		}
		if _, _, err := s.Get(t.Context(), key, nil); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("Get(%q) after Delete: error = %v, want errs.ErrNotFound", key, err)
		}
	}
	checkAbsent(t, s, "del/a")
	// The names are free again, as keys and as prefixes.
	put(t, s, "del/b", []byte("b"), blob.PutOptions{Size: -1})
	put(t, s, "del/a/x", []byte("x"), blob.PutOptions{Size: -1})
	if keys := listKeys(t, s, ""); !slices.Equal(keys, []string{"del/a/x", "del/b"}) {
		t.Errorf("List = %q, want [del/a/x del/b]", keys)
	}
}

func testContentType(t *testing.T, s blob.Store) {
	for i, ct := range []string{"", "application/json", "text/plain; charset=utf-8", "application/vnd.slipway.report+json"} {
		key := fmt.Sprintf("ct/%d", i)
		want := ct
		if want == "" {
			want = blob.DefaultContentType
		}
		if got := put(t, s, key, []byte("{}"), blob.PutOptions{Size: -1, ContentType: ct}); got.ContentType != want {
			t.Errorf("Put(ContentType %q) Info.ContentType = %q, want %q", ct, got.ContentType, want)
		}
		stat, err := s.Stat(t.Context(), key)
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		if stat.ContentType != want {
			t.Errorf("Stat ContentType = %q, want %q", stat.ContentType, want)
		}
		_, info := get(t, s, key, nil)
		if info.ContentType != want {
			t.Errorf("Get ContentType = %q, want %q", info.ContentType, want)
		}
	}
}

func testList(t *testing.T, s blob.Store) {
	keys := []string{
		"a-1", "a.txt", "a/1", "a/2/deep", "a0", "ab/c", "b", ".hidden/x", "~tilde",
		"é/x", "Z", "m/n/o/p", "m/n/o2", "m/n-/x",
	}
	sizes := make(map[string]int64)
	for i, key := range slices.Backward(keys) { // not in order
		data := bytes.Repeat([]byte{'x'}, i)
		put(t, s, key, data, blob.PutOptions{Size: -1, ContentType: "text/plain"})
		sizes[key] = int64(i)
	}
	sorted := slices.Clone(keys)
	slices.Sort(sorted)

	// Byte order, spelled out once: '-' < '.' < '/' < '0' < 'Z' < 'a' < '~' < 'é'.
	wantA := []string{"a-1", "a.txt", "a/1", "a/2/deep", "a0", "ab/c"}
	for _, tt := range []struct {
		prefix string
		want   []string
	}{
		{"a", wantA},
		{"a/", []string{"a/1", "a/2/deep"}},
		{"ab", []string{"ab/c"}},
		{"a/2/deep", []string{"a/2/deep"}},
		{"m/n", []string{"m/n-/x", "m/n/o/p", "m/n/o2"}},
		{"m/n/o", []string{"m/n/o/p", "m/n/o2"}},
		{"m/n/o/", []string{"m/n/o/p"}},
		{".", []string{".hidden/x"}},
		{"é", []string{"é/x"}},
		{"zzz", nil},
		{"a/3", nil},
	} {
		var want []string
		for _, k := range sorted {
			if strings.HasPrefix(k, tt.prefix) {
				want = append(want, k)
			}
		}
		if diff := cmp.Diff(tt.want, want); diff != "" {
			t.Fatalf("test table is wrong for prefix %q (-table +computed):\n%s", tt.prefix, diff)
		}
	}

	for _, prefix := range []string{"", "a", "a/", "ab", "a/2/deep", "m/n", "m/n/o", "m/n/o/", ".", "é", "zzz", "a/3"} {
		var want []blob.Info
		for _, k := range sorted {
			if strings.HasPrefix(k, prefix) {
				want = append(want, blob.Info{Key: k, Size: sizes[k]})
			}
		}
		var got []blob.Info
		err := s.List(t.Context(), prefix, func(info blob.Info) error {
			checkModTime(t, "List", info.ModTime)
			got = append(got, info)
			return nil
		})
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		if diff := cmp.Diff(want, got, ignoreModTime); diff != "" {
			t.Errorf("List(%q) mismatch (-want +got):\n%s", prefix, diff)
		}
	}
}

func testListEarlyStop(t *testing.T, s blob.Store) {
	for i := range 5 {
		put(t, s, fmt.Sprintf("stop/%d", i), []byte("x"), blob.PutOptions{Size: -1})
	}
	errStop := errors.New("enough")
	var got []string
	err := s.List(t.Context(), "stop/", func(info blob.Info) error {
		got = append(got, info.Key)
		if len(got) == 2 {
			return errStop
		}
		return nil
	})
	if err != errStop {
		t.Errorf("List returned %v, want the callback's error unchanged", err)
	}
	if want := []string{"stop/0", "stop/1"}; !slices.Equal(got, want) {
		t.Errorf("List called fn with %q, want %q", got, want)
	}
}

func testListInvalidPrefix(t *testing.T, s blob.Store) {
	for _, prefix := range []string{"/", "/a", "../", "./", "a//", "a/../", "../x", "a\\b", "a\x00", "%2e%2e/", "\uff0e\uff0e/"} {
		err := s.List(t.Context(), prefix, func(blob.Info) error { return nil })
		if !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("List(%q): error = %v, want errs.ErrInvalid", prefix, err)
		}
	}
}

func testInvalidKeys(t *testing.T, s blob.Store) {
	ctx := t.Context()
	for _, key := range BadKeys {
		if _, err := s.Put(ctx, key, strings.NewReader("data"), blob.PutOptions{Size: -1}); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("Put(%q): error = %v, want errs.ErrInvalid", key, err)
		}
		if _, _, err := s.Get(ctx, key, nil); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("Get(%q): error = %v, want errs.ErrInvalid", key, err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("Stat(%q): error = %v, want errs.ErrInvalid", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("Delete(%q): error = %v, want errs.ErrInvalid", key, err)
		}
	}
	if keys := listKeys(t, s, ""); len(keys) != 0 {
		t.Errorf("List(\"\") after refused Puts = %q, want nothing", keys)
	}
}

// cancellingReader cancels its context after after bytes and goes on
// producing bytes, up to a total the test never expects to reach.
type cancellingReader struct {
	g      *generator
	after  int64
	cancel context.CancelFunc
	read   int64
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	if c.read >= c.after {
		c.cancel()
	}
	n, err := c.g.Read(p)
	c.read += int64(n)
	return n, err
}

func testCancelDuringPut(t *testing.T, s blob.Store) {
	for _, size := range []int64{-1, 64 << 20} {
		ctx, cancel := context.WithCancel(t.Context())
		r := &cancellingReader{g: newGenerator(64 << 20), after: 3 << 20, cancel: cancel}
		key := fmt.Sprintf("cancel/%d", size)
		_, err := s.Put(ctx, key, r, blob.PutOptions{Size: size})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Put(%q) cancelled after 3 MiB: error = %v, want context.Canceled", key, err)
		}
		if r.read > 40<<20 {
			t.Errorf("Put(%q) read %d bytes after the cancellation at 3 MiB", key, r.read)
		}
	}
	// Cancelled before it starts.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Put(ctx, "cancel/before", strings.NewReader("x"), blob.PutOptions{Size: -1}); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context: error = %v, want context.Canceled", err)
	}
	checkAbsent(t, s, "cancel/-1")
}

func testKeyAndPrefix(t *testing.T, s blob.Store) {
	// A key cannot also be a path prefix of other keys, whichever comes
	// first; the refused Put leaves the first object alone.
	for _, order := range [][2]string{{"p/x", "p/x/y"}, {"q/x/y", "q/x"}, {"r/x", "r/x/y/z"}, {"s/x/y/z", "s/x"}} {
		first, second := order[0], order[1]
		put(t, s, first, []byte(first), blob.PutOptions{Size: -1})
		_, err := s.Put(t.Context(), second, strings.NewReader(second), blob.PutOptions{Size: -1})
		if !errors.Is(err, errs.ErrConflict) {
			t.Errorf("Put(%q) after Put(%q): error = %v, want errs.ErrConflict", second, first, err)
		}
		if b, _ := get(t, s, first, nil); string(b) != first {
			t.Errorf("Get(%q) = %q, want %q", first, b, first)
		}
		if got := listKeys(t, s, first[:2]); !slices.Equal(got, []string{first}) {
			t.Errorf("List(%q) = %q, want [%s]", first[:2], got, first)
		}
		// Once the first is gone, the second is fine.
		if err := s.Delete(t.Context(), first); err != nil {
			t.Fatal(err)
		}
		put(t, s, second, []byte(second), blob.PutOptions{Size: -1})
		if got := listKeys(t, s, first[:2]); !slices.Equal(got, []string{second}) {
			t.Errorf("List(%q) = %q, want [%s]", first[:2], got, second)
		}
	}
	// Siblings sharing a name's start do not clash.
	put(t, s, "t/x", []byte("x"), blob.PutOptions{Size: -1})
	put(t, s, "t/xy/z", []byte("z"), blob.PutOptions{Size: -1})
	put(t, s, "t/x-y", []byte("z"), blob.PutOptions{Size: -1})
}

func testConcurrentOverwrite(t *testing.T, s blob.Store) {
	const key = "race/key"
	contentTypes := make(map[string]string) // by digest
	var wg sync.WaitGroup
	for i := range 8 {
		data := randomBytes(1000+i, uint64(100+i)) // sizes differ
		opts := blob.PutOptions{Size: -1, ContentType: fmt.Sprintf("application/x-v%d", i)}
		if i%2 == 0 {
			opts.SHA256 = digest(data)
		}
		contentTypes[digest(data)] = opts.ContentType
		wg.Go(func() {
			if _, err := s.Put(t.Context(), key, onlyReader{bytes.NewReader(data)}, opts); err != nil {
				t.Errorf("Put version %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	b, info := get(t, s, key, nil)
	ct, ok := contentTypes[digest(b)]
	if !ok {
		t.Fatalf("Get returned %d bytes that are none of the versions put", len(b))
	}
	if info.ContentType != ct {
		t.Errorf("Get Info.ContentType = %q, but the content is the version put with %q", info.ContentType, ct)
	}
	if info.Size != int64(len(b)) {
		t.Errorf("Get Info.Size = %d, want %d", info.Size, len(b))
	}
	if info.SHA256 != "" && info.SHA256 != digest(b) {
		t.Errorf("Get Info.SHA256 = %s, but the content's digest is %s", info.SHA256, digest(b))
	}
}

func testPing(t *testing.T, s blob.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
