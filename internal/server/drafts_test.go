package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/slipway-ml/slipway/internal/api/apitest"
	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/registry"
)

type draftAnswer struct {
	registry.Version
	Uploads []struct {
		Path         string `json:"path"`
		UploadURL    string `json:"upload_url"`
		PresignedURL string `json:"presigned_url"`
	} `json:"uploads"`
}

func put(t *testing.T, c *apitest.Client, path string, body io.Reader) *apitest.Response {
	t.Helper()
	return c.Do(apitest.Request{Method: "PUT", Path: path, Body: body, ContentType: "application/octet-stream"})
}

// The two-step flow through Slipway, on both stores: declare, upload each
// file (one of them large, streamed), finalize.
func TestDraftThroughSlipway(t *testing.T) {
	t.Parallel()
	for name, opt := range map[string]envOption{"filesystem": func(*testing.T, *envSetup) {}, "minio": withMinIO} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, opt)
			c := e.as(auth.RoleContributor)
			createModel(t, c, map[string]any{"name": "big"})
			const size = 48 << 20
			res := c.Send("POST", "/api/v1/models/big/versions", map[string]any{
				"framework": "onnx",
				"artifacts": []map[string]any{
					{"path": "model.onnx", "size": size, "sha256": sha(pseudo(7, size))},
					{"path": "labels.txt", "size": 3, "sha256": sha(strings.NewReader("a\nb")), "content_type": "text/plain"},
				},
			})
			if res.Status != http.StatusCreated {
				t.Fatalf("draft: %d %s", res.Status, res.Body)
			}
			var d draftAnswer
			res.Decode(t, &d)
			if d.Version.Status != "draft" || d.Version.Version != 1 || d.Version.ExpiresAt == nil || len(d.Uploads) != 2 || d.Version.Artifacts[0].Uploaded {
				t.Fatalf("draft: %+v", d)
			}
			if (d.Uploads[0].PresignedURL != "") != (name == "minio") {
				t.Errorf("presigned URL %q on %s", d.Uploads[0].PresignedURL, name)
			}
			// Not ready yet: finalize refuses, downloads refuse.
			if res := c.Send("POST", "/api/v1/models/big/versions/1/finalize", nil); res.Status != http.StatusUnprocessableEntity || !strings.Contains(string(res.Body), "not uploaded") {
				t.Errorf("finalize before uploads: %d %s", res.Status, res.Body)
			}
			if res := c.Get("/api/v1/models/big/versions/1/artifacts/labels.txt"); res.Status != http.StatusConflict {
				t.Errorf("download from a draft: %d, want 409", res.Status)
			}
			// A wrong upload is refused and leaves nothing.
			if res := put(t, c, "/api/v1/models/big/versions/1/artifacts/labels.txt", strings.NewReader("a\nc")); res.Status != http.StatusUnprocessableEntity {
				t.Errorf("upload with the wrong bytes: %d %s", res.Status, res.Body)
			}
			if res := put(t, c, "/api/v1/models/big/versions/1/artifacts/labels.txt", strings.NewReader("a\nbb")); res.Status != http.StatusUnprocessableEntity {
				t.Errorf("upload with the wrong size: %d %s", res.Status, res.Body)
			}
			if res := put(t, c, "/api/v1/models/big/versions/1/artifacts/undeclared.bin", strings.NewReader("x")); res.Status != http.StatusNotFound {
				t.Errorf("upload of an undeclared path: %d", res.Status)
			}
			if res := put(t, c, "/api/v1/models/big/versions/1/artifacts/%2e%2e%2fx", strings.NewReader("x")); res.Status != http.StatusBadRequest {
				t.Errorf("upload to an encoded traversal: %d", res.Status)
			}
			for _, u := range d.Uploads {
				body := io.Reader(strings.NewReader("a\nb"))
				if u.Path == "model.onnx" {
					body = pseudo(7, size)
				}
				if res := put(t, c, u.UploadURL, body); res.Status != 200 {
					t.Fatalf("upload %s: %d %s", u.Path, res.Status, res.Body)
				}
			}
			res = c.Send("POST", "/api/v1/models/big/versions/1/finalize", nil)
			var v registry.Version
			res.Decode(t, &v)
			if res.Status != 200 || v.Status != "ready" || v.ExpiresAt != nil || v.ReadyAt == nil {
				t.Fatalf("finalize: %d %s", res.Status, res.Body)
			}
			// Finalizing twice is harmless; ready artifacts are immutable.
			if res := c.Send("POST", "/api/v1/models/big/versions/1/finalize", nil); res.Status != 200 {
				t.Errorf("second finalize: %d", res.Status)
			}
			if res := put(t, c, "/api/v1/models/big/versions/1/artifacts/labels.txt", strings.NewReader("a\nb")); res.Status != http.StatusConflict {
				t.Errorf("upload to a ready version: %d, want 409", res.Status)
			}
			res = e.as(auth.RoleViewer).Get("/api/v1/models/big/versions/1/artifacts/model.onnx")
			if res.Status != 200 || int64(len(res.Body)) != size || sha(bytes.NewReader(res.Body)) != sha(pseudo(7, size)) {
				t.Errorf("download after finalize: %d, %d bytes", res.Status, len(res.Body))
			}
		})
	}
}

// Uploads to presigned URLs go around Slipway. The URL is signed with the
// declared SHA-256, so the store itself refuses other bytes, before and
// after finalize; finalize reads the object back all the same.
func TestDraftPresignedUploads(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withMinIO)
	c := e.as(auth.RoleContributor)
	createModel(t, c, map[string]any{"name": "direct"})
	res := c.Send("POST", "/api/v1/models/direct/versions", map[string]any{
		"artifacts": []map[string]any{{"path": "w.bin", "size": 5, "sha256": sha(strings.NewReader("right"))}},
	})
	var d struct {
		Uploads []struct {
			PresignedURL     string            `json:"presigned_url"`
			PresignedHeaders map[string]string `json:"presigned_headers"`
		} `json:"uploads"`
	}
	res.Decode(t, &d)
	if res.Status != 201 || d.Uploads[0].PresignedURL == "" || d.Uploads[0].PresignedHeaders["X-Amz-Checksum-Sha256"] == "" {
		t.Fatalf("draft: %d %s", res.Status, res.Body)
	}
	presignedPut := func(body string, withHeaders bool) int {
		req, _ := http.NewRequest("PUT", d.Uploads[0].PresignedURL, strings.NewReader(body))
		if withHeaders {
			for k, v := range d.Uploads[0].PresignedHeaders {
				req.Header.Set(k, v)
			}
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	if code := presignedPut("right", false); code == 200 {
		t.Error("a presigned PUT without its signed headers was accepted")
	}
	if code := presignedPut("wrong", true); code == 200 {
		t.Error("a presigned PUT of other bytes (same size) was accepted")
	}
	if code := presignedPut("right", true); code != 200 {
		t.Fatalf("presigned PUT: %d", code)
	}
	if res := c.Send("POST", "/api/v1/models/direct/versions/1/finalize", nil); res.Status != 200 {
		t.Fatalf("finalize: %d %s", res.Status, res.Body)
	}
	// After finalize the URL still cannot change the bytes.
	if code := presignedPut("WRONG", true); code == 200 {
		t.Error("the presigned URL replaced a ready artifact")
	}
	// Serving layers may fetch from the bucket.
	var p struct{ URL string }
	e.as(auth.RoleViewer).Get("/api/v1/models/direct/versions/1/artifacts/w.bin?presigned=true").Decode(t, &p)
	r, err := http.Get(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if string(body) != "right" {
		t.Errorf("presigned download: %d %q", r.StatusCode, body)
	}
}

// Should bytes reach the bucket some other way, finalize reads them back
// and refuses a mismatch; the draft stays a draft.
func TestFinalizeReadsBackUnverifiedObjects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	createModel(t, c, map[string]any{"name": "m"})
	c.Send("POST", "/api/v1/models/m/versions", map[string]any{
		"artifacts": []map[string]any{{"path": "w.bin", "size": 5, "sha256": sha(strings.NewReader("right"))}},
	})
	var key string // the draft's only object
	e.db.Pool.QueryRow(context.Background(), `SELECT object_key FROM model_artifacts`).Scan(&key)
	if _, err := e.store.Put(context.Background(), key, strings.NewReader("wrong"), blob.PutOptions{Size: 5}); err != nil {
		t.Fatal(err)
	}
	res := c.Send("POST", "/api/v1/models/m/versions/1/finalize", nil)
	if res.Status != http.StatusUnprocessableEntity || !strings.Contains(string(res.Body), "sha256 of the upload") {
		t.Fatalf("finalize of other bytes: %d %s", res.Status, res.Body)
	}
	var v registry.Version
	c.Get("/api/v1/models/m/versions/1").Decode(t, &v)
	if v.Status != "draft" {
		t.Errorf("after a refused finalize the version is %s, want draft", v.Status)
	}
}

func TestDraftValidationAndExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	createModel(t, c, map[string]any{"name": "m"})
	ok := map[string]any{"path": "a.bin", "size": 1, "sha256": strings.Repeat("a", 64)}
	for _, body := range []map[string]any{
		{},
		{"artifacts": []map[string]any{}},
		{"artifacts": []map[string]any{{"path": "../x", "size": 1, "sha256": strings.Repeat("a", 64)}}},
		{"artifacts": []map[string]any{{"path": "a", "size": -1, "sha256": strings.Repeat("a", 64)}}},
		{"artifacts": []map[string]any{{"path": "a", "size": 1, "sha256": "ABC"}}},
		{"artifacts": []map[string]any{ok, ok}},
		{"artifacts": []map[string]any{ok}, "kind": "zip"},
	} {
		if res := c.Send("POST", "/api/v1/models/m/versions", body); res.Status != 400 {
			t.Errorf("%v: %d %s, want 400", body, res.Status, res.Body)
		}
	}
	if res := c.Send("POST", "/api/v1/models/m/versions", map[string]any{"artifacts": []map[string]any{ok}}); res.Status != 201 {
		t.Fatalf("draft: %d %s", res.Status, res.Body)
	}
	put(t, c, "/api/v1/models/m/versions/1/artifacts/a.bin", strings.NewReader("?"))
	// Expire it: the reaper deletes the draft row, then its objects.
	if _, err := e.db.Pool.Exec(context.Background(), `UPDATE model_versions SET expires_at = now() - interval '1 minute'`); err != nil {
		t.Fatal(err)
	}
	if res := c.Send("POST", "/api/v1/models/m/versions/1/finalize", nil); res.Status != http.StatusConflict {
		t.Errorf("finalize of an expired draft: %d, want 409", res.Status)
	}
	reg := registry.NewService(e.db.Pool, e.store)
	if _, err := reg.ReapOrphans(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if res := c.Get("/api/v1/models/m/versions/1"); res.Status != 404 {
		t.Errorf("expired draft after reaping: %d, want 404", res.Status)
	}
	var left []string
	e.store.List(context.Background(), "", func(i blob.Info) error { left = append(left, i.Key); return nil })
	if len(left) != 0 {
		t.Errorf("objects of the expired draft left: %v", left)
	}
	// Its number is not reused.
	res := register(c, "m", `{}`, file{"x", strings.NewReader("x")})
	var v registry.Version
	res.Decode(t, &v)
	if v.Version != 2 {
		t.Errorf("next version = %d, want 2 (numbers are never reused)", v.Version)
	}
	var audit struct {
		Items []struct{ Action, Actor string }
	}
	e.as(auth.RoleAdmin).Get("/api/v1/audit?action=version.draft.expire").Decode(t, &audit)
	if len(audit.Items) != 1 || audit.Items[0].Actor != "system" {
		t.Errorf("expiry audit: %+v", audit.Items)
	}
}

func TestDraftOnThePages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	createModel(t, c, map[string]any{"name": "m"})
	c.Send("POST", "/api/v1/models/m/versions", map[string]any{"artifacts": []map[string]any{
		{"path": "a.bin", "size": 1, "sha256": sha(strings.NewReader("a"))},
		{"path": "b.bin", "size": 1, "sha256": sha(strings.NewReader("b"))},
	}})
	put(t, c, "/api/v1/models/m/versions/1/artifacts/a.bin", strings.NewReader("a"))
	b := e.browser()
	b.login(userOf(auth.RoleViewer), testPassword)
	doc := htmlDoc(t, b.do("GET", "/models/m", nil, nil))
	if !strings.Contains(doc.Find(`[data-testid=version-1]`).Text(), "draft") {
		t.Error("the versions table does not mark the draft")
	}
	doc = htmlDoc(t, b.do("GET", "/models/m/versions/1", nil, nil))
	if doc.Find(`[data-testid=version-status]`).Text() != "draft" || doc.Find(`[data-testid=draft-note]`).Length() != 1 {
		t.Error("the version page does not say it is a draft")
	}
	if n := doc.Find(`a[download]`).Length(); n != 0 {
		t.Errorf("a draft's page offers %d downloads", n)
	}
	if got := doc.Find(`[data-testid="artifact-a.bin"]`).Text(); !strings.Contains(got, "uploaded") {
		t.Errorf("a.bin row: %q", got)
	}
	if got := doc.Find(`[data-testid="artifact-b.bin"]`).Text(); !strings.Contains(got, "waiting") {
		t.Errorf("b.bin row: %q", got)
	}
}
