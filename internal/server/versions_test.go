package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/slipway-ml/slipway/internal/api/apitest"
	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/registry"
)

// file is one artifact of a registration: its path and a reader of its bytes.
type file struct {
	path string
	body io.Reader
}

// multipartBody streams a registration body: metadata, then the files,
// written as they are read (nothing whole in memory).
func multipartBody(metadata string, files ...file) (io.Reader, string) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="metadata"`)
		h.Set("Content-Type", "application/json")
		w, _ := mw.CreatePart(h)
		io.WriteString(w, metadata)
		for _, f := range files {
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, f.path))
			h.Set("Content-Type", "application/octet-stream")
			w, err := mw.CreatePart(h)
			if err == nil {
				_, err = io.Copy(w, f.body)
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(mw.Close())
	}()
	return pr, mw.FormDataContentType()
}

func register(c *apitest.Client, model, metadata string, files ...file) *apitest.Response {
	body, ct := multipartBody(metadata, files...)
	return c.Do(apitest.Request{Method: "POST", Path: "/api/v1/models/" + model + "/versions", Body: body, ContentType: ct})
}

// pseudo is n reproducible pseudo-random bytes, generated as they are read.
func pseudo(seed uint64, n int64) io.Reader {
	return io.LimitReader(readerFunc(rand.New(rand.NewPCG(seed, seed)).Uint64), n)
}

type readerFunc func() uint64

func (f readerFunc) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(f())
	}
	return len(p), nil
}

func sha(r io.Reader) string {
	h := sha256.New()
	io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil))
}

func TestRegisterAndDownloadVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	createModel(t, c, map[string]any{"name": "ranker"})
	const big = 24 << 20
	meta := `{"framework":"pytorch","flavor":"torchscript","params":{"lr":0.01,"layers":[64,32]},"tags":{"stage":"exp"},
		"source":{"git_repo":"github.com/acme/ranker","git_commit":"0123abcd","git_dirty":false,"orchestrator":"metaflow","run_id":"TrainFlow/42/train/7","image":"ghcr.io/acme/train@sha256:abc"},
		"links":[{"name":"W&B run","url":"https://wandb.ai/acme/ranker/runs/x1"}]}`
	res := register(c, "ranker", meta,
		file{"weights/model.pt", pseudo(1, big)},
		file{"config.json", strings.NewReader(`{"a":1}`)},
		file{"tokenizer/vocab é.txt", pseudo(2, 1000)})
	if res.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", res.Status, res.Body)
	}
	var v registry.Version
	res.Decode(t, &v)
	if v.Version != 1 || v.Status != "ready" || v.Kind != "model" || v.CreatedBy != "contributor-user" || v.ArtifactCount != 3 || v.TotalSize != big+7+1000 {
		t.Errorf("version: %+v", v)
	}
	if res.Header.Get("Location") != "/api/v1/models/ranker/versions/1" {
		t.Errorf("Location = %q", res.Header.Get("Location"))
	}
	want := map[string]string{"weights/model.pt": sha(pseudo(1, big)), "config.json": sha(strings.NewReader(`{"a":1}`)), "tokenizer/vocab é.txt": sha(pseudo(2, 1000))}
	e.as(auth.RoleViewer).Get("/api/v1/models/ranker/versions/1").Decode(t, &v)
	if len(v.Artifacts) != 3 || v.Source.RunID != "TrainFlow/42/train/7" || len(v.Links) != 1 {
		t.Fatalf("read back: %+v", v)
	}
	for _, a := range v.Artifacts {
		if a.SHA256 != want[a.Path] {
			t.Errorf("%s: recorded sha256 %s, want %s", a.Path, a.SHA256, want[a.Path])
		}
		// Download streams the same bytes.
		res := e.as(auth.RoleViewer).Get("/api/v1/models/ranker/versions/1/artifacts/" + (&url.URL{Path: a.Path}).EscapedPath())
		if res.Status != 200 || sha(bytes.NewReader(res.Body)) != want[a.Path] || res.Header.Get("ETag") != `"`+want[a.Path]+`"` {
			t.Errorf("download %s: %d, %d bytes", a.Path, res.Status, len(res.Body))
		}
	}
	// Ranges.
	whole := make([]byte, 1000)
	io.ReadFull(pseudo(2, 1000), whole)
	for _, tc := range []struct {
		rng, contentRange string
		status            int
		body              []byte
	}{
		{"bytes=0-9", "bytes 0-9/1000", 206, whole[:10]},
		{"bytes=990-", "bytes 990-999/1000", 206, whole[990:]},
		{"bytes=-5", "bytes 995-999/1000", 206, whole[995:]},
		{"bytes=500-5000", "bytes 500-999/1000", 206, whole[500:]},
		{"bytes=0-1,5-6", "", 200, whole},
		{"bytes=1000-", "bytes */1000", 416, nil},
	} {
		res := e.as(auth.RoleViewer).Do(apitest.Request{Method: "GET", Path: "/api/v1/models/ranker/versions/1/artifacts/tokenizer/vocab%20%C3%A9.txt", Header: http.Header{"Range": {tc.rng}}})
		if res.Status != tc.status || res.Header.Get("Content-Range") != tc.contentRange || (tc.body != nil && !bytes.Equal(res.Body, tc.body)) {
			t.Errorf("Range %s: %d %q, %d bytes", tc.rng, res.Status, res.Header.Get("Content-Range"), len(res.Body))
		}
	}
	if res := e.as(auth.RoleViewer).Get("/api/v1/models/ranker/versions/1/artifacts/nope.bin"); res.Status != 404 {
		t.Errorf("missing artifact: %d", res.Status)
	}
	if res := e.as(auth.RoleViewer).Get("/api/v1/models/ranker/versions/2"); res.Status != 404 {
		t.Errorf("missing version: %d", res.Status)
	}
	if res := e.as(auth.RoleViewer).Get("/api/v1/models/ranker/versions/zero"); res.Status != 400 {
		t.Errorf("bad version number: %d", res.Status)
	}
	// Versions are listed newest first.
	register(c, "ranker", `{}`, file{"m.bin", strings.NewReader("x")})
	var page struct{ Items []registry.Version }
	e.as(auth.RoleViewer).Get("/api/v1/models/ranker/versions").Decode(t, &page)
	if len(page.Items) != 2 || page.Items[0].Version != 2 || page.Items[1].Version != 1 || page.Items[0].Artifacts != nil {
		t.Errorf("list: %+v", page.Items)
	}
}

func TestRegisterVersionRefusesBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	createModel(t, c, map[string]any{"name": "m"})
	createModel(t, c, map[string]any{"name": "old"})
	c.Do(apitest.Request{Method: "PATCH", Path: "/api/v1/models/old", Body: map[string]any{"archived": true}, Header: http.Header{"If-Match": {"*"}}})
	ok := file{"ok.bin", strings.NewReader("fine")}
	for _, tc := range []struct {
		name   string
		model  string
		meta   string
		files  []file
		status int
	}{
		{"traversal ../x", "m", `{}`, []file{ok, {"../x", strings.NewReader("x")}}, 400},
		{"traversal a/../../x", "m", `{}`, []file{{"a/../../x", strings.NewReader("x")}}, 400},
		{"encoded %2e%2e%2f", "m", `{}`, []file{{"%2e%2e%2fx", strings.NewReader("x")}}, 400},
		{"double encoded", "m", `{}`, []file{{"%252e%252e%252fx", strings.NewReader("x")}}, 400},
		{"backslash", "m", `{}`, []file{{`..\x`, strings.NewReader("x")}}, 400},
		{"absolute", "m", `{}`, []file{{"/etc/passwd", strings.NewReader("x")}}, 400},
		{"NUL", "m", `{}`, []file{{"a\x00b", strings.NewReader("x")}}, 400},
		{"empty segment", "m", `{}`, []file{{"a//b", strings.NewReader("x")}}, 400},
		{"too long", "m", `{}`, []file{{strings.Repeat("a/", 600) + "x", strings.NewReader("x")}}, 400},
		{"twice", "m", `{}`, []file{ok, {"ok.bin", strings.NewReader("x")}}, 400},
		{"file and folder", "m", `{}`, []file{{"a", strings.NewReader("x")}, {"a/b", strings.NewReader("x")}}, 400},
		{"no files", "m", `{}`, nil, 400},
		{"bad kind", "m", `{"kind":"zip"}`, []file{ok}, 400},
		{"javascript link", "m", `{"links":[{"name":"x","url":"javascript:alert(1)"}]}`, []file{ok}, 400},
		{"data link", "m", `{"links":[{"name":"x","url":"data:text/html,hi"}]}`, []file{ok}, 400},
		{"relative link", "m", `{"links":[{"name":"x","url":"/runs/1"}]}`, []file{ok}, 400},
		{"bad commit", "m", `{"source":{"git_commit":"not-hex"}}`, []file{ok}, 400},
		{"unknown field", "m", `{"colour":"red"}`, []file{ok}, 400},
		{"params not an object", "m", `{"params":[1,2]}`, []file{ok}, 400},
		{"metadata not JSON", "m", `{`, []file{ok}, 400},
		{"unknown model", "nope", `{}`, []file{ok}, 404},
		{"archived model", "old", `{}`, []file{ok}, 409},
	} {
		res := register(c, tc.model, tc.meta, tc.files...)
		if res.Status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, res.Status, res.Body, tc.status)
		}
	}
	// Metadata must come first; the body must be multipart.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "x.bin")
	fw.Write([]byte("x"))
	mw.WriteField("metadata", "{}")
	mw.Close()
	if res := c.Do(apitest.Request{Method: "POST", Path: "/api/v1/models/m/versions", Body: buf.Bytes(), ContentType: mw.FormDataContentType()}); res.Status != 400 {
		t.Errorf("metadata after a file: %d", res.Status)
	}
	if res := c.Do(apitest.Request{Method: "POST", Path: "/api/v1/models/m/versions", Body: "file", ContentType: "text/plain"}); res.Status != 415 {
		t.Errorf("text/plain body: %d, want 415", res.Status)
	}
	// Nothing was half-written: no version, no object.
	var page struct{ Items []registry.Version }
	c.Get("/api/v1/models/m/versions").Decode(t, &page)
	if len(page.Items) != 0 {
		t.Errorf("%d versions after refused registrations", len(page.Items))
	}
	var left []string
	e.store.List(context.Background(), "", func(i blob.Info) error { left = append(left, i.Key); return nil })
	if len(left) != 0 {
		t.Errorf("objects left after refused registrations: %v", left)
	}
}

func TestDownloadRefusesTraversal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	createModel(t, c, map[string]any{"name": "m"})
	if res := register(c, "m", `{}`, file{"a/b.bin", strings.NewReader("x")}); res.Status != 201 {
		t.Fatalf("register: %d", res.Status)
	}
	u, _ := url.Parse(e.url)
	for _, p := range []string{"../x", "a/../../x", "%2e%2e%2fx", "%252e%252e%252fx", "..%5cx", "a/%2E%2E/b.bin", "%2Fetc%2Fpasswd", "a%00b"} {
		// A raw request: clients would clean "../" away.
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET /api/v1/models/m/versions/1/artifacts/%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", p, u.Host, e.tokens[auth.RoleViewer])
		res, err := http.ReadResponse(bufioReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		conn.Close()
		if res.StatusCode != 400 && res.StatusCode != 404 {
			t.Errorf("download %s: %d %s, want 400", p, res.StatusCode, body)
		}
		if res.StatusCode == 404 && !strings.Contains(string(body), "no artifact") {
			t.Errorf("download %s: %d %s", p, res.StatusCode, body)
		}
	}
}

func TestConcurrentRegistrationsAreNumberedInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	createModel(t, c, map[string]any{"name": "busy"})
	const n = 50
	var wg sync.WaitGroup
	got := make([]int, n)
	codes := make([]int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := register(c, "busy", `{}`, file{"m.bin", pseudo(uint64(i), 4096)})
			codes[i] = res.Status
			var v registry.Version
			if res.Status == 201 {
				res.Decode(t, &v)
			}
			got[i] = v.Version
		}()
	}
	wg.Wait()
	seen := map[int]bool{}
	for i := range got {
		if codes[i] != 201 {
			t.Errorf("registration %d: %d", i, codes[i])
		}
		seen[got[i]] = true
	}
	for v := 1; v <= n; v++ {
		if !seen[v] {
			t.Errorf("version %d missing; got %v", v, got)
		}
	}
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

func TestVersionPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	createModel(t, c, map[string]any{"name": "ranker"})
	meta := `{"framework":"xgboost","source":{"git_repo":"github.com/acme/ranker","git_commit":"0123456789abcdef0123","git_dirty":true},
		"links":[{"name":"MLflow run","url":"https://mlflow.example/runs/9"}],"params":{"depth":6}}`
	if res := register(c, "ranker", meta, file{"model/model.json", strings.NewReader(`{"trees":[]}`)}, file{"README.md", strings.NewReader("# ranker")}); res.Status != 201 {
		t.Fatalf("register: %d %s", res.Status, res.Body)
	}
	register(c, "ranker", `{"kind":"batch_predictions"}`, file{"preds.parquet", pseudo(3, 5000)})
	b := e.browser()
	b.login(userOf(auth.RoleViewer), testPassword)

	doc := htmlDoc(t, b.do("GET", "/models/ranker", nil, nil))
	rows := doc.Find(`[data-testid=versions-table] tbody tr`)
	if rows.Length() != 2 || rows.First().AttrOr("data-testid", "") != "version-2" {
		t.Fatalf("versions table: %d rows, first %q", rows.Length(), rows.First().AttrOr("data-testid", ""))
	}
	if got := doc.Find(`[data-testid=version-1] td.mono`).Text(); got != "0123456789ab" {
		t.Errorf("short commit = %q", got)
	}

	doc = htmlDoc(t, b.do("GET", "/models/ranker/versions/1", nil, nil))
	if got := doc.Find(`[data-testid=version-title]`).Text(); got != "ranker v1" {
		t.Errorf("title = %q", got)
	}
	if !strings.Contains(doc.Find(`[data-testid=version-source]`).Text(), "dirty") {
		t.Error("the dirty flag is not shown")
	}
	link := doc.Find(`[data-testid=version-links] a`)
	if href, _ := link.Attr("href"); href != "https://mlflow.example/runs/9" || !strings.Contains(link.AttrOr("rel", ""), "noopener") {
		t.Errorf("tracker link: %q rel %q", href, link.AttrOr("rel", ""))
	}
	row := doc.Find(`[data-testid="artifact-model/model.json"]`)
	if !strings.Contains(row.Text(), sha(strings.NewReader(`{"trees":[]}`))) {
		t.Errorf("artifact row does not show its sha256: %q", row.Text())
	}
	href := doc.Find(`[data-testid="download-model/model.json"]`).AttrOr("href", "")
	res := b.do("GET", href, nil, nil)
	if body := readBody(t, res); res.StatusCode != 200 || body != `{"trees":[]}` {
		t.Errorf("download from the page (%s): %d %q", href, res.StatusCode, body)
	}
	if res := e.browser().do("GET", href, nil, nil); res.StatusCode != http.StatusSeeOther {
		t.Errorf("download without a session: %d, want 303 to login", res.StatusCode)
	}
	if res := b.do("GET", "/models/ranker/versions/9", nil, nil); res.StatusCode != 404 {
		t.Errorf("missing version page: %d", res.StatusCode)
	}
}

// An artifact path with a literal percent sequence downloads as itself:
// the path is decoded once, not twice.
func TestArtifactPathDecodedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	createModel(t, c, map[string]any{"name": "m"})
	if res := register(c, "m", `{}`, file{"a%41.bin", strings.NewReader("percent")}, file{"aA.bin", strings.NewReader("plain")}); res.Status != 201 {
		t.Fatalf("register: %d %s", res.Status, res.Body)
	}
	for path, want := range map[string]string{"a%2541.bin": "percent", "aA.bin": "plain", "a%41.bin": "plain"} {
		res := e.as(auth.RoleViewer).Get("/api/v1/models/m/versions/1/artifacts/" + path)
		if res.Status != 200 || string(res.Body) != want {
			t.Errorf("GET …/%s: %d %q, want %q", path, res.Status, res.Body, want)
		}
	}
	// A model PATCH that changes nothing keeps its revision.
	res := c.Do(apitest.Request{Method: "PATCH", Path: "/api/v1/models/m", Body: map[string]any{"description": ""}, Header: http.Header{"If-Match": {`"1"`}}})
	if res.Status != 200 || res.Header.Get("ETag") != `"1"` {
		t.Errorf("no-op PATCH: %d ETag %q, want 200 \"1\"", res.Status, res.Header.Get("ETag"))
	}
	for _, bad := range []string{"+1", "01", "1e0"} {
		if res := c.Get("/api/v1/models/m/versions/" + bad); res.Status != 400 {
			t.Errorf("version %q: %d, want 400", bad, res.Status)
		}
	}
	big := `{"description":"` + strings.Repeat("x", 2<<20) + `"}`
	if res := register(c, "m", big, file{"x", strings.NewReader("x")}); res.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("metadata over the JSON limit: %d, want 413", res.Status)
	}
	if res := register(c, "m", `{} {}`, file{"x", strings.NewReader("x")}); res.Status != 400 {
		t.Errorf("metadata with trailing data: %d, want 400", res.Status)
	}
}

func TestArtifactHead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	createModel(t, c, map[string]any{"name": "m"})
	register(c, "m", `{}`, file{"w.bin", strings.NewReader("twelve bytes")})
	res := e.as(auth.RoleViewer).Do(apitest.Request{Method: "HEAD", Path: "/api/v1/models/m/versions/1/artifacts/w.bin"})
	if res.Status != 200 || len(res.Body) != 0 || res.Header.Get("Content-Length") != "12" || res.Header.Get("ETag") != `"`+sha(strings.NewReader("twelve bytes"))+`"` {
		t.Errorf("HEAD: %d, %d bytes, headers %v", res.Status, len(res.Body), res.Header)
	}
}
