package evalreport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// stream reads a JSON document token by token (json.Decoder's Token API,
// so nothing but the current token is buffered) through a
// nonfiniteReader. It tracks the containers it is in, which lets it tell
// object keys from values and skip values without recursion.
type stream struct {
	dec   *json.Decoder
	nf    *nonfiniteReader
	marks markers

	stack   []byte // '{' or '[' per open container
	wantKey bool   // the next string token is an object key
	started bool   // a token was read
	err     error  // the first error token returned: every later call returns it
}

const readBufferSize = 32 << 10

func newStream(r io.Reader, m markers, maxString int64) *stream {
	return newStreamSize(r, m, readBufferSize, maxString)
}

func newStreamSize(r io.Reader, m markers, bufSize int, maxString int64) *stream {
	nf := newNonfiniteReader(r, m.replacements(), bufSize, maxString)
	dec := json.NewDecoder(nf)
	dec.UseNumber() // numbers as written: parsed by parseNumber, or kept as text in Meta
	return &stream{dec: dec, nf: nf, marks: m}
}

// depth is the number of open containers.
func (s *stream) depth() int { return len(s.stack) }

// token reads the next token: a json.Delim, a string, a json.Number, a
// bool or nil. A NaN or Infinity token in a value's place reads as a
// string that s.marks recognises; in a key's place it is an error.
func (s *stream) token() (json.Token, error) {
	if s.err != nil {
		return nil, s.err
	}
	tok, err := s.dec.Token()
	if err != nil {
		s.err = s.tokenError(err)
		return nil, s.err
	}
	s.started = true
	if err := s.track(tok); err != nil {
		s.err = err
		return nil, err
	}
	s.nf.forget(s.dec.InputOffset())
	return tok, nil
}

// track follows the containers tok opens and closes, and refuses a NaN or
// Infinity in a key's place.
func (s *stream) track(tok json.Token) error {
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{', '[':
			if len(s.stack) >= maxNesting {
				at := s.nf.inputOffset(s.dec.InputOffset() - 1) // the bracket
				return errorf("", "values nest more than %d levels deep (the limit MaxNesting), at byte %d", maxNesting, at)
			}
			s.stack = append(s.stack, byte(t))
			s.wantKey = t == '{'
		default:
			s.stack = s.stack[:len(s.stack)-1]
			s.wantKey = s.inObject()
		}
	case string:
		if s.wantKey {
			if _, ok := s.marks.value(t); ok {
				// The key's last byte is inside the rewritten token, which
				// maps to the token's start.
				at := s.nf.inputOffset(s.dec.InputOffset() - 1)
				return errorf("", "not JSON: NaN, Infinity and -Infinity are numbers and cannot be object keys, at byte %d", at)
			}
			s.wantKey = false
			return nil
		}
		s.wantKey = s.inObject()
	default:
		s.wantKey = s.inObject()
	}
	return nil
}

func (s *stream) inObject() bool {
	return len(s.stack) > 0 && s.stack[len(s.stack)-1] == '{'
}

// offset is the decoder's position in the input.
func (s *stream) offset() int64 {
	return s.nf.inputOffset(s.dec.InputOffset())
}

// tokenError turns the decoder's error into an *Error that says where the
// input stops being JSON; an error reading the input is returned wrapped.
func (s *stream) tokenError(err error) error {
	if s.nf.srcErr != nil && errors.Is(err, s.nf.srcErr) {
		return fmt.Errorf("report: reading: %w", err)
	}
	var e *Error
	if errors.As(err, &e) {
		return e // a limit the nonfiniteReader enforces
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		if !s.started {
			return errorf("", "the body is empty: a report is a JSON object")
		}
		return errorf("", "not JSON: the input ends at byte %d, inside a value: the report is cut short", s.nf.inPos)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return errorf("", "not JSON: %s", syntaxMessage(se, s.offset()))
	}
	return errorf("", "not JSON: %v", err)
}

// syntaxMessage places a syntax error. The decoder's SyntaxError.Offset
// is not a position in the stream (its scanner counts from an arbitrary
// point), but its InputOffset is: the offending byte itself for an error
// between tokens ("after array element"), the start of the literal,
// number or string for an error inside one ("in numeric literal").
func syntaxMessage(se *json.SyntaxError, at int64) string {
	if strings.Contains(se.Error(), " in ") {
		return fmt.Sprintf("%s, in the value that starts at byte %d", se.Error(), at)
	}
	return fmt.Sprintf("%s at byte %d", se.Error(), at)
}

// skip reads the rest of the value whose first token is tok.
func (s *stream) skip(tok json.Token) error {
	if d, ok := tok.(json.Delim); !ok || (d != '{' && d != '[') {
		return nil
	}
	return s.skipTo(s.depth() - 1)
}

// skipTo reads tokens until depth containers are open.
func (s *stream) skipTo(depth int) error {
	for s.depth() > depth {
		if _, err := s.token(); err != nil {
			return err
		}
	}
	return nil
}

// members calls fn with each key of the object whose '{' was just read;
// fn must read the member's value.
func (s *stream) members(fn func(key string) error) error {
	for {
		tok, err := s.token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return nil // '}': the decoder allows nothing else here
		}
		if err := fn(key); err != nil {
			return err
		}
	}
}

// elements calls fn with the index and first token of each element of the
// array whose '[' was just read; fn must read the rest of the element.
func (s *stream) elements(fn func(i int, tok json.Token) error) error {
	for i := 0; ; i++ {
		tok, err := s.token()
		if err != nil {
			return err
		}
		if tok == json.Delim(']') {
			return nil
		}
		if err := fn(i, tok); err != nil {
			return err
		}
	}
}

// end checks that nothing but white space follows the top-level value,
// reading the input to its end.
func (s *stream) end() error {
	endsAt := s.offset()
	tok, err := s.dec.Token()
	switch {
	case err == io.EOF:
		return nil
	case err != nil:
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return errorf("", "trailing data after the JSON object: %s", syntaxMessage(se, s.offset()))
		}
		return s.tokenError(err)
	}
	return errorf("", "trailing data after the JSON object, which ends at byte %d: %s", endsAt, s.marks.describe(tok))
}

// number reads a number token, or a NaN or Infinity token.
func (m markers) number(tok json.Token) (float64, bool) {
	switch v := tok.(type) {
	case json.Number:
		return parseNumber(v), true
	case string:
		return m.value(v)
	}
	return 0, false
}

// parseNumber reads a JSON number. One too large for a float64 reads as
// ±Inf, one too small as 0, which is what strconv returns with ErrRange.
func parseNumber(n json.Number) float64 {
	f, _ := strconv.ParseFloat(string(n), 64) // the decoder checked the syntax
	return f
}
