package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/slipway-ml/slipway/internal/errs"
)

// The S3 store relies on this: when a stream of declared size fails its
// checks, the Read that would hand on the last bytes returns none, so a
// single PUT never sends a complete body; and whatever the size, the end of
// a failing stream is the failure, never io.EOF, so a multipart upload is
// never completed.
func TestDigestReaderWithholdsLastBytesOnFailure(t *testing.T) {
	data := strings.Repeat("0123456789", 100)
	sum := sha256.Sum256([]byte(data))
	good := hex.EncodeToString(sum[:])
	wrong := strings.Repeat("0", 64)

	tests := []struct {
		name    string
		r       func() io.Reader
		opts    PutOptions
		wantErr error // nil: success
	}{
		{"known size, right digest", func() io.Reader { return strings.NewReader(data) }, PutOptions{Size: 1000, SHA256: good}, nil},
		{"unknown size, right digest", func() io.Reader { return strings.NewReader(data) }, PutOptions{Size: -1, SHA256: good}, nil},
		{"known size, wrong digest", func() io.Reader { return strings.NewReader(data) }, PutOptions{Size: 1000, SHA256: wrong}, errs.ErrInvalid},
		{"unknown size, wrong digest", func() io.Reader { return strings.NewReader(data) }, PutOptions{Size: -1, SHA256: wrong}, errs.ErrInvalid},
		{"stream longer", func() io.Reader { return strings.NewReader(data + "x") }, PutOptions{Size: 1000}, errs.ErrInvalid},
		{"stream shorter", func() io.Reader { return strings.NewReader(data[:999]) }, PutOptions{Size: 1000}, errs.ErrInvalid},
		{"data with EOF", func() io.Reader { return iotest.DataErrReader(strings.NewReader(data)) }, PutOptions{Size: 1000, SHA256: wrong}, errs.ErrInvalid},
		{"one byte at a time", func() io.Reader { return iotest.OneByteReader(strings.NewReader(data)) }, PutOptions{Size: 1000, SHA256: wrong}, errs.ErrInvalid},
	}
	for _, tt := range tests {
		for _, chunk := range []int{7, 100, 4096} {
			d := newDigestReader(context.Background(), tt.r(), tt.opts)
			var handed int
			var err error
			buf := make([]byte, chunk)
			for err == nil {
				var n int
				n, err = d.Read(buf)
				handed += n
			}
			if tt.wantErr == nil {
				if err != io.EOF || handed != 1000 || d.sum != good {
					t.Errorf("%s, reads of %d: handed %d bytes, err %v, sum %s; want 1000, EOF, %s", tt.name, chunk, handed, err, d.sum, good)
				}
				continue
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%s, reads of %d: err = %v, want %v", tt.name, chunk, err, tt.wantErr)
			}
			if tt.opts.Size >= 0 && handed >= 1000 {
				t.Errorf("%s, reads of %d: handed on %d bytes, want fewer than the 1000 of the stream", tt.name, chunk, handed)
			}
			if n, err2 := d.Read(buf); n != 0 || err2 != err {
				t.Errorf("%s: Read after failure = %d, %v; want 0, the same error", tt.name, n, err2)
			}
		}
	}
}

func TestRangeBounds(t *testing.T) {
	tests := []struct {
		rng         Range
		size        int64
		first, last int64
		header      string
	}{
		{Range{0, -1}, 10, 0, 9, "bytes=0-"},
		{Range{3, -1}, 10, 3, 9, "bytes=3-"},
		{Range{3, 2}, 10, 3, 4, "bytes=3-4"},
		{Range{9, 1}, 10, 9, 9, "bytes=9-9"},
		{Range{5, 100}, 10, 5, 9, "bytes=5-104"},
		{Range{5, 1<<63 - 1}, 10, 5, 9, "bytes=5-"},
	}
	for _, tt := range tests {
		first, last, err := tt.rng.bounds(tt.size)
		if err != nil || first != tt.first || last != tt.last {
			t.Errorf("%+v.bounds(%d) = %d, %d, %v; want %d, %d", tt.rng, tt.size, first, last, err, tt.first, tt.last)
		}
		if h := tt.rng.header(); h != tt.header {
			t.Errorf("%+v.header() = %q, want %q", tt.rng, h, tt.header)
		}
	}
	for _, size := range []int64{0, 5} {
		if _, _, err := (Range{5, -1}).bounds(size); !errors.Is(err, ErrUnsatisfiableRange) {
			t.Errorf("Range{5,-1}.bounds(%d) error = %v, want ErrUnsatisfiableRange", size, err)
		}
	}
}
