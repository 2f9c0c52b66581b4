package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testSecret is the endpoint's secret in these tests.
const testSecret = vectorSecret

// testNow is the receivers' clock in these tests.
var testNow = time.Date(2026, 11, 23, 10, 0, 1, 0, time.UTC)

// artifactServer stands for the object store behind Slipway's presigned
// URLs. It serves files by path and counts GETs.
type artifactServer struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	gets  atomic.Int64
	gate  chan struct{} // when set, each GET waits for it to be closed
	begun chan struct{} // when set, each GET sends on it before waiting
}

func newArtifactServer(t *testing.T) *artifactServer {
	s := &artifactServer{files: map[string][]byte{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.gets.Add(1)
		if s.begun != nil {
			s.begun <- struct{}{}
		}
		if s.gate != nil {
			<-s.gate
		}
		s.mu.Lock()
		b, ok := s.files[strings.TrimPrefix(r.URL.Path, "/")]
		s.mu.Unlock()
		if !ok || r.URL.Query().Get("X-Amz-Signature") == "" {
			http.Error(w, "AccessDenied", http.StatusForbidden)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

// put serves content at path.
func (s *artifactServer) put(path string, content []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path] = content
}

// artifact declares content at path, as served by s.
func (s *artifactServer) artifact(path string, content []byte) artifact {
	sum := sha256.Sum256(content)
	return artifact{
		Path:   path,
		Size:   int64(len(content)),
		SHA256: hex.EncodeToString(sum[:]),
		URL:    s.URL + "/" + path + "?X-Amz-Expires=300&X-Amz-Signature=deadbeef",
	}
}

// event is a Slipway event: type, model data.
func event(t *testing.T, typ string, data any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"type":      typ,
		"id":        "evt_" + strings.ReplaceAll(typ, ".", "_"),
		"timestamp": "2026-11-23T10:00:00.123Z",
		"data":      data,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// moved is a stage.moved event.
func moved(t *testing.T, model string, seq int64, stage string, version int64, arts ...artifact) []byte {
	t.Helper()
	prev := version - 1
	return event(t, typeStageMoved, stageMoved{
		Model: model, Seq: seq, Stage: stage, Version: version, PreviousVersion: &prev,
		Reason: "weekly retrain", PromotionID: 31, MovedBy: "alice",
		VersionURL: "https://slipway.example.com/models/" + model + "/versions/" + strconv.FormatInt(version, 10),
		Artifacts:  arts,
	})
}

// send signs body as message id, at the receiver's clock, and delivers it.
func send(t *testing.T, rc *Receiver, id string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	ts := rc.now().Unix()
	return deliver(rc, id, strconv.FormatInt(ts, 10), sign(t, testSecret, id, ts, body), body)
}

func expect(t *testing.T, w *httptest.ResponseRecorder, status int, logs *logBuffer) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d (%s), want %d; log:\n%s", w.Code, strings.TrimSpace(w.Body.String()), status, logs)
	}
}

// entries lists dir recursively, as slash paths relative to it.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(dir, p); rel != "." {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

func TestStageMovedInstallsTheVersion(t *testing.T) {
	rc, logs := newTestReceiver(t, testSecret, testNow)
	srv := newArtifactServer(t)
	weights := []byte(strings.Repeat("weights ", 1<<14))
	config := []byte(`{"layers": 4}`)
	srv.put("model.bin", weights)
	srv.put("conf/config.json", config)

	w := send(t, rc, "msg_1", moved(t, "session-recs", 12, "production", 5,
		srv.artifact("conf/config.json", config), srv.artifact("model.bin", weights)))
	expect(t, w, http.StatusOK, logs)

	for path, want := range map[string][]byte{"model.bin": weights, "conf/config.json": config} {
		got, err := os.ReadFile(filepath.Join(rc.dir, "session-recs", "5", filepath.FromSlash(path)))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: %d bytes, not the content served", path, len(got))
		}
	}
	if !slices.Contains(logs.Lines(), "loaded model session-recs version 5 for stage production") {
		t.Errorf("no log line %q:\n%s", "loaded model session-recs version 5 for stage production", logs)
	}
	// Nothing else: no staging directory left behind.
	want := []string{"session-recs", "session-recs/5", "session-recs/5/conf", "session-recs/5/conf/config.json", "session-recs/5/model.bin"}
	if got := entries(t, rc.dir); !slices.Equal(got, want) {
		t.Errorf("directory holds %q, want %q", got, want)
	}
	if st, err := os.Stat(filepath.Join(rc.dir, "session-recs", "5")); err != nil || st.Mode().Perm()&0o005 != 0o005 {
		t.Errorf("the version directory is not readable by others (mode %v, %v): a serving process may run as another user", st.Mode(), err)
	}
}

func TestWrongSHA256Is502AndLeavesNothing(t *testing.T) {
	rc, logs := newTestReceiver(t, testSecret, testNow)
	srv := newArtifactServer(t)
	good := []byte("the real weights")
	declared := srv.artifact("model.bin", good)
	srv.put("model.bin", []byte("the fake weights")) // same size, other bytes

	body := moved(t, "session-recs", 12, "production", 5, declared)
	w := send(t, rc, "msg_1", body)
	expect(t, w, http.StatusBadGateway, logs)
	if !strings.Contains(w.Body.String(), "sha256") {
		t.Errorf("the answer does not say what failed: %s", w.Body)
	}
	if got := entries(t, filepath.Join(rc.dir, "session-recs")); len(got) != 0 {
		t.Errorf("left behind after a failed download: %q", got)
	}
	if strings.Contains(logs.String(), "loaded model") {
		t.Errorf("logged as loaded:\n%s", logs)
	}

	// The message is not marked done: Slipway's retry (same webhook-id,
	// new timestamp) installs the version once the bytes are right.
	srv.put("model.bin", good)
	rc.now = func() time.Time { return testNow.Add(time.Minute) }
	expect(t, send(t, rc, "msg_1", body), http.StatusOK, logs)
	if got, _ := os.ReadFile(filepath.Join(rc.dir, "session-recs", "5", "model.bin")); string(got) != string(good) {
		t.Errorf("after the retry the file holds %q", got)
	}
}

func TestDownloadFailuresAre502(t *testing.T) {
	content := []byte("0123456789")
	tests := []struct {
		name   string
		serve  []byte // what the artifact server sends
		change func(*artifact)
		want   string // in the answer
	}{
		{name: "longer than declared", serve: []byte("0123456789AB"), want: "declared"},
		{name: "shorter than declared", serve: []byte("01234"), want: "declared"},
		{name: "URL expired", serve: content, change: func(a *artifact) { a.URL = strings.Split(a.URL, "?")[0] }, want: "403"},
		{name: "server unreachable", serve: content, change: func(a *artifact) { a.URL = "http://127.0.0.1:1/model.bin?X-Amz-Signature=deadbeef" }, want: "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, logs := newTestReceiver(t, testSecret, testNow)
			srv := newArtifactServer(t)
			srv.put("model.bin", tt.serve)
			a := srv.artifact("model.bin", content)
			if tt.change != nil {
				tt.change(&a)
			}
			w := send(t, rc, "msg_1", moved(t, "session-recs", 12, "production", 5, a))
			expect(t, w, http.StatusBadGateway, logs)
			if !strings.Contains(w.Body.String(), tt.want) {
				t.Errorf("answer %q does not contain %q", w.Body, tt.want)
			}
			if strings.Contains(w.Body.String()+logs.String(), "deadbeef") {
				t.Errorf("the presigned URL's signature leaked into the answer or the log:\n%s%s", w.Body, logs)
			}
			if got := entries(t, rc.dir); len(got) > 1 { // the model's directory may remain, empty
				t.Errorf("left behind: %q", got)
			}
		})
	}
}

func TestRepeatedWebhookIDDownloadsOnce(t *testing.T) {
	rc, logs := newTestReceiver(t, testSecret, testNow)
	srv := newArtifactServer(t)
	srv.put("model.bin", []byte("weights"))
	body := moved(t, "session-recs", 12, "production", 5, srv.artifact("model.bin", []byte("weights")))

	expect(t, send(t, rc, "msg_1", body), http.StatusOK, logs)
	rc.now = func() time.Time { return testNow.Add(30 * time.Second) } // a retry is signed afresh
	expect(t, send(t, rc, "msg_1", body), http.StatusOK, logs)

	if n := srv.gets.Load(); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
	if n := strings.Count(logs.String(), "loaded model"); n != 1 {
		t.Errorf("loaded %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "duplicate webhook-id msg_1") {
		t.Errorf("the duplicate is not logged:\n%s", logs)
	}
}

// A retry that arrives while the first attempt is still downloading waits
// for it, then finds the work done.
func TestOverlappingDeliveriesOfOneMessageDownloadOnce(t *testing.T) {
	rc, logs := newTestReceiver(t, testSecret, testNow)
	srv := newArtifactServer(t)
	srv.gate, srv.begun = make(chan struct{}), make(chan struct{}, 10)
	srv.put("model.bin", []byte("weights"))
	body := moved(t, "session-recs", 12, "production", 5, srv.artifact("model.bin", []byte("weights")))

	codes := make(chan int, 2)
	go func() { codes <- send(t, rc, "msg_1", body).Code }()
	<-srv.begun // the first attempt is downloading
	go func() { codes <- send(t, rc, "msg_1", body).Code }()
	time.Sleep(50 * time.Millisecond) // let the second reach the model's lock (the result holds either way)
	close(srv.gate)

	for range 2 {
		if c := <-codes; c != http.StatusOK {
			t.Fatalf("status %d, want 200; log:\n%s", c, logs)
		}
	}
	if n := srv.gets.Load(); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
}

func TestLowerOrEqualSeqIsIgnored(t *testing.T) {
	rc, logs := newTestReceiver(t, testSecret, testNow)
	srv := newArtifactServer(t)
	for _, v := range []string{"v4", "v5", "v6"} {
		srv.put(v+"/model.bin", []byte(v))
	}
	art := func(v string) artifact { return srv.artifact(v+"/model.bin", []byte(v)) }

	expect(t, send(t, rc, "msg_12", moved(t, "session-recs", 12, "production", 5, art("v5"))), http.StatusOK, logs)
	// An older move, retried late: acting on it would roll production back.
	expect(t, send(t, rc, "msg_11", moved(t, "session-recs", 11, "production", 4, art("v4"))), http.StatusOK, logs)
	// The same seq again under another id.
	expect(t, send(t, rc, "msg_12b", moved(t, "session-recs", 12, "production", 6, art("v6"))), http.StatusOK, logs)

	if n := srv.gets.Load(); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
	for _, v := range []string{"4", "6"} {
		if _, err := os.Stat(filepath.Join(rc.dir, "session-recs", v)); !os.IsNotExist(err) {
			t.Errorf("version %s installed from a stale event", v)
		}
	}
	if n := strings.Count(logs.String(), "stale stage.moved"); n != 2 {
		t.Errorf("%d stale events logged, want 2:\n%s", n, logs)
	}
	// A newer one still goes through.
	expect(t, send(t, rc, "msg_13", moved(t, "session-recs", 13, "production", 6, art("v6"))), http.StatusOK, logs)
	if !slices.Contains(logs.Lines(), "loaded model session-recs version 6 for stage production") {
		t.Errorf("version 6 not loaded:\n%s", logs)
	}
}

// A move that failed and is retried must not be dropped as stale because
// later events of the same model, about something else, were accepted in
// the meantime.
func TestRetriedMoveIsNotStaleAfterOtherEventsOfTheModel(t *testing.T) {
	rc, logs := newTestReceiver(t, testSecret, testNow, "production", "staging")
	srv := newArtifactServer(t)
	srv.put("v5/model.bin", []byte("broken"))
	srv.put("v6/model.bin", []byte("v6"))
	production := moved(t, "session-recs", 12, "production", 5, srv.artifact("v5/model.bin", []byte("v5")))

	expect(t, send(t, rc, "msg_12", production), http.StatusBadGateway, logs)
	expect(t, send(t, rc, "msg_13", moved(t, "session-recs", 13, "staging", 6, srv.artifact("v6/model.bin", []byte("v6")))), http.StatusOK, logs)
	expect(t, send(t, rc, "msg_14", event(t, "model_version.created", map[string]any{"model": "session-recs", "seq": 14, "version": 7})), http.StatusNoContent, logs)

	srv.put("v5/model.bin", []byte("v5"))
	expect(t, send(t, rc, "msg_12", production), http.StatusOK, logs)
	if !slices.Contains(logs.Lines(), "loaded model session-recs version 5 for stage production") {
		t.Errorf("the retried move was not applied:\n%s", logs)
	}
}

func TestArtifactPathsThatEscapeAreRefused(t *testing.T) {
	for _, p := range []string{
		"../model.bin",
		"weights/../../model.bin",
		"..",
		"/etc/model.bin",
		`..\model.bin`,
		`weights\model.bin`,
		"weights//model.bin",
		"./model.bin",
		"weights/",
		"",
		"model\x00.bin",
	} {
		t.Run(fmt.Sprintf("%q", p), func(t *testing.T) {
			rc, logs := newTestReceiver(t, testSecret, testNow)
			srv := newArtifactServer(t)
			srv.put("model.bin", []byte("weights"))
			a := srv.artifact("model.bin", []byte("weights"))
			a.Path = p
			w := send(t, rc, "msg_1", moved(t, "session-recs", 12, "production", 5, srv.artifact("ok.bin", nil), a))
			expect(t, w, http.StatusUnprocessableEntity, logs)
			if n := srv.gets.Load(); n != 0 {
				t.Errorf("%d downloads before refusing", n)
			}
			if got := entries(t, filepath.Dir(rc.dir)); len(got) != 1 { // rc.dir itself, empty
				t.Errorf("written: %q", got)
			}
		})
	}
}

func TestInvalidStageMovedIsRefused(t *testing.T) {
	srv := newArtifactServer(t)
	a := srv.artifact("model.bin", []byte("weights"))
	dup := a
	inside := srv.artifact("model.bin/part", []byte("x"))
	badSum := a
	badSum.SHA256 = "abc"
	badURL := a
	badURL.URL = "file:///etc/passwd"
	for name, body := range map[string][]byte{
		"model name is a path": moved(t, "../etc", 12, "production", 5, a),
		"model name upper":     moved(t, "Session", 12, "production", 5, a),
		"no seq":               moved(t, "session-recs", 0, "production", 5, a),
		"no version":           moved(t, "session-recs", 12, "production", 0, a),
		"duplicate path":       moved(t, "session-recs", 12, "production", 5, a, dup),
		"file inside a file":   moved(t, "session-recs", 12, "production", 5, a, inside),
		"sha256 not hex":       moved(t, "session-recs", 12, "production", 5, badSum),
		"not an http URL":      moved(t, "session-recs", 12, "production", 5, badURL),
	} {
		t.Run(name, func(t *testing.T) {
			rc, logs := newTestReceiver(t, testSecret, testNow)
			expect(t, send(t, rc, "msg_1", body), http.StatusUnprocessableEntity, logs)
		})
	}
	if n := srv.gets.Load(); n != 0 {
		t.Errorf("%d downloads", n)
	}
}

func TestStageNotServedIsAcknowledged(t *testing.T) {
	rc, logs := newTestReceiver(t, testSecret, testNow)
	srv := newArtifactServer(t)
	srv.put("model.bin", []byte("weights"))
	expect(t, send(t, rc, "msg_1", moved(t, "session-recs", 12, "staging", 5, srv.artifact("model.bin", []byte("weights")))), http.StatusNoContent, logs)
	if n := srv.gets.Load(); n != 0 {
		t.Errorf("%d downloads for a stage not served", n)
	}
}

// Another stage moving to a version already here reuses its files.
func TestVersionAlreadyPresentIsNotDownloadedAgain(t *testing.T) {
	rc, logs := newTestReceiver(t, testSecret, testNow, "staging", "production")
	srv := newArtifactServer(t)
	srv.put("model.bin", []byte("weights"))
	a := srv.artifact("model.bin", []byte("weights"))

	expect(t, send(t, rc, "msg_1", moved(t, "session-recs", 12, "staging", 5, a)), http.StatusOK, logs)
	expect(t, send(t, rc, "msg_2", moved(t, "session-recs", 13, "production", 5, a)), http.StatusOK, logs)
	if n := srv.gets.Load(); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
	if !slices.Contains(logs.Lines(), "loaded model session-recs version 5 for stage production") {
		t.Errorf("not loaded for production:\n%s", logs)
	}

	// A copy altered on disk is downloaded again.
	os.WriteFile(filepath.Join(rc.dir, "session-recs", "5", "model.bin"), []byte("WEIGHTS"), 0o644)
	expect(t, send(t, rc, "msg_3", moved(t, "session-recs", 14, "production", 5, a)), http.StatusOK, logs)
	if n := srv.gets.Load(); n != 2 {
		t.Errorf("%d downloads, want 2", n)
	}
	if got, _ := os.ReadFile(filepath.Join(rc.dir, "session-recs", "5", "model.bin")); string(got) != "weights" {
		t.Errorf("the altered copy was kept: %q", got)
	}
}

func TestOtherEventsAreLoggedAnd204(t *testing.T) {
	rc, logs := newTestReceiver(t, testSecret, testNow)
	for i, typ := range []string{"model_version.created", "evaluation.created", "promotion.requested",
		"promotion.approved", "promotion.rejected", "promotion.cancelled"} {
		body := event(t, typ, map[string]any{"model": "session-recs", "seq": 20 + i})
		expect(t, send(t, rc, "msg_"+typ, body), http.StatusNoContent, logs)
		if !strings.Contains(logs.String(), "event "+typ) {
			t.Errorf("%s not logged:\n%s", typ, logs)
		}
	}
	expect(t, send(t, rc, "msg_test", event(t, typeTest, map[string]any{})), http.StatusNoContent, logs)
	if !strings.Contains(logs.String(), "test event") {
		t.Errorf("the test event is not logged:\n%s", logs)
	}
	// An older one is stale.
	expect(t, send(t, rc, "msg_old", event(t, "evaluation.created", map[string]any{"model": "session-recs", "seq": 3})), http.StatusOK, logs)
	if !strings.Contains(logs.String(), "stale evaluation.created") {
		t.Errorf("stale event not logged as such:\n%s", logs)
	}
}

func TestBodyNotJSONIs400(t *testing.T) {
	rc, logs := newTestReceiver(t, testSecret, testNow)
	expect(t, send(t, rc, "msg_1", []byte("not json")), http.StatusBadRequest, logs)
	expect(t, send(t, rc, "msg_2", []byte(`{"type":"stage.moved","data":"x"}`)), http.StatusBadRequest, logs)
}

func TestRecentIDsForgetsTheOldest(t *testing.T) {
	r := newRecentIDs(2)
	for _, id := range []string{"a", "b", "b", "c"} {
		r.Add(id)
	}
	if r.Has("a") || !r.Has("b") || !r.Has("c") || len(r.set) != 2 {
		t.Fatalf("after a, b, b, c with room for 2: a=%v b=%v c=%v (%d held)", r.Has("a"), r.Has("b"), r.Has("c"), len(r.set))
	}
}

func TestLocalPath(t *testing.T) {
	for _, p := range []string{"model.bin", "weights/model.pt", "a/b/c.json", ".hidden", "v1..2/x", "name with spaces.txt", "日本/モデル.bin"} {
		if _, err := localPath(p); err != nil {
			t.Errorf("localPath(%q): %v", p, err)
		}
	}
	for _, p := range []string{"", "/a", "a/../b", "a/..", "..", ".", "a/./b", "a//b", "a/", `a\b`, "a\nb", "a\x7fb", strings.Repeat("a", 1025)} {
		if _, err := localPath(p); err == nil {
			t.Errorf("localPath(%q) accepted", p)
		}
	}
}

func TestRemoveLeftovers(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"m/.incoming-5-123/sub", "m/5"} {
		os.MkdirAll(filepath.Join(dir, filepath.FromSlash(d)), 0o755)
	}
	logs := &logBuffer{}
	removeLeftovers(dir, log.New(logs, "", 0))
	if got := entries(t, dir); !slices.Equal(got, []string{"m", "m/5"}) {
		t.Fatalf("after removeLeftovers: %q", got)
	}
}
