// Package blob stores Slipway's immutable objects (model artifacts, reports)
// in an S3-compatible bucket (S3Store) or in a local directory (FSStore).
// Both implement Store and pass the same conformance suite (package
// blobtest), so the rest of Slipway does not know which one it has.
//
// # Keys
//
// Keys are opaque byte strings to the store, but they also become file paths
// (FSStore) and URL paths (S3, the HTTP API), and some layer between a client
// and the disk may percent-decode or Unicode-normalize them. ValidateKey is
// the one place that decides what a key may be; every method of both stores
// calls it. A key is refused (with an error wrapping errs.ErrInvalid that
// names the rule) unless:
//
//   - it is 1 to 1024 bytes of valid UTF-8, made of '/'-separated segments of
//     at most 255 bytes each (the usual file-name limit), with no leading or
//     trailing '/' and no empty, "." or ".." segment;
//   - it contains no backslash, no control character (C0, DEL, C1) and no
//     U+2028/U+2029 line separator;
//   - it contains no look-alike of '.', '/', '\' or '%': every rune whose NFKC
//     compatibility form contains one of them (U+FF0E FULLWIDTH FULL STOP,
//     U+2024 ONE DOT LEADER, U+2025, U+FE52, U+FF0F, U+FF3C, U+FE68, U+FF05,
//     ...; a test checks the list against golang.org/x/text/unicode/norm) and
//     the visual look-alikes U+2215, U+2044, U+29F5, U+2216, U+29F8, U+29F9;
//   - it contains no percent-encoded '.', '/', '\' or '%' ("%2e", "%2F",
//     "%5c", "%25", in any case); a literal "%41" or "100%" is fine;
//   - each segment, percent-decoded repeatedly (up to three rounds, so that
//     tricks such as "%%32%65" are caught), still obeys all the rules above
//     and contains no '/'. Decoding is lenient: a '%' not followed by two hex
//     digits stays as it is.
//
// So a key that is harmless to S3 but would turn into a traversal after some
// decoding or normalization ("%2e%2e/x", "\uff0e\uff0e/x") is refused
// outright rather than stored under a name that is safe only by accident.
// List's prefix follows the same rules (see ValidatePrefix), except that it
// may be empty, may end with '/', and its last, partial segment may be "."
// or "..".
//
// # Semantics shared by both stores
//
//   - Put streams: it computes the size and SHA-256 while the bytes go to the
//     backend and returns them in Info; it never holds the whole object in
//     memory. PutOptions.Size and PutOptions.SHA256, when given, are checked
//     before the object becomes visible: a mismatch fails with errs.ErrInvalid
//     and leaves nothing behind.
//   - Put to an existing key replaces the object atomically: readers see the
//     old or the new object, never a mix. A failed Put leaves the previous
//     object, if any, as it was.
//   - Info.SHA256 from Stat and Get is the digest recorded at Put time, or ""
//     when the store does not know it: FSStore always records it; S3Store
//     records it only when the caller declared it in PutOptions.SHA256,
//     because S3 metadata is sent before the body is read. Put always
//     returns the computed digest; the database is the authority.
//   - List reports Key, Size and ModTime only (S3 listings carry no digest or
//     content type); use Stat for the rest. Keys come in byte-wise lexical
//     order. Objects whose keys ValidateKey refuses (written by someone else)
//     are skipped.
//   - Get's Range follows HTTP: an offset at or beyond the end of the object
//     is unsatisfiable (ErrUnsatisfiableRange, which wraps errs.ErrInvalid);
//     a length running past the end is cut at the end. Info.Size is always
//     the size of the whole object.
//   - A key cannot also be a path prefix of other keys ("a" and "a/b"): Put
//     fails with errs.ErrConflict. A file system cannot hold both (a name is
//     a file or a directory), and MinIO stores both but then lists only "a".
//     S3Store checks before uploading, which costs a HEAD per parent and one
//     LIST, and is best effort: concurrent Puts of "a" and "a/b" may both
//     succeed. Key schemes must not need both (fixed-depth keys never do).
//   - Errors wrap errs.ErrNotFound (no such object), errs.ErrInvalid (bad key,
//     options or range), errs.ErrConflict (see above) or errs.ErrUnavailable
//     (backend unreachable, timed out or not ready), so the HTTP layer can
//     answer 404, 400/416, 409 or 503. A call whose context was cancelled
//     returns an error wrapping context.Canceled, not ErrUnavailable; a
//     Put whose reader fails returns an error wrapping the reader's error.
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"time"

	"github.com/slipway-ml/slipway/internal/errs"
)

// Store is an object store. Implementations: S3Store, FSStore.
type Store interface {
	// Put streams r into key and returns the Info of what was written, with
	// the size and SHA-256 computed while streaming.
	Put(ctx context.Context, key string, r io.Reader, opts PutOptions) (Info, error)
	// Get opens key, or the part of it that rng selects (nil: all of it).
	// The caller must close the reader, and keep ctx alive while reading
	// (S3Store's download is bound to it). A missing key is
	// errs.ErrNotFound; an unsatisfiable range is ErrUnsatisfiableRange.
	Get(ctx context.Context, key string, rng *Range) (io.ReadCloser, Info, error)
	// Stat returns the Info of key, or errs.ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for each object whose key starts with prefix, in
	// lexical key order. When fn returns an error, List stops and returns
	// that error unchanged.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// Ping checks that the store is reachable and ready (used by /readyz).
	Ping(ctx context.Context) error
}

// Info describes a stored object.
type Info struct {
	Key         string
	Size        int64
	SHA256      string // lowercase hex; "" when the store does not know it
	ContentType string
	ModTime     time.Time
}

// DefaultContentType is the content type of objects put without one.
const DefaultContentType = "application/octet-stream"

// PutOptions are the optional expectations and attributes of a Put.
type PutOptions struct {
	// ContentType is stored with the object; "" means DefaultContentType.
	ContentType string
	// Size is the length of the stream, or -1 when unknown. When it is >= 0
	// and the stream is shorter or longer, Put fails with errs.ErrInvalid.
	// Note that the zero value declares an empty object.
	Size int64
	// SHA256 is the expected lowercase hex digest of the stream, or "".
	// When the stream's digest differs, Put fails with errs.ErrInvalid.
	SHA256 string
}

// normalize checks opts and fills in the default content type.
func (o PutOptions) normalize() (PutOptions, error) {
	var fe errs.FieldErrors
	if o.Size < -1 {
		fe.Add("size", "must be -1 (unknown) or the length of the stream, got %d", o.Size)
	}
	if o.SHA256 != "" && !isHexDigest(o.SHA256) {
		fe.Add("sha256", "must be 64 lowercase hex digits")
	}
	if o.ContentType == "" {
		o.ContentType = DefaultContentType
	} else if _, _, err := mime.ParseMediaType(o.ContentType); err != nil || len(o.ContentType) > 255 {
		fe.Add("content_type", "must be a media type such as application/octet-stream, at most 255 bytes")
	}
	return o, fe.Err()
}

// isHexDigest reports whether s is a lowercase hex SHA-256 digest.
func isHexDigest(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Range selects Length bytes of an object from Offset; Length -1 means to
// the end of the object.
type Range struct {
	Offset, Length int64
}

// ErrUnsatisfiableRange is returned by Get when the range starts at or
// beyond the end of the object (HTTP 416). It wraps errs.ErrInvalid.
var ErrUnsatisfiableRange = fmt.Errorf("unsatisfiable range: %w", errs.ErrInvalid)

// check refuses ranges that are invalid whatever the object's size.
func (r *Range) check() error {
	if r == nil {
		return nil
	}
	if r.Offset < 0 {
		return errs.Invalid("range", "offset must not be negative, got %d", r.Offset)
	}
	if r.Length == 0 || r.Length < -1 {
		return errs.Invalid("range", "length must be positive, or -1 for the rest of the object, got %d", r.Length)
	}
	return nil
}

// bounds returns the first and the last (inclusive) byte r selects in an
// object of the given size.
func (r Range) bounds(size int64) (first, last int64, err error) {
	if r.Offset >= size {
		return 0, 0, fmt.Errorf("%w: offset %d of an object of %d bytes", ErrUnsatisfiableRange, r.Offset, size)
	}
	last = size - 1
	if r.Length > 0 && r.Length <= last-r.Offset {
		last = r.Offset + r.Length - 1
	}
	return r.Offset, last, nil
}

// header returns r as the value of an HTTP Range header.
func (r Range) header() string {
	if r.Length < 0 || r.Length > (1<<63-1)-r.Offset {
		return fmt.Sprintf("bytes=%d-", r.Offset)
	}
	return fmt.Sprintf("bytes=%d-%d", r.Offset, r.Offset+r.Length-1)
}

// digestReader reads a Put's stream for the backend, hashing and counting
// the bytes, and enforces PutOptions.Size, PutOptions.SHA256 and the
// context. A failing stream never ends with io.EOF but with the failure, so
// a backend that completes an object only at EOF (a multipart upload, a
// temporary file renamed into place) never completes it. With a declared
// size it does more: the stream is checked as soon as that size is reached,
// and the Read that would hand on the last bytes returns the failure
// instead, so even a single PUT of Content-Length bytes never sends a
// complete body. Failures are sticky and kept in err, so the caller can
// tell them from the backend's own errors, whatever the backend made of
// them.
type digestReader struct {
	ctx  context.Context
	r    io.Reader
	size int64  // declared size, or -1
	want string // declared digest, or ""
	h    hash.Hash
	n    int64  // bytes read so far
	sum  string // hex digest, set at EOF
	eof  bool   // the stream ended and passed the checks
	err  error  // sticky failure
}

func newDigestReader(ctx context.Context, r io.Reader, opts PutOptions) *digestReader {
	return &digestReader{ctx: ctx, r: r, size: opts.Size, want: opts.SHA256, h: sha256.New()}
}

// maxEmptyReads bounds the (0, nil) reads tolerated while probing for EOF.
const maxEmptyReads = 100

func (d *digestReader) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if d.eof {
		return 0, io.EOF
	}
	if err := d.ctx.Err(); err != nil {
		return 0, d.fail(err)
	}
	if d.size >= 0 {
		left := d.size - d.n
		if left == 0 {
			if err := d.probe(); err != nil {
				return 0, err
			}
			return 0, io.EOF
		}
		if int64(len(p)) > left {
			p = p[:left]
		}
	}
	n, err := d.r.Read(p)
	d.h.Write(p[:n])
	d.n += int64(n)
	switch {
	case err == io.EOF:
		if err := d.finish(); err != nil {
			return 0, err
		}
		return n, io.EOF
	case err != nil:
		return 0, d.fail(err)
	case d.size >= 0 && d.n == d.size:
		// The declared size is reached: make sure the stream ends here
		// before handing on its last bytes.
		if err := d.probe(); err != nil {
			return 0, err
		}
		return n, io.EOF
	}
	return n, nil
}

// probe checks that the stream has no byte beyond the declared size.
func (d *digestReader) probe() error {
	var one [1]byte
	for range maxEmptyReads {
		n, err := d.r.Read(one[:])
		if n > 0 {
			return d.fail(errs.Invalid("size", "the stream is longer than the declared %d bytes", d.size))
		}
		if err == io.EOF {
			return d.finish()
		}
		if err != nil {
			return d.fail(err)
		}
	}
	return d.fail(io.ErrNoProgress)
}

// finish runs the checks at the end of the stream.
func (d *digestReader) finish() error {
	if d.size >= 0 && d.n != d.size {
		return d.fail(errs.Invalid("size", "the stream has %d bytes, %d were declared", d.n, d.size))
	}
	sum := hex.EncodeToString(d.h.Sum(nil))
	if d.want != "" && sum != d.want {
		return d.fail(errs.Invalid("sha256", "the stream's SHA-256 is %s, %s was declared", sum, d.want))
	}
	d.sum = sum
	d.eof = true
	return nil
}

func (d *digestReader) fail(err error) error {
	d.err = err
	return err
}

// done returns the error that stopped the stream, or an error when the
// backend stopped reading before the end (which a correct backend never
// does after a successful write).
func (d *digestReader) done() error {
	switch {
	case d.err != nil:
		return d.err
	case !d.eof:
		return errors.New("the store stopped reading before the end of the stream")
	}
	return nil
}

// errKeyClash is the error of a Put whose key is also a path prefix of
// other keys, or has an object's key as a path prefix.
var errKeyClash = fmt.Errorf(`%w: a key cannot also be a path prefix of other keys ("a" and "a/b")`, errs.ErrConflict)

// opErr adds the operation and the key to err.
func opErr(op, key string, err error) error {
	return fmt.Errorf("blob %s %q: %w", op, key, err)
}
