package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/go-cmp/cmp"

	"github.com/slipway-ml/slipway/internal/api/apitest"
	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/registry"
)

func createModel(t *testing.T, c *apitest.Client, body map[string]any) registry.Model {
	t.Helper()
	res := c.Send("POST", "/api/v1/models", body)
	if res.Status != http.StatusCreated {
		t.Fatalf("create model %v: %d %s", body["name"], res.Status, res.Body)
	}
	var m registry.Model
	res.Decode(t, &m)
	return m
}

func TestModelNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	createModel(t, c, map[string]any{"name": "ranker"})
	for _, tc := range []struct {
		name string
		want int
	}{
		{"ranker", http.StatusConflict},
		{"Ranker", http.StatusBadRequest},       // case
		{"ranker ", http.StatusBadRequest},      // trailing space
		{"rаnker", http.StatusBadRequest},       // Cyrillic а
		{"ranker\u200b", http.StatusBadRequest}, // zero-width space
		{"ｒanker", http.StatusBadRequest},       // fullwidth r
		{"-ranker", http.StatusBadRequest},      // leading dash
		{"", http.StatusBadRequest},             // empty
		{strings.Repeat("a", 129), http.StatusBadRequest},
		{strings.Repeat("a", 128), http.StatusCreated},
		{"ranker.v2_final-1", http.StatusCreated},
	} {
		res := c.Send("POST", "/api/v1/models", map[string]any{"name": tc.name})
		if res.Status != tc.want {
			t.Errorf("name %q: %d %s, want %d", tc.name, res.Status, res.Body, tc.want)
		}
		if tc.want == http.StatusBadRequest && !strings.Contains(string(res.Body), "^[a-z0-9][a-z0-9._-]{0,127}$") {
			t.Errorf("name %q: the error does not state the rule: %s", tc.name, res.Body)
		}
	}
	// Viewers read, contributors write.
	if res := e.as(auth.RoleViewer).Send("POST", "/api/v1/models", map[string]any{"name": "by-viewer"}); res.Status != http.StatusForbidden {
		t.Errorf("viewer creating a model: %d, want 403", res.Status)
	}
}

func TestModelCreateGetAndValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	res := c.Send("POST", "/api/v1/models", map[string]any{"name": "fraud", "description": "Card fraud\nscorer", "owner": "risk-team", "tags": map[string]string{"team": "risk", "task": "classification"}})
	if res.Status != http.StatusCreated || res.Header.Get("ETag") != `"1"` || res.Header.Get("Location") != "/api/v1/models/fraud" {
		t.Fatalf("create: %d ETag %q Location %q", res.Status, res.Header.Get("ETag"), res.Header.Get("Location"))
	}
	var got registry.Model
	res = e.as(auth.RoleViewer).Get("/api/v1/models/fraud")
	res.Decode(t, &got)
	want := registry.Model{Name: "fraud", Description: "Card fraud\nscorer", Owner: "risk-team",
		Tags: registry.Tags{"team": "risk", "task": "classification"}, CreatedBy: "contributor-user", Revision: 1}
	if diff := cmp.Diff(want, got, cmpIgnoreTimes()); diff != "" {
		t.Errorf("model (-want +got):\n%s", diff)
	}
	if res.Header.Get("ETag") != `"1"` {
		t.Errorf("ETag = %q", res.Header.Get("ETag"))
	}
	if res := c.Get("/api/v1/models/nope"); res.Status != http.StatusNotFound {
		t.Errorf("unknown model: %d", res.Status)
	}
	for _, body := range []map[string]any{
		{"name": "x1", "tags": map[string]string{"bad key!": "v"}},
		{"name": "x2", "owner": strings.Repeat("o", 129)},
		{"name": "x3", "owner": "line\nbreak"},
		{"name": "x4", "description": strings.Repeat("d", 10001)},
		{"name": "x5", "tags": map[string]any{"k": 1}},
	} {
		if res := c.Send("POST", "/api/v1/models", body); res.Status != http.StatusBadRequest {
			t.Errorf("%v: %d %s, want 400", body, res.Status, res.Body)
		}
	}
	var list struct{ Items []registry.Model }
	c.Get("/api/v1/models").Decode(t, &list)
	if len(list.Items) != 1 {
		t.Errorf("refused models were created: %d models", len(list.Items))
	}
}

func cmpIgnoreTimes() cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool {
		switch p.Last().String() {
		case ".CreatedAt", ".UpdatedAt", ".ArchivedAt", ".ID":
			return true
		}
		return false
	}, cmp.Ignore())
}

func TestModelUpdateOptimisticConcurrency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	createModel(t, c, map[string]any{"name": "churn", "tags": map[string]string{"team": "growth"}})
	patch := func(ifMatch string, body any) *apitest.Response {
		h := http.Header{}
		if ifMatch != "" {
			h.Set("If-Match", ifMatch)
		}
		return c.Do(apitest.Request{Method: "PATCH", Path: "/api/v1/models/churn", Body: body, Header: h})
	}
	if res := patch("", map[string]any{"description": "x"}); res.Status != http.StatusPreconditionRequired || res.ErrorCode() != "precondition_required" {
		t.Errorf("no If-Match: %d %s, want 428", res.Status, res.Body)
	}
	res := patch(`"1"`, map[string]any{"description": "predicts churn", "tags": map[string]string{"team": "growth", "stage": "beta"}})
	if res.Status != 200 || res.Header.Get("ETag") != `"2"` {
		t.Fatalf("update at revision 1: %d %s", res.Status, res.Body)
	}
	var m registry.Model
	res.Decode(t, &m)
	if m.Description != "predicts churn" || m.Tags["stage"] != "beta" || m.Revision != 2 {
		t.Errorf("after update: %+v", m)
	}
	if res := patch(`"1"`, map[string]any{"description": "stale"}); res.Status != http.StatusPreconditionFailed || res.ErrorCode() != "precondition_failed" {
		t.Errorf("stale If-Match: %d %s, want 412", res.Status, res.Body)
	}
	if res := patch(`W/"2"`, map[string]any{"owner": "growth-team"}); res.Status != 200 {
		t.Errorf("weak ETag of the current revision: %d %s", res.Status, res.Body)
	}
	if res := patch(`"banana"`, map[string]any{"owner": "x"}); res.Status != http.StatusPreconditionFailed {
		t.Errorf("garbage If-Match: %d, want 412", res.Status)
	}
	if res := patch(`*`, map[string]any{"archived": true}); res.Status != 200 {
		t.Errorf("If-Match *: %d %s", res.Status, res.Body)
	}
	if res := patch(`*`, map[string]any{}); res.Status != http.StatusBadRequest {
		t.Errorf("empty patch: %d, want 400", res.Status)
	}
	if res := patch(`*`, map[string]any{"name": "renamed"}); res.Status != http.StatusBadRequest {
		t.Errorf("renaming through PATCH: %d, want 400 (unknown field)", res.Status)
	}
	// Two writers with the same ETag at once: exactly one wins.
	cur := c.Get("/api/v1/models/churn").Header.Get("ETag")
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = patch(cur, map[string]any{"description": fmt.Sprint("writer ", i)}).Status
		}()
	}
	wg.Wait()
	won := 0
	for _, code := range codes {
		switch code {
		case 200:
			won++
		case http.StatusPreconditionFailed:
		default:
			t.Errorf("concurrent writer got %d", code)
		}
	}
	if won != 1 {
		t.Errorf("%d concurrent writers with one ETag succeeded, want exactly 1 (%v)", won, codes)
	}
	// Every change is audited, archive by its own name.
	var audit struct{ Items []struct{ Action string } }
	e.as(auth.RoleAdmin).Get("/api/v1/audit?target_type=model&target_id=churn").Decode(t, &audit)
	var actions []string
	for _, it := range audit.Items {
		actions = append(actions, it.Action)
	}
	if got := strings.Join(actions, ","); got != "model.update,model.archive,model.update,model.update,model.create" {
		t.Errorf("audit actions, newest first: %s", got)
	}
}

func TestModelListSearchAndPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	for _, m := range []map[string]any{
		{"name": "rank-a", "tags": map[string]string{"team": "search"}},
		{"name": "rank-b", "tags": map[string]string{"team": "ads"}},
		{"name": "rank_c", "tags": map[string]string{"team": "search", "gpu": ""}},
		{"name": "rankxd"},
		{"name": "other"},
	} {
		createModel(t, c, m)
	}
	c.Do(apitest.Request{Method: "PATCH", Path: "/api/v1/models/other", Body: map[string]any{"archived": true}, Header: http.Header{"If-Match": {"*"}}})
	names := func(path string) string {
		t.Helper()
		var all []string
		cursor := ""
		for i := 0; i < 20; i++ {
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			res := c.Get(path + sep + "limit=2&cursor=" + url.QueryEscape(cursor))
			if res.Status != 200 {
				t.Fatalf("%s: %d %s", path, res.Status, res.Body)
			}
			var page struct {
				Items      []registry.Model
				NextCursor string `json:"next_cursor"`
			}
			res.Decode(t, &page)
			for _, m := range page.Items {
				all = append(all, m.Name)
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		return strings.Join(all, ",")
	}
	for path, want := range map[string]string{
		"/api/v1/models":                       "rank-a,rank-b,rank_c,rankxd",
		"/api/v1/models?q=rank-":               "rank-a,rank-b",
		"/api/v1/models?q=rank_":               "rank_c", // _ is literal, not a LIKE wildcard
		"/api/v1/models?q=%25":                 "",       // so is %
		"/api/v1/models?tag=team%3Dsearch":     "rank-a,rank_c",
		"/api/v1/models?tag=gpu":               "rank_c",
		"/api/v1/models?tag=team":              "rank-a,rank-b,rank_c",
		"/api/v1/models?archived=true":         "other",
		"/api/v1/models?q=rank&tag=team%3Dads": "rank-b",
	} {
		if got := names(path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	for _, bad := range []string{"?tag=bad%20key", "?archived=maybe", "?limit=201", "?cursor=!!"} {
		if res := c.Get("/api/v1/models" + bad); res.Status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, res.Status)
		}
	}
}

func TestModelPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	createModel(t, e.as(auth.RoleContributor), map[string]any{"name": "vision", "description": "Images", "tags": map[string]string{"team": "cv"}})
	createModel(t, e.as(auth.RoleContributor), map[string]any{"name": "speech"})
	viewer := e.browser()
	viewer.login(userOf(auth.RoleViewer), testPassword)
	doc := htmlDoc(t, viewer.do("GET", "/models?q=vis", nil, nil))
	if n := doc.Find(`[data-testid=models-table] tbody tr`).Length(); n != 1 || doc.Find(`[data-testid=model-vision]`).Length() != 1 {
		t.Errorf("search vis: %d rows", n)
	}
	doc = htmlDoc(t, viewer.do("GET", "/models/vision", nil, nil))
	if doc.Find(`[data-testid=model-name]`).Text() != "vision" || doc.Find(`[data-testid=model-edit]`).Length() != 0 {
		t.Errorf("model page for a viewer: name %q, edit form %d", doc.Find(`[data-testid=model-name]`).Text(), doc.Find(`[data-testid=model-edit]`).Length())
	}
	if res := viewer.do("GET", "/models/nope", nil, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown model page: %d", res.StatusCode)
	}

	editor := e.browser()
	editor.login(userOf(auth.RoleContributor), testPassword)
	form := url.Values{"revision": {"1"}, "description": {"Images, v2"}, "owner": {"cv-team"}, "tags": {"team=cv\nsize=large"}}
	res := editor.do("POST", "/models/vision", form, http.Header{"Hx-Request": {"true"}})
	doc = htmlDoc(t, res)
	if res.StatusCode != 200 || doc.Find(`[data-testid=model-notice]`).Length() != 1 {
		t.Fatalf("edit: %d", res.StatusCode)
	}
	m, _ := e.registryModel(t, "vision")
	if m.Description != "Images, v2" || m.Tags["size"] != "large" || m.Owner != "cv-team" {
		t.Errorf("after the edit: %+v", m)
	}
	// The same form again (drawn from revision 1) is stale now.
	res = editor.do("POST", "/models/vision", form, http.Header{"Hx-Request": {"true"}})
	doc = htmlDoc(t, res)
	if res.StatusCode != http.StatusPreconditionFailed || !strings.Contains(doc.Find(`[data-testid=model-error]`).Text(), "revision") {
		t.Errorf("stale form: %d %q", res.StatusCode, doc.Find(`[data-testid=model-error]`).Text())
	}
	form.Set("revision", "2")
	form.Set("tags", "bad key=x")
	if res := editor.do("POST", "/models/vision", form, nil); res.StatusCode != http.StatusBadRequest {
		t.Errorf("bad tag in the form: %d", res.StatusCode)
	}
	if res := viewer.do("POST", "/models/vision", form, nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("viewer editing: %d, want 403", res.StatusCode)
	}
	// The dashboard counts live models.
	doc = htmlDoc(t, viewer.do("GET", "/", nil, nil))
	if got := doc.Find(`[data-testid=count-models]`).Text(); got != "2" {
		t.Errorf("dashboard models = %q, want 2", got)
	}
}

func htmlDoc(t *testing.T, res *http.Response) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func (e *env) registryModel(t *testing.T, name string) (registry.Model, error) {
	var m registry.Model
	res := e.as(auth.RoleViewer).Get("/api/v1/models/" + name)
	res.Decode(t, &m)
	return m, nil
}
