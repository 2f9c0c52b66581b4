package server_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/slipway-ml/slipway/internal/api/apitest"
	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/registry"
)

func withKey(key string) http.Header { return http.Header{"Idempotency-Key": {key}} }

func TestIdempotentJSONPost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	post := func(key string, body map[string]any) *apitest.Response {
		return c.Do(apitest.Request{Method: "POST", Path: "/api/v1/models", Body: body, Header: withKey(key)})
	}
	first := post("k-1", map[string]any{"name": "once", "owner": "a"})
	again := post("k-1", map[string]any{"name": "once", "owner": "a"})
	if first.Status != 201 || again.Status != 201 || string(first.Body) != string(again.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d %s / %d %s (replayed %q)", first.Status, first.Body, again.Status, again.Body, again.Header.Get("Idempotent-Replayed"))
	}
	if again.Header.Get("Location") != "/api/v1/models/once" || again.Header.Get("ETag") != `"1"` {
		t.Errorf("replayed headers: %v", again.Header)
	}
	if res := post("k-1", map[string]any{"name": "once", "owner": "b"}); res.Status != http.StatusUnprocessableEntity {
		t.Errorf("same key, other body: %d %s, want 422", res.Status, res.Body)
	}
	// Without a key, the same request is a second attempt: 409.
	if res := c.Send("POST", "/api/v1/models", map[string]any{"name": "once", "owner": "a"}); res.Status != http.StatusConflict {
		t.Errorf("no key: %d, want 409", res.Status)
	}
	// An error answer is kept too (it is the answer to that request).
	bad := post("k-2", map[string]any{"name": "Bad"})
	if again := post("k-2", map[string]any{"name": "Bad"}); bad.Status != 400 || again.Status != 400 || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("kept 400: %d / %d", bad.Status, again.Status)
	}
	// Keys are per user.
	if res := e.as(auth.RoleAdmin).Do(apitest.Request{Method: "POST", Path: "/api/v1/models", Body: map[string]any{"name": "twice"}, Header: withKey("k-1")}); res.Status != 201 {
		t.Errorf("another user's same key: %d %s", res.Status, res.Body)
	}
	for _, k := range []string{strings.Repeat("x", 256), "has space"} {
		if res := post(k, map[string]any{"name": "x"}); res.Status != 400 {
			t.Errorf("key %.20q: %d, want 400", k, res.Status)
		}
	}
	if res := c.Do(apitest.Request{Method: "POST", Path: "/api/v1/tokens", Body: map[string]any{"name": "t"}, Header: withKey("k-3")}); res.Status != 400 {
		t.Errorf("a key on token creation: %d, want 400 (the secret is not kept)", res.Status)
	}
	// Concurrent retries with one key: one model, every answer 201 or 409.
	var wg sync.WaitGroup
	codes := make([]int, 6)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = post("k-race", map[string]any{"name": "raced"}).Status
		}()
	}
	wg.Wait()
	for _, code := range codes {
		if code != 201 && code != 409 {
			t.Errorf("concurrent retry got %d (%v)", code, codes)
		}
	}
	var list struct{ Items []registry.Model }
	c.Get("/api/v1/models?q=raced").Decode(t, &list)
	if len(list.Items) != 1 {
		t.Errorf("%d models after concurrent retries, want 1", len(list.Items))
	}
}

// Retrying an upload with the same key gives the first version back, even
// though the client library picks another multipart boundary.
func TestIdempotentRegistration(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	createModel(t, c, map[string]any{"name": "m"})
	reg := func(key, content string) *apitest.Response {
		body, ct := multipartBody(`{"framework":"x"}`, file{"w.bin", strings.NewReader(content)})
		return c.Do(apitest.Request{Method: "POST", Path: "/api/v1/models/m/versions", Body: body, ContentType: ct, Header: withKey(key)})
	}
	first, again := reg("up-1", "weights"), reg("up-1", "weights")
	if first.Status != 201 || again.Status != 201 || string(first.Body) != string(again.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d / %d %s", first.Status, again.Status, again.Body)
	}
	if res := reg("up-1", "other weights"); res.Status != http.StatusUnprocessableEntity {
		t.Errorf("same key, other file: %d, want 422", res.Status)
	}
	var page struct{ Items []registry.Version }
	c.Get("/api/v1/models/m/versions").Decode(t, &page)
	if len(page.Items) != 1 {
		t.Errorf("%d versions after a retried registration, want 1", len(page.Items))
	}
	// Drafts too.
	draft := map[string]any{"artifacts": []map[string]any{{"path": "a", "size": 1, "sha256": strings.Repeat("b", 64)}}}
	d1 := c.Do(apitest.Request{Method: "POST", Path: "/api/v1/models/m/versions", Body: draft, Header: withKey("d-1")})
	d2 := c.Do(apitest.Request{Method: "POST", Path: "/api/v1/models/m/versions", Body: draft, Header: withKey("d-1")})
	if d1.Status != 201 || d2.Status != 201 || d2.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("draft retry: %d / %d", d1.Status, d2.Status)
	}
	c.Get("/api/v1/models/m/versions").Decode(t, &page)
	if len(page.Items) != 2 {
		t.Errorf("%d versions after a retried draft, want 2", len(page.Items))
	}
	// A refused upload is not kept: its retry runs again (and is refused
	// the same way), rather than meeting a 422.
	body, ct := multipartBody(`{}`, file{"w.bin", strings.NewReader("x")})
	r1 := c.Do(apitest.Request{Method: "POST", Path: "/api/v1/models/nope/versions", Body: body, ContentType: ct, Header: withKey("up-404")})
	body, ct = multipartBody(`{}`, file{"w.bin", strings.NewReader("x")})
	r2 := c.Do(apitest.Request{Method: "POST", Path: "/api/v1/models/nope/versions", Body: body, ContentType: ct, Header: withKey("up-404")})
	if r1.Status != 404 || r2.Status != 404 {
		t.Errorf("refused upload and its retry: %d / %d, want 404 / 404", r1.Status, r2.Status)
	}
	// The same key on another path is refused.
	if res := c.Do(apitest.Request{Method: "POST", Path: "/api/v1/models", Body: map[string]any{"name": "z"}, Header: withKey("up-1")}); res.Status != http.StatusUnprocessableEntity {
		t.Errorf("key reused on another path: %d, want 422", res.Status)
	}
}
