package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The published Standard Webhooks test vector.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

// sign computes a v1 signature the way Slipway does, independently of the
// code under test.
func sign(t *testing.T, secret, id string, ts int64, body []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, ts)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// logBuffer collects log lines; deliveries may log concurrently.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines returns the lines logged so far.
func (b *logBuffer) Lines() []string {
	return strings.Split(strings.TrimSpace(b.String()), "\n")
}

// newTestReceiver returns a receiver whose clock reads now and whose log
// goes to the returned buffer.
func newTestReceiver(t *testing.T, secret string, now time.Time, stages ...string) (*Receiver, *logBuffer) {
	t.Helper()
	if len(stages) == 0 {
		stages = []string{"production"}
	}
	logs := &logBuffer{}
	rc, err := NewReceiver(Options{
		Secret:          secret,
		Dir:             t.TempDir(),
		Stages:          stages,
		Tolerance:       5 * time.Minute,
		DownloadTimeout: 10 * time.Second,
		Logger:          log.New(logs, "", 0),
		Now:             func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return rc, logs
}

// deliver posts body with the given headers (an empty value omits the
// header) to rc and returns the recorded answer.
func deliver(rc http.Handler, id, ts, sig string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, hookPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for name, v := range map[string]string{headerID: id, headerTimestamp: ts, headerSignature: sig} {
		if v != "" {
			req.Header.Set(name, v)
		}
	}
	w := httptest.NewRecorder()
	rc.ServeHTTP(w, req)
	return w
}

func TestPublishedVectorVerifies(t *testing.T) {
	key, err := decodeSecret(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	if !signatureMatches(key, vectorID, strconv.Itoa(vectorTimestamp), []byte(vectorBody), vectorSignature) {
		t.Fatal("the published vector does not verify")
	}
	// Our independent signer agrees with the vector, so the other tests'
	// signatures mean something.
	if got := sign(t, vectorSecret, vectorID, vectorTimestamp, []byte(vectorBody)); got != vectorSignature {
		t.Fatalf("sign = %s, want %s", got, vectorSignature)
	}

	// Through the handler, with the clock at the vector's time. The body
	// is no Slipway event: it is logged and acknowledged.
	rc, logs := newTestReceiver(t, vectorSecret, time.Unix(vectorTimestamp, 0))
	w := deliver(rc, vectorID, strconv.Itoa(vectorTimestamp), vectorSignature, []byte(vectorBody))
	if w.Code != http.StatusNoContent {
		t.Fatalf("status %d (%s), want 204; log:\n%s", w.Code, w.Body, logs)
	}
}

func TestRejections(t *testing.T) {
	ts := int64(vectorTimestamp)
	at := func(d time.Duration) time.Time { return time.Unix(ts, 0).Add(d) }
	otherSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("the secret of another endpoint"))
	sigB64 := strings.TrimPrefix(vectorSignature, "v1,")
	tsText := strconv.FormatInt(ts, 10)

	tests := []struct {
		name   string
		secret string    // the receiver's; default the vector's
		now    time.Time // the receiver's clock; default the vector's time
		id     string
		ts     string
		sig    string
		body   string
		want   int
	}{
		{name: "valid", want: 204},
		{name: "5 minutes old is still fine", now: at(5 * time.Minute), want: 204},
		{name: "5 minutes ahead is still fine", now: at(-5 * time.Minute), want: 204},
		{name: "stale timestamp", now: at(5*time.Minute + time.Second), want: 400},
		{name: "much older timestamp", now: at(24 * time.Hour), want: 400},
		{name: "future timestamp", now: at(-5*time.Minute - time.Second), want: 400},
		{name: "timestamp not a number", ts: "2021-02-25T15:02:10Z", want: 400},
		{name: "wrong secret", secret: otherSecret, want: 401},
		{name: "body changed by one byte", body: `{"test": 2432232315}`, want: 401},
		{name: "body with a trailing newline", body: vectorBody + "\n", want: 401},
		{name: "id changed", id: "msg_p5jXN8AQM9LWM0D4loKWxJeK", want: 401},
		{name: "timestamp changed within tolerance", ts: strconv.FormatInt(ts+1, 10), want: 401},
		{name: "missing webhook-id", id: "-", want: 400},
		{name: "missing webhook-timestamp", ts: "-", want: 400},
		{name: "missing webhook-signature", sig: "-", want: 400},
		{name: "v2 prefix only", sig: "v2," + sigB64, want: 401},
		{name: "no prefix", sig: sigB64, want: 401},
		{name: "not base64", sig: "v1,not*base64", want: 401},
		{name: "two signatures, second valid", sig: "v1,bm90IHRoZSBzaWduYXR1cmU= " + vectorSignature, want: 204},
		{name: "two signatures, first valid", sig: vectorSignature + " v1,bm90IHRoZSBzaWduYXR1cmU=", want: 204},
		{name: "unknown version next to a valid one", sig: "v1a,whatever " + vectorSignature, want: 204},
		{name: "two invalid signatures", sig: "v1,bm90IHRoZSBzaWduYXR1cmU= v1,YWxzbyBub3Q=", want: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret, now := or(tt.secret, vectorSecret), tt.now
			if now.IsZero() {
				now = at(0)
			}
			id, tsv, sig := or(tt.id, vectorID), or(tt.ts, tsText), or(tt.sig, vectorSignature)
			for _, p := range []*string{&id, &tsv, &sig} {
				if *p == "-" {
					*p = "" // omitted
				}
			}
			rc, logs := newTestReceiver(t, secret, now)
			w := deliver(rc, id, tsv, sig, []byte(or(tt.body, vectorBody)))
			if w.Code != tt.want {
				t.Fatalf("status %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), tt.want)
			}
			if tt.want >= 400 && !strings.Contains(logs.String(), "refused a delivery") {
				t.Errorf("the refusal is not logged:\n%s", logs)
			}
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	now := time.Unix(vectorTimestamp, 0)
	rc, _ := newTestReceiver(t, vectorSecret, now)
	body := append([]byte(`{"type":"webhook.test","pad":"`), bytes.Repeat([]byte("x"), maxBody)...)
	body = append(body, `"}`...)
	w := deliver(rc, "msg_big", strconv.FormatInt(now.Unix(), 10), sign(t, vectorSecret, "msg_big", now.Unix(), body), body)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", w.Code)
	}
}

// A refused delivery must not be remembered as processed: otherwise anyone
// could send a forged request with an id Slipway is about to use and make
// the genuine one a "duplicate".
func TestRefusedDeliveryIsNotRemembered(t *testing.T) {
	rc, logs := newTestReceiver(t, vectorSecret, time.Unix(vectorTimestamp, 0))
	ts := strconv.Itoa(vectorTimestamp)
	if w := deliver(rc, vectorID, ts, "v1,Zm9yZ2Vk", []byte(vectorBody)); w.Code != 401 {
		t.Fatalf("forged: status %d, want 401", w.Code)
	}
	if w := deliver(rc, vectorID, ts, vectorSignature, []byte(vectorBody)); w.Code != 204 {
		t.Fatalf("genuine: status %d, want 204", w.Code)
	}
	if strings.Contains(logs.String(), "duplicate") {
		t.Fatalf("the genuine delivery was taken for a duplicate:\n%s", logs)
	}
}

func TestDecodeSecret(t *testing.T) {
	for _, s := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not base64!", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS"} {
		if _, err := decodeSecret(s); err == nil {
			t.Errorf("decodeSecret(%q) accepted", s)
		}
	}
	key, err := decodeSecret(vectorSecret)
	if err != nil || len(key) != 24 {
		t.Fatalf("decodeSecret(vector) = %d bytes, %v; want 24 bytes", len(key), err)
	}
}
