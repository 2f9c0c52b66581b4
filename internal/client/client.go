// Package client is a Go client of Slipway's public REST API, for
// pipelines and for the slipway binary's CI commands (register, report,
// promote). It speaks HTTP to /api/v1 with a bearer token and nothing
// else: whatever it does, a curl script can do too.
//
// Uploads stream: an artifact or a report is read from its source while it
// is sent, never held in memory. Requests that are safe to send again (GETs,
// and POSTs sent with an Idempotency-Key) are retried after a network
// failure or a 502/503/504, reopening what they upload.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls one Slipway server with one API token. It is safe for
// concurrent use.
type Client struct {
	base  string // scheme://host[/prefix], no trailing slash
	token string
	// HTTP sends the requests. It has no overall timeout, since uploads
	// and downloads of large files take as long as they take: bound calls
	// with their context.
	HTTP *http.Client
	// UserAgent is sent with every request.
	UserAgent string
	// Attempts is how many times a request that is safe to repeat is sent
	// before its failure is returned (default 4).
	Attempts int
	// Backoff is the wait before the first retry, doubled before each
	// next one, up to 15 s (default 1 s).
	Backoff time.Duration
}

// New returns a client of the server at baseURL (e.g.
// https://slipway.example.com, or with a path prefix when Slipway is served
// under one) that authenticates with token.
func New(baseURL, token string) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%q is not the URL of a Slipway server: want http(s)://host[:port], e.g. http://localhost:8080", baseURL)
	}
	if token == "" {
		return nil, errors.New("no API token")
	}
	return &Client{
		base:      strings.TrimRight(u.String(), "/"),
		token:     token,
		HTTP:      &http.Client{},
		UserAgent: "slipway-client",
		Attempts:  4,
		Backoff:   time.Second,
	}, nil
}

// BaseURL is the server's URL, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// Error is an error answered by Slipway: its status, the stable code and
// the message of the API's error body, the fields at fault, and the request
// id that finds the request in Slipway's log.
type Error struct {
	Method     string
	Path       string
	StatusCode int
	// Code is the API's error code (invalid_argument, unauthenticated,
	// unprocessable, …); "" when the answer was not Slipway's JSON (a
	// proxy's error page, say).
	Code      string
	Message   string
	Details   []FieldError
	RequestID string
}

// FieldError is one field at fault in a request.
type FieldError struct {
	Field string `json:"field"`
	Rule  string `json:"rule"`
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d", e.Method, e.Path, e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request id %s)", e.RequestID)
	}
	return b.String()
}

// StatusCode is the HTTP status of err when Slipway answered it, else 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// Body is something to upload: Open is called once per attempt, so a
// retried request sends it again from the start.
type Body struct {
	Open func() (io.ReadCloser, error)
	// Size is the length in bytes, -1 when unknown.
	Size int64
}

// BytesBody is a Body of b.
func BytesBody(b []byte) Body {
	return Body{Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, Size: int64(len(b))}
}

// NewIdempotencyKey returns a random Idempotency-Key.
func NewIdempotencyKey() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// request is one API call.
type request struct {
	method string
	path   string // escaped, from /api/v1
	query  url.Values
	// contentType is a function when it depends on the attempt (a
	// multipart boundary); otherwise ct.
	ct   string
	body *Body
	// idempotencyKey makes a POST safe to send again.
	idempotencyKey string
}

func (r request) repeatable() bool { return r.method == http.MethodGet || r.idempotencyKey != "" }

// send sends r, again after a transient failure when that is safe, and
// returns a 2xx response, whose body the caller closes, or an error (an
// *Error when Slipway answered).
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	attempts := c.Attempts
	if attempts < 1 || !r.repeatable() {
		attempts = 1
	}
	wait := c.Backoff
	for attempt := 1; ; attempt++ {
		res, err := c.once(ctx, r)
		if err == nil && res.StatusCode < 300 {
			return res, nil
		}
		if err == nil {
			err = readError(r, res)
		}
		if attempt >= attempts || ctx.Err() != nil || !transient(err) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, 15*time.Second)
	}
}

// transient tells failures that another attempt may not meet: the network,
// a proxy or Slipway's dependencies, or the first attempt of an idempotent
// request still running on the server.
func transient(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return true // no answer at all
	}
	switch e.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	case http.StatusConflict:
		return strings.Contains(e.Message, "Idempotency-Key") && strings.Contains(e.Message, "still running")
	}
	return false
}

func (c *Client) once(ctx context.Context, r request) (*http.Response, error) {
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.ReadCloser
	if r.body != nil {
		var err error
		if body, err = r.body.Open(); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, err
	}
	switch {
	case r.body == nil:
	case r.body.Size > 0:
		req.ContentLength = r.body.Size
	case r.body.Size == 0:
		body.Close()
		req.Body = http.NoBody
	default:
		req.ContentLength = 0 // with a body: unknown length, sent chunked
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	if r.ct != "" {
		req.Header.Set("Content-Type", r.ct)
	}
	if r.idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", r.idempotencyKey)
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, c.base+r.path, unwrapURLError(err))
	}
	return res, nil
}

// unwrapURLError drops url.Error's repetition of the method and URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// readError reads an error answer into an *Error and closes it.
func readError(r request, res *http.Response) error {
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	e := &Error{Method: r.method, Path: r.path, StatusCode: res.StatusCode, RequestID: res.Header.Get("X-Request-Id")}
	var body struct {
		Error struct {
			Code    string       `json:"code"`
			Message string       `json:"message"`
			Details []FieldError `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message, e.Details = body.Error.Code, body.Error.Message, body.Error.Details
		return e
	}
	// Not Slipway's answer: a proxy, or a URL that is not Slipway's.
	e.Message = http.StatusText(res.StatusCode)
	if s := strings.TrimSpace(string(raw)); s != "" && len(s) <= 200 && !strings.ContainsAny(s, "<\n") {
		e.Message += ": " + s
	} else if s != "" {
		e.Message += " (not an answer of Slipway's API: is the URL right?)"
	}
	return e
}

// call sends r and decodes the JSON answer into out (unless nil).
func (c *Client) call(ctx context.Context, r request, out any) error {
	res, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", r.method, r.path, err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", r.method, r.path, err)
	}
	if rs, ok := out.(interface{ setRaw([]byte) }); ok {
		rs.setRaw(raw)
	}
	return nil
}

// raw keeps an answer as Slipway sent it, with the fields this package
// does not decode.
type raw struct{ json []byte }

func (r *raw) setRaw(b []byte) { r.json = b }

// JSON is the object as Slipway answered it.
func (r *raw) JSON() json.RawMessage { return r.json }

// jsonRequest is r with v as its JSON body.
func jsonRequest(method, path string, v any) (request, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return request{}, err
	}
	body := BytesBody(b)
	return request{method: method, path: path, ct: "application/json", body: &body}, nil
}

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }
