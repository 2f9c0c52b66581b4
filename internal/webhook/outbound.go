package webhook

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/slipway-ml/slipway/internal/errs"
)

// AddressPolicy decides which addresses deliveries may connect to. It is
// checked when a connection is made, on the address DNS gave, not only
// when an endpoint is registered: a name that later resolves to a
// metadata service is refused all the same.
type AddressPolicy struct {
	// AllowPrivate lets deliveries reach loopback and private networks
	// (RFC 1918, fc00::/7, 100.64.0.0/10): where a self-hosted serving
	// layer often lives. Off by default.
	AllowPrivate bool
	// Allow lists networks always allowed (after Deny); Deny networks
	// always refused.
	Allow, Deny []netip.Prefix
}

var (
	metadataV6 = netip.MustParseAddr("fd00:ec2::254")
	cgnat      = netip.MustParsePrefix("100.64.0.0/10")
)

// ErrAddressRefused is the failure of a connection the policy refused.
var ErrAddressRefused = errors.New("address refused by the webhook address policy")

// Check says whether a connection to ip is allowed.
func (p AddressPolicy) Check(ip netip.Addr) error {
	ip = ip.Unmap()
	for _, n := range p.Deny {
		if n.Contains(ip) {
			return fmt.Errorf("%s is in the denied network %s: %w", ip, n, ErrAddressRefused)
		}
	}
	for _, n := range p.Allow {
		if n.Contains(ip) {
			return nil
		}
	}
	switch {
	case !ip.IsValid() || ip.IsUnspecified():
		return fmt.Errorf("%s is an unspecified address: %w", ip, ErrAddressRefused)
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip == metadataV6:
		return fmt.Errorf("%s is link-local or a cloud metadata address: %w", ip, ErrAddressRefused)
	case ip.IsMulticast() || ip.IsInterfaceLocalMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("%s is a multicast or broadcast address: %w", ip, ErrAddressRefused)
	case ip.IsLoopback() || ip.IsPrivate() || cgnat.Contains(ip):
		if !p.AllowPrivate {
			return fmt.Errorf("%s is a loopback or private address and SLIPWAY_WEBHOOK_ALLOW_PRIVATE is off: %w", ip, ErrAddressRefused)
		}
	}
	return nil
}

// control is the dialer's hook: it runs for each address a connection is
// attempted to, after name resolution.
func (p AddressPolicy) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%s is not an IP address: %w", host, ErrAddressRefused)
	}
	return p.Check(ip)
}

// Client returns the HTTP client of deliveries: connections checked
// against the policy, no proxy from the environment (the policy would
// check the proxy's address, not the receiver's), redirects not followed,
// each attempt bounded by timeout.
func (p AddressPolicy) Client(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: min(timeout, 10*time.Second), Control: p.control}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// ValidateURL checks an endpoint's URL when it is registered: http or
// https, a host, no credentials, and, when the host is an IP address, one
// the policy allows. Names are checked again at every connection.
func (p AddressPolicy) ValidateURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || len(raw) > 2048:
		return errs.Invalid("url", "must be an http or https URL of at most 2048 bytes")
	case u.Scheme != "http" && u.Scheme != "https":
		return errs.Invalid("url", "must start with http:// or https://")
	case u.Host == "" || u.Hostname() == "":
		return errs.Invalid("url", "must name a host")
	case u.User != nil:
		return errs.Invalid("url", "must not carry credentials: receivers check the signature instead")
	case u.Fragment != "" || strings.ContainsAny(raw, " \t\r\n"):
		return errs.Invalid("url", "must not hold a fragment or white space")
	}
	if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil {
		if err := p.Check(ip); err != nil {
			return errs.Invalid("url", "%v", err)
		}
	}
	return nil
}

// DefaultSchedule is the wait before each retry: from seconds to hours,
// about 3 days in all before a message is given up.
var DefaultSchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
	10 * time.Hour, 10 * time.Hour, 10 * time.Hour, 10 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// backoff is the wait before retry n (from 1) with ±20% jitter, so that
// the retries of many messages do not arrive together; ok is false when
// the schedule is spent.
func backoff(schedule []time.Duration, n int, rng *rand.Rand) (time.Duration, bool) {
	if n < 1 || n > len(schedule) {
		return 0, false
	}
	d := schedule[n-1]
	jitter := time.Duration((rng.Float64()*0.4 - 0.2) * float64(d))
	return d + jitter, true
}

// retryAfter reads a Retry-After header (seconds or an HTTP date),
// bounded to a day; 0 when absent or unreadable.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	var d time.Duration
	if secs, err := time.ParseDuration(strings.TrimSpace(h) + "s"); err == nil && secs >= 0 {
		d = secs
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, 24*time.Hour))
}
