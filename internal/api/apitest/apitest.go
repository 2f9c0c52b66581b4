// Package apitest is an HTTP client for tests that checks every response of
// the API against the OpenAPI document: an undocumented path or status, or
// a body that does not match its schema, fails the test. It keeps the
// document true.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/slipway-ml/slipway/internal/api"
)

// Client calls a Slipway under test.
type Client struct {
	t      testing.TB
	base   string
	router routers.Router
	HTTP   *http.Client
	// Token is sent as a bearer token when set.
	Token string
}

// New returns a client for the server at base (e.g. an httptest URL).
func New(t testing.TB, base string, doc *api.Document) *Client {
	t.Helper()
	spec := *doc.Spec // shallow copy: only the servers differ
	spec.Servers = openapi3.Servers{{URL: base}}
	router, err := gorillamux.NewRouter(&spec)
	if err != nil {
		t.Fatalf("openapi router: %v", err)
	}
	return &Client{t: t, base: base, router: router, HTTP: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// WithToken returns a copy of c that sends token.
func (c *Client) WithToken(token string) *Client {
	cc := *c
	cc.Token = token
	return &cc
}

// Response is a fully read response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode unmarshals the body into v.
func (r *Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// ErrorCode is the error.code of an error body, "" if there is none.
func (r *Response) ErrorCode() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

// Request describes one call.
type Request struct {
	Method string
	Path   string // with query string
	// Body: []byte or string are sent as is, anything else as JSON.
	Body        any
	ContentType string // default application/json when Body is set
	Header      http.Header
}

// Do sends r and validates the response against the document.
func (c *Client) Do(r Request) *Response {
	c.t.Helper()
	var body io.Reader
	ct := r.ContentType
	switch b := r.Body.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(b)
	case string:
		body = strings.NewReader(b)
	case io.Reader:
		body = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatalf("marshal request: %v", err)
		}
		body = bytes.NewReader(j)
	}
	if body != nil && ct == "" {
		ct = "application/json"
	}
	req, err := http.NewRequest(r.Method, c.base+r.Path, body)
	if err != nil {
		c.t.Fatalf("new request: %v", err)
	}
	for k, vs := range r.Header {
		req.Header[k] = vs
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if c.Token != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", r.Method, r.Path, err)
	}
	resp := &Response{Status: res.StatusCode, Header: res.Header, Body: b}
	c.validate(req, resp)
	return resp
}

// Get is Do for a GET.
func (c *Client) Get(path string) *Response {
	c.t.Helper()
	return c.Do(Request{Method: http.MethodGet, Path: path})
}

// Send is Do with a JSON body.
func (c *Client) Send(method, path string, body any) *Response {
	c.t.Helper()
	return c.Do(Request{Method: method, Path: path, Body: body})
}

// validate checks the response against the operation the request matches.
// Responses to paths the document does not have must be 404 or 405 errors
// in the error shape (a request for an unknown endpoint).
func (c *Client) validate(req *http.Request, resp *Response) {
	c.t.Helper()
	u, _ := url.Parse(req.URL.String())
	vreq := req.Clone(context.Background())
	vreq.URL = u
	route, params, err := c.router.FindRoute(vreq)
	if err != nil {
		// An artifact path may hold '/', which a path parameter of the
		// document cannot: look it up as one escaped segment.
		if i := strings.Index(u.Path, "/artifacts/"); i >= 0 {
			alt := vreq.Clone(context.Background())
			alt.URL = &url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path[:i+len("/artifacts/")] + "x", RawQuery: u.RawQuery}
			if r2, p2, err2 := c.router.FindRoute(alt); err2 == nil {
				route, params, err = r2, p2, nil
				params["path"] = u.Path[i+len("/artifacts/"):]
			}
		}
	}
	if err != nil {
		if resp.Status == http.StatusNotFound || resp.Status == http.StatusMethodNotAllowed {
			if code := resp.ErrorCode(); code == "" {
				c.t.Errorf("%s %s: %d without an error body: %s", req.Method, req.URL.Path, resp.Status, resp.Body)
			}
			return
		}
		c.t.Errorf("%s %s answered %d but is not in the OpenAPI document: %v", req.Method, req.URL.Path, resp.Status, err)
		return
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: vreq, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status: resp.Status,
		Header: resp.Header,
		Body:   io.NopCloser(bytes.NewReader(resp.Body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true, // an undocumented status fails
			MultiError:            true,
		},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		c.t.Errorf("%s %s: response %d does not match the OpenAPI document: %v\nbody: %s", req.Method, req.URL.Path, resp.Status, err, truncate(resp.Body))
	}
}

func truncate(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}
