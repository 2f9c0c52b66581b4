package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks headers, as Slipway sends them.
const (
	headerID        = "webhook-id"        // msg_…, the same on every retry of one message
	headerTimestamp = "webhook-timestamp" // Unix seconds of this attempt
	headerSignature = "webhook-signature" // "v1,<base64>" entries separated by spaces
)

// maxBody bounds the body read before it is authenticated. Without a
// bound, anyone who can reach the port could make the receiver buffer
// gigabytes, since the signature can only be checked after reading.
//
// Slipway's payloads are thin, a few KiB, except stage.moved for a version
// with many files: each artifact takes its path (up to 1 KiB) plus about
// 0.8 KiB (presigned URL, hash, size), and a version may hold up to 1,000
// artifacts, so about 2 MiB at worst. 1 MiB would refuse such a version
// forever (413 on every retry); 4 MiB leaves a margin.
const maxBody = 4 << 20 // 4 MiB

// secretPrefix starts every Standard Webhooks secret. The rest is the HMAC
// key, base64-encoded.
const secretPrefix = "whsec_"

// decodeSecret turns "whsec_<base64>" into the HMAC key. The key is the
// decoded bytes, not the text: signing with the text is the most common
// mistake with Standard Webhooks, and it makes every signature fail.
func decodeSecret(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(secret), secretPrefix)
	if !ok {
		return nil, fmt.Errorf("the secret must start with %q (copy it whole from Slipway's answer)", secretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("the secret after %q must be base64: is it complete?", secretPrefix)
	}
	return key, nil
}

// delivery is a request that passed verification: its body is exactly what
// Slipway signed.
type delivery struct {
	id   string // webhook-id
	body []byte
}

// httpError is a refusal with the status to answer.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func fail(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// verifyRequest reads the body and authenticates the request. Nothing in a
// request may be used before this returns without error: the headers and
// the body are whatever the sender chose until the signature says Slipway
// sent them.
//
// It answers, as an *httpError:
//   - 413 for a body over maxBody;
//   - 400 for a missing header, or a timestamp that is malformed or farther
//     than tolerance from now (a replay of an old delivery, or a clock far off);
//   - 401 when no v1 signature matches.
func verifyRequest(w http.ResponseWriter, r *http.Request, key []byte, now time.Time, tolerance time.Duration) (delivery, error) {
	// Read the body first and whole: the signature covers its exact bytes,
	// so it must not be decoded, trimmed or re-encoded before checking.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return delivery{}, fail(http.StatusRequestEntityTooLarge, "body over %d bytes", maxBody)
		}
		return delivery{}, fail(http.StatusBadRequest, "reading the body: %v", err)
	}

	id := r.Header.Get(headerID)
	ts := r.Header.Get(headerTimestamp)
	sigs := r.Header.Get(headerSignature)
	for _, h := range []struct{ name, value string }{{headerID, id}, {headerTimestamp, ts}, {headerSignature, sigs}} {
		if h.value == "" {
			return delivery{}, fail(http.StatusBadRequest, "missing header %s", h.name)
		}
	}

	if err := checkTimestamp(ts, now, tolerance); err != nil {
		return delivery{}, fail(http.StatusBadRequest, "%v", err)
	}
	if !signatureMatches(key, id, ts, body, sigs) {
		return delivery{}, fail(http.StatusUnauthorized, "no valid v1 signature")
	}
	return delivery{id: id, body: body}, nil
}

// checkTimestamp refuses a timestamp farther than tolerance from now, in
// either direction. The signature covers the timestamp, so an attacker who
// recorded a genuine delivery cannot refresh it: this is what stops replays
// of old deliveries. A timestamp in the future is refused too, otherwise a
// delivery signed by a host with a fast clock could be replayed for longer.
// Slipway signs every attempt afresh, so a retry hours later still passes.
func checkTimestamp(ts string, now time.Time, tolerance time.Duration) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%s %q is not Unix seconds", headerTimestamp, ts)
	}
	// Compare in seconds: time.Unix on a huge value would overflow a
	// time.Duration in Sub.
	diff := now.Unix() - sec
	tol := int64(tolerance / time.Second)
	switch {
	case diff > tol:
		return fmt.Errorf("%s is %ds old, more than the %s tolerated", headerTimestamp, diff, tolerance)
	case diff < -tol:
		return fmt.Errorf("%s is %ds in the future, more than the %s tolerated", headerTimestamp, -diff, tolerance)
	}
	return nil
}

// signatureMatches reports whether any "v1,<base64>" entry of header is the
// HMAC-SHA256, under key, of id + "." + ts + "." + body.
//
// Any entry may match: while a secret is being rotated, Slipway signs with
// the old and the new secret, and this receiver holds only one of them.
// Entries of another version ("v1a,", "v2,", ...) are ignored, not errors:
// a future scheme can then be added next to v1 without breaking receivers.
// The comparison is hmac.Equal, in constant time, so the time taken does
// not tell an attacker how many leading bytes of a forgery were right.
func signatureMatches(key []byte, id, ts string, body []byte, header string) bool {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	want := mac.Sum(nil)

	for _, entry := range strings.Fields(header) {
		version, b64, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return true
		}
	}
	return false
}
