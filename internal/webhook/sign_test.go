package webhook

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The published vector of the Standard Webhooks specification
// (../shared/samples/standard-webhooks-vector.md).
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignPublishedVector(t *testing.T) {
	got, err := Sign(vectorID, vectorTimestamp, []byte(vectorBody), vectorSecret)
	if err != nil || got != vectorSignature {
		t.Fatalf("Sign = %q, %v; want %q", got, err, vectorSignature)
	}
}

// An independent implementation (the specification's own Go library)
// verifies what Slipway signs, with one secret and with two (a rotation),
// and refuses a changed body and another secret.
func TestSignVerifiedByStandardWebhooksLibrary(t *testing.T) {
	now := time.Now()
	body := []byte(`{"type":"stage.moved","data":{"model":"m","version":2}}`)
	old, cur := NewSecret(), NewSecret()
	if !strings.HasPrefix(cur, SecretPrefix) {
		t.Fatalf("secret %q lacks the prefix", cur)
	}
	if key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(cur, SecretPrefix)); len(key) < 24 {
		t.Fatalf("secret key of %d bytes, want at least 24", len(key))
	}
	sig, err := Sign("msg_1", now.Unix(), body, cur, old)
	if err != nil || strings.Count(sig, "v1,") != 2 {
		t.Fatalf("rotation signature %q, %v", sig, err)
	}
	headers := func(sig string) http.Header {
		h := http.Header{}
		h.Set("webhook-id", "msg_1")
		h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		h.Set("webhook-signature", sig)
		return h
	}
	for _, secret := range []string{cur, old} {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(body, headers(sig)); err != nil {
			t.Errorf("the library refuses Slipway's signature: %v", err)
		}
		if err := wh.Verify(append(bytes.Clone(body), ' '), headers(sig)); err == nil {
			t.Error("the library accepted a changed body")
		}
	}
	other, _ := standardwebhooks.NewWebhook(NewSecret())
	if err := other.Verify(body, headers(sig)); err == nil {
		t.Error("another secret verified the signature")
	}
}

func TestSealer(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	secret := NewSecret()
	sealed := s.Seal(secret)
	if bytes.Contains(sealed, []byte(secret)) || bytes.Contains(sealed, []byte(strings.TrimPrefix(secret, SecretPrefix))) {
		t.Fatal("the sealed secret holds the secret in clear")
	}
	if got, err := s.Open(sealed); err != nil || got != secret {
		t.Fatalf("Open = %q, %v", got, err)
	}
	other, _ := NewSealer(bytes.Repeat([]byte{8}, 32))
	if _, err := other.Open(sealed); err == nil {
		t.Error("another key opened the secret")
	}
	if _, err := NewSealer(key[:16]); err == nil {
		t.Error("a 16-byte key was accepted")
	}
}

func TestAddressPolicy(t *testing.T) {
	closed := AddressPolicy{}
	open := AddressPolicy{AllowPrivate: true}
	custom := AddressPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24")}, Deny: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}
	for _, c := range []struct {
		ip             string
		closed, open   bool
		custom, reason string
	}{
		{"169.254.169.254", false, false, "refused", "the cloud metadata service"},
		{"fd00:ec2::254", false, false, "refused", "the IPv6 metadata service"},
		{"::ffff:169.254.169.254", false, false, "refused", "metadata, IPv4-mapped"},
		{"0.0.0.0", false, false, "refused", "unspecified"},
		{"::", false, false, "refused", "unspecified v6"},
		{"fe80::1", false, false, "refused", "link-local v6"},
		{"224.0.0.1", false, false, "refused", "multicast"},
		{"127.0.0.1", false, true, "refused", "loopback"},
		{"::1", false, true, "refused", "loopback v6"},
		{"10.0.0.5", false, true, "refused", "private"},
		{"10.1.2.3", false, true, "allowed", "private, but in the allow list"},
		{"192.168.1.1", false, true, "refused", "private"},
		{"100.64.1.1", false, true, "refused", "carrier-grade NAT"},
		{"8.8.8.8", true, true, "allowed", "public"},
		{"203.0.113.7", true, true, "refused", "public, in the deny list"},
	} {
		ip := netip.MustParseAddr(c.ip)
		if got := closed.Check(ip) == nil; got != c.closed {
			t.Errorf("%s (%s), default policy: allowed %v", c.ip, c.reason, got)
		}
		if got := open.Check(ip) == nil; got != c.open {
			t.Errorf("%s (%s), private allowed: allowed %v", c.ip, c.reason, got)
		}
		if got := custom.Check(ip) == nil; got != (c.custom == "allowed") {
			t.Errorf("%s (%s), custom lists: allowed %v", c.ip, c.reason, got)
		}
	}
}

func TestValidateURL(t *testing.T) {
	p := AddressPolicy{}
	for _, bad := range []string{"ftp://x", "file:///etc/passwd", "http://", "https://user:pw@example.com/h", "http://169.254.169.254/latest",
		"http://[fd00:ec2::254]/", "http://127.0.0.1:8080/h", "http://exa mple.com", "https://example.com/#frag", "javascript:alert(1)"} {
		if err := p.ValidateURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, good := range []string{"https://serving.example.com/hooks", "http://model-loader.internal:8091/hooks?team=recs"} {
		if err := p.ValidateURL(good); err != nil {
			t.Errorf("%q refused: %v", good, err)
		}
	}
	if err := (AddressPolicy{AllowPrivate: true}).ValidateURL("http://127.0.0.1:8091/hooks"); err != nil {
		t.Errorf("loopback refused with private allowed: %v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{"": 0, "120": 2 * time.Minute, "junk": 0, "-5": 0, "999999": 24 * time.Hour,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second} {
		if got := retryAfter(h, now); got != want {
			t.Errorf("Retry-After %q = %v, want %v", h, got, want)
		}
	}
}
