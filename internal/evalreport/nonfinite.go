package evalreport

import (
	"bytes"
	"crypto/rand"
	"io"
	"math"
	"strings"
)

// Python's json.dumps writes float('nan') and float('inf') as the bare
// tokens NaN, Infinity and -Infinity, which are not JSON and which
// encoding/json rejects. Slipway accepts them (see the package comment):
// nonfiniteReader rewrites each of them, outside strings, into a JSON
// string made of a random per-Parse prefix and a suffix, which the parser
// maps back to math.NaN(), math.Inf(1) or math.Inf(-1). A report cannot
// forge such a string, since it cannot know the prefix.

// nonfiniteWords are the tokens rewritten, in the order of markerSuffixes.
var nonfiniteWords = [3]string{"NaN", "Infinity", "-Infinity"}

// maxWordLen is the length of the longest of nonfiniteWords.
const maxWordLen = 9 // len("-Infinity")

// markers are the strings that stand for the three tokens in one Parse.
type markers struct {
	prefix string
}

func newMarkers() markers {
	// rand.Text is 128 random bits: no report will guess it.
	return markers{prefix: rand.Text() + ":"}
}

var markerSuffixes = [3]string{"NaN", "+Inf", "-Inf"}

// replacements are the JSON texts that replace nonfiniteWords.
func (m markers) replacements() [3][]byte {
	var r [3][]byte
	for i, s := range markerSuffixes {
		r[i] = []byte(`"` + m.prefix + s + `"`)
	}
	return r
}

// value reads a string that stands for a non-finite number.
func (m markers) value(s string) (float64, bool) {
	rest, ok := strings.CutPrefix(s, m.prefix)
	if !ok {
		return 0, false
	}
	switch rest {
	case "NaN":
		return math.NaN(), true
	case "+Inf":
		return math.Inf(1), true
	case "-Inf":
		return math.Inf(-1), true
	}
	return 0, false
}

// nonfiniteText writes a non-finite number as the report did.
func nonfiniteText(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return "NaN"
}

// validationReplacements turn each of nonfiniteWords into 0, which is JSON
// exactly where the word is allowed (as a value), so that json.Valid can
// judge a document without the output growing.
var validationReplacements = [3][]byte{[]byte("0"), []byte("0"), []byte("0")}

// nonfiniteReader rewrites nonfiniteWords outside JSON strings as it
// streams. It lexes just enough JSON for that: strings (with escapes), and
// the bare words between structural characters and white space. Where the
// input is not JSON the decoder downstream stops at or before the first
// bad byte, so a lexing difference after that point does not matter.
//
// Being the one place that sees every byte, it also bounds what the
// decoder would otherwise buffer whole: a string or a bare word longer than
// maxStr is an error, and a run of white space outside strings is cut to
// maxSpaceRun bytes (json.Decoder keeps the white space before a token in
// its buffer, and rescans it on every read).
type nonfiniteReader struct {
	src  io.Reader
	repl [3][]byte

	buf []byte // read from src
	out []byte // rewritten, not yet returned
	off int    // returned part of out

	// Lexer state.
	inString bool
	escape   bool  // after a backslash in a string
	hex      int   // \u hex digits still to come
	strLen   int64 // decoded bytes of the current string, at most (a \u escape counts 3)
	maxStr   int64 // limit on strLen and wordLen; 0 for none
	word     [maxWordLen]byte
	wordLen  int64 // bytes of the current bare word; the first maxWordLen are in word
	space    int   // bytes of the current run of white space
	cut      bool  // cutting the run of white space: cutFrom is where it started
	cutFrom  rewrite

	inPos, outPos int64 // bytes read from src, bytes written to out
	// Rewrites not yet forgotten (from head on), to map the decoder's
	// offsets back to the input; base is the last one forgotten.
	rewrites []rewrite
	head     int
	base     rewrite

	err    error // sticky: io.EOF, src's error or a limit error
	srcErr error // src's error, other than io.EOF
}

// maxSpaceRun is as much of a run of white space as is passed on.
const maxSpaceRun = 64

// rewrite records that input [inStart, inEnd) became output [outStart,
// outEnd), which may be empty.
type rewrite struct {
	inStart, inEnd, outStart, outEnd int64
}

// newNonfiniteReader reads src through a buffer of bufSize bytes; maxString
// is the limit on a string or a bare word, 0 for none.
func newNonfiniteReader(src io.Reader, repl [3][]byte, bufSize int, maxString int64) *nonfiniteReader {
	return &nonfiniteReader{src: src, repl: repl, maxStr: maxString, buf: make([]byte, bufSize)}
}

func (r *nonfiniteReader) Read(p []byte) (int, error) {
	for r.off == len(r.out) {
		if r.err != nil {
			return 0, r.err
		}
		r.fill()
	}
	n := copy(p, r.out[r.off:])
	r.off += n
	return n, nil
}

// fill reads from src and rewrites what it read into out.
func (r *nonfiniteReader) fill() {
	r.out, r.off = r.out[:0], 0
	n, err := r.src.Read(r.buf)
	r.rewrite(r.buf[:n])
	if err == nil || r.err != nil {
		return
	}
	if err == io.EOF {
		r.endToken()
	} else {
		r.srcErr = err
	}
	r.err = err
}

func (r *nonfiniteReader) rewrite(chunk []byte) {
	for i := 0; i < len(chunk) && r.err == nil; {
		if r.inString {
			i += r.stringBytes(chunk[i:])
			continue
		}
		c := chunk[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			r.flushWord()
			r.spaceByte(c)
		case ',', ':', '{', '}', '[', ']', '"':
			r.endToken()
			r.emit(c)
			if c == '"' {
				r.inString, r.strLen = true, 0
			}
		default:
			r.endSpace()
			r.wordByte(c)
		}
		r.inPos++
		i++
	}
}

// endToken ends the bare word or the run of white space in progress.
func (r *nonfiniteReader) endToken() {
	r.flushWord()
	r.endSpace()
}

// spaceByte passes on a byte of white space, unless the run is too long.
func (r *nonfiniteReader) spaceByte(c byte) {
	r.space++
	switch {
	case r.space <= maxSpaceRun:
		r.emit(c)
	case !r.cut:
		r.cut = true
		r.cutFrom = rewrite{inStart: r.inPos, outStart: r.outPos, outEnd: r.outPos}
	}
}

// endSpace ends a run of white space, recording the part cut.
func (r *nonfiniteReader) endSpace() {
	if r.cut {
		rw := r.cutFrom
		rw.inEnd = r.inPos
		r.rewrites = append(r.rewrites, rw)
	}
	r.space, r.cut = 0, false
}

// stringBytes copies string bytes up to and including the closing quote,
// if chunk holds it, and returns how many it copied. A string longer than
// maxStr is an error, at the byte that makes it too long.
func (r *nonfiniteReader) stringBytes(chunk []byte) int {
	i, ok := 0, true
	for i < len(chunk) && ok {
		if !r.escape && r.hex == 0 {
			// Take the run of plain bytes at once.
			j := bytes.IndexAny(chunk[i:], `"\`)
			if j < 0 {
				j = len(chunk) - i
			}
			if r.maxStr > 0 && r.strLen+int64(j) > r.maxStr {
				i += int(r.maxStr-r.strLen) + 1
				ok = false
				break
			}
			r.strLen += int64(j)
			i += j
			if i == len(chunk) {
				break
			}
			i++
			if chunk[i-1] == '"' {
				r.inString = false
				break
			}
			r.escape = true
			continue
		}
		c := chunk[i]
		i++
		switch {
		case r.hex > 0:
			r.hex--
		case c == 'u':
			r.escape, r.hex = false, 4
			r.strLen += 3 // UTF-8 takes at most 3 bytes for one UTF-16 unit
		default:
			r.escape = false
			r.strLen++
		}
		ok = r.maxStr == 0 || r.strLen <= r.maxStr
	}
	r.out = append(r.out, chunk[:i]...)
	r.outPos += int64(i)
	r.inPos += int64(i)
	if !ok {
		r.err = errorf("", "a string is longer than %d bytes (the limit MaxStringBytes), at byte %d", r.maxStr, r.inPos-1)
	}
	return i
}

// wordByte adds a byte of a bare word: a number, true, false, null, one
// of nonfiniteWords or something that is not JSON.
func (r *nonfiniteReader) wordByte(c byte) {
	r.wordLen++
	switch {
	case r.wordLen <= maxWordLen:
		r.word[r.wordLen-1] = c
		return
	case r.wordLen == maxWordLen+1:
		// Too long to be one of nonfiniteWords: pass it through.
		r.out = append(r.out, r.word[:]...)
		r.outPos += maxWordLen
	}
	r.emit(c)
	if r.maxStr > 0 && r.wordLen > r.maxStr {
		r.err = errorf("", "a number (or other bare token) is longer than %d bytes (the limit MaxStringBytes), at byte %d", r.maxStr, r.inPos)
	}
}

// flushWord ends the bare word in progress, rewriting it if it is one of
// nonfiniteWords. A word split across reads is held until it ends, so it
// is recognised all the same.
func (r *nonfiniteReader) flushWord() {
	n := r.wordLen
	r.wordLen = 0
	if n == 0 || n > maxWordLen {
		return
	}
	w := r.word[:n]
	for i, nf := range nonfiniteWords {
		if string(w) == nf {
			repl := r.repl[i]
			r.rewrites = append(r.rewrites, rewrite{
				inStart: r.inPos - n, inEnd: r.inPos,
				outStart: r.outPos, outEnd: r.outPos + int64(len(repl)),
			})
			r.out = append(r.out, repl...)
			r.outPos += int64(len(repl))
			return
		}
	}
	r.out = append(r.out, w...)
	r.outPos += n
}

func (r *nonfiniteReader) emit(c byte) {
	r.out = append(r.out, c)
	r.outPos++
}

// inputOffset maps an offset in the rewritten stream, such as the
// decoder's, to the offset in the input: offsets inside a rewritten token
// map to its start.
func (r *nonfiniteReader) inputOffset(out int64) int64 {
	last := r.base
	for _, rw := range r.rewrites[r.head:] {
		if rw.outStart > out {
			break
		}
		if out < rw.outEnd {
			return rw.inStart
		}
		last = rw
	}
	return out - (last.outEnd - last.inEnd)
}

// forget drops the rewrites that end at or before out, an offset the
// decoder has passed: no later offset will fall before it. This keeps the
// list as short as the decoder's look-ahead.
func (r *nonfiniteReader) forget(out int64) {
	for r.head < len(r.rewrites) && r.rewrites[r.head].outEnd <= out {
		r.base = r.rewrites[r.head]
		r.head++
	}
	if r.head > 0 && r.head*2 >= len(r.rewrites) {
		// Compact when most are forgotten: amortised O(1) a call.
		r.rewrites = r.rewrites[:copy(r.rewrites, r.rewrites[r.head:])]
		r.head = 0
	}
}

// rewriteForValidation returns s with nonfiniteWords replaced by 0.
func rewriteForValidation(s string) []byte {
	r := &nonfiniteReader{repl: validationReplacements, out: make([]byte, 0, len(s))}
	r.rewrite([]byte(s))
	r.endToken()
	return r.out
}
