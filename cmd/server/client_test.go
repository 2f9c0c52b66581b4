package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slipway-ml/slipway/internal/client"
)

// ciServer is a child `slipway serve` with the identities of a pipeline: a
// token-only contributor for CI and a reviewer, each with an API token,
// beside the bootstrap admin.
type ciServer struct {
	base                   string
	ciToken, reviewerToken string
	admin, ci, reviewer    *client.Client
}

func startCIServer(t *testing.T) *ciServer {
	t.Helper()
	env := serverEnv(t)
	startChild(t, env)
	s := &ciServer{base: "http://" + env["SLIPWAY_ADDR"]}
	s.admin = s.client(t, bootstrapToken)
	ctx := context.Background()
	for _, u := range []client.NewUser{{Name: "ci-training", Role: "contributor"}, {Name: "rita", Role: "reviewer"}} {
		if _, err := s.admin.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if s.ciToken, err = s.admin.CreateToken(ctx, "ci-training", "github-actions"); err != nil {
		t.Fatal(err)
	}
	if s.reviewerToken, err = s.admin.CreateToken(ctx, "rita", "laptop"); err != nil {
		t.Fatal(err)
	}
	s.ci, s.reviewer = s.client(t, s.ciToken), s.client(t, s.reviewerToken)
	return s
}

func (s *ciServer) client(t *testing.T, token string) *client.Client {
	t.Helper()
	c, err := client.New(s.base, token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type result struct {
	code           int
	stdout, stderr string
}

// slipway runs the binary as a pipeline does: SLIPWAY_URL and
// SLIPWAY_TOKEN in the environment (env adds or overrides variables).
func (s *ciServer) slipway(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	return s.slipwayCtx(context.Background(), t, env, args...)
}

// slipwayCtx is slipway with a context that stands for SIGINT.
func (s *ciServer) slipwayCtx(ctx context.Context, t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	m := map[string]string{"SLIPWAY_URL": s.base, "SLIPWAY_TOKEN": s.ciToken}
	for k, v := range env {
		m[k] = v
	}
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, envFunc(m), strings.NewReader(""), &stdout, &stderr)
	t.Logf("slipway %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	return result{code, stdout.String(), stderr.String()}
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

func download(t *testing.T, c *client.Client, model string, version int, path string) []byte {
	t.Helper()
	rc, err := c.OpenArtifact(context.Background(), model, version, path)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// register uploads files with their metadata and prints only the version
// number; the bytes come back identical; a folder uploads its files; a
// report is attached and prints its id; a report Slipway cannot read is
// exit 1 with the server's reason.
func TestClientRegisterAndReport(t *testing.T) {
	s := startCIServer(t)
	ctx := context.Background()
	dir := t.TempDir()
	weights := make([]byte, 3<<20+17)
	rand.Read(weights)
	model := writeFile(t, filepath.Join(dir, "model.pkl"), weights)
	config := writeFile(t, filepath.Join(dir, "config.json"), []byte(`{"threshold": 0.5}`))

	r := s.slipway(t, nil, "register", "churn", "--create-model", "--file", model+"=model/model.pkl", "--file", config,
		"--metadata", "framework=sklearn", "--metadata", "params.C:=0.5", "--metadata", "params.solver=lbfgs",
		"--metadata", "source.git_commit=0123abcd", "--metadata", "tags.team=growth", "--description", "nightly retrain")
	if r.code != 0 || r.stdout != "1\n" || !strings.Contains(r.stderr, "registered churn version 1: 2 file(s)") {
		t.Fatalf("register: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	v, err := s.ci.GetVersion(ctx, "churn", 1)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{"framework": v.Framework, "description": v.Description, "params": v.Params, "tags": v.Tags,
		"source": v.Source, "created_by": v.CreatedBy}
	want := map[string]any{"framework": "sklearn", "description": "nightly retrain", "params": map[string]any{"C": 0.5, "solver": "lbfgs"},
		"tags": map[string]string{"team": "growth"}, "source": map[string]any{"git_commit": "0123abcd"}, "created_by": "ci-training"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("metadata (-want +got):\n%s", d)
	}
	var paths []string
	for _, a := range v.Artifacts {
		paths = append(paths, a.Path)
	}
	if d := cmp.Diff([]string{"config.json", "model/model.pkl"}, paths); d != "" || v.Artifacts[0].ContentType != "application/json" {
		t.Errorf("artifacts (-want +got):\n%s\n%+v", d, v.Artifacts)
	}
	if b := download(t, s.ci, "churn", 1, "model/model.pkl"); !bytes.Equal(b, weights) {
		t.Errorf("model/model.pkl: downloaded %d bytes, not the %d uploaded", len(b), len(weights))
	}
	if b := download(t, s.ci, "churn", 1, "config.json"); string(b) != `{"threshold": 0.5}` {
		t.Errorf("config.json: downloaded %q", b)
	}

	// A folder, with --json: the version object on stdout.
	folder := filepath.Join(dir, "out")
	writeFile(t, filepath.Join(folder, "a", "b.txt"), []byte("b"))
	writeFile(t, filepath.Join(folder, "c.bin"), []byte("c"))
	r = s.slipway(t, nil, "register", "churn", "--file", folder+"=weights", "--json", "--kind", "batch_predictions", "--run", "github-actions:11893420417")
	var v2 client.Version
	if err := json.Unmarshal([]byte(r.stdout), &v2); r.code != 0 || err != nil {
		t.Fatalf("register --json: exit %d, %v: %q", r.code, err, r.stdout)
	}
	paths = nil
	for _, a := range v2.Artifacts {
		paths = append(paths, a.Path)
	}
	if v2.Version != 2 || v2.Kind != "batch_predictions" || !cmp.Equal(paths, []string{"weights/a/b.txt", "weights/c.bin"}) {
		t.Errorf("register a folder: version %d, kind %q, artifacts %v", v2.Version, v2.Kind, paths)
	}

	// The report: its id alone on stdout.
	report := writeFile(t, filepath.Join(dir, "report.json"), []byte(`{"metrics": {"auc": 0.91, "accuracy": 0.87}, "tests": [{"name": "no_empty_output", "passed": true}]}`))
	r = s.slipway(t, nil, "report", "churn", "1", report, "--suite", "offline", "--producer", "train.py")
	reports, err := s.ci.ListReports(ctx, "churn", 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.code != 0 || len(reports) != 1 || r.stdout != strconv.FormatInt(reports[0].ID, 10)+"\n" ||
		reports[0].Suite != "offline" || reports[0].Producer != "train.py" || reports[0].MetricCount != 2 || reports[0].TestCount != 1 {
		t.Fatalf("report: exit %d, stdout %q; reports %+v", r.code, r.stdout, reports)
	}

	// A report Slipway cannot read: exit 1, the server's reason, and no report.
	bad := writeFile(t, filepath.Join(dir, "bad.json"), []byte(`{"accuracy": 0.9}`))
	r = s.slipway(t, nil, "report", "churn", "1", bad, "--suite", "offline")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "422 unprocessable") || !strings.Contains(r.stderr, "no recognisable shape") ||
		!regexp.MustCompile(`\(request id [0-9a-f]{24}\)`).MatchString(r.stderr) {
		t.Errorf("a report of no known shape: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	if reports, _ := s.ci.ListReports(ctx, "churn", 1); len(reports) != 1 {
		t.Errorf("after a refused report: %d reports", len(reports))
	}

	// Errors of the server are exit 1 with its message.
	for _, args := range [][]string{
		{"report", "churn", "9", report, "--suite", "offline"},
		{"register", "no-such-model", "--file", config},
	} {
		if r := s.slipway(t, nil, args...); r.code != 1 || !strings.Contains(r.stderr, "404 not_found") {
			t.Errorf("%v: exit %d, %s", args, r.code, r.stderr)
		}
	}
}

// promote exits 0 when promoted, 3 when a rule fails (and prints it), 4
// while the request waits for review, with or without --wait; with --wait
// it exits 0 when a reviewer approves while it waits, 3 when one rejects.
func TestPromoteExitCodes(t *testing.T) {
	s := startCIServer(t)
	ctx := context.Background()
	dir := t.TempDir()
	model := writeFile(t, filepath.Join(dir, "model.pkl"), []byte("weights"))
	report := writeFile(t, filepath.Join(dir, "report.json"), []byte(`{"metrics": {"auc": 0.91}}`))
	if r := s.slipway(t, nil, "register", "churn", "--create-model", "--file", model); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := s.slipway(t, nil, "report", "churn", "1", report, "--suite", "offline"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	policy := func(stage string, min float64, approvals int) {
		t.Helper()
		_, err := s.admin.SetPolicy(ctx, "churn", stage, client.Policy{Rules: []map[string]any{
			{"kind": "required_suite", "suite": "offline"},
			{"kind": "threshold", "suite": "offline", "metric": "auc", "op": ">=", "value": min},
			{"kind": "approvals", "count": approvals},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	holder := func(stage string) int {
		t.Helper()
		st, err := s.ci.GetStage(ctx, "churn", stage)
		if err != nil {
			t.Fatal(err)
		}
		return st.Version
	}

	// The policy passes: promoted, exit 0.
	policy("staging", 0.8, 0)
	r := s.slipway(t, nil, "promote", "churn", "1", "staging", "--reason", "offline AUC checked")
	if r.code != 0 || !strings.Contains(r.stdout, "churn version 1 → staging: promoted") || !strings.Contains(r.stdout, "  pass  auc >= 0.8: ") || holder("staging") != 1 {
		t.Errorf("a policy that passes: exit %d, %s%s", r.code, r.stdout, r.stderr)
	}

	// A threshold not met: rejected, exit 3, the failing rule and its message printed.
	policy("production", 0.95, 0)
	r = s.slipway(t, nil, "promote", "churn", "1", "production")
	if r.code != 3 || !strings.Contains(r.stdout, ": rejected") || !regexp.MustCompile(`(?m)^  FAIL  auc >= 0\.95: auc = 0\.91`).MatchString(r.stdout) || holder("production") != 0 {
		t.Errorf("a threshold not met: exit %d, %s%s", r.code, r.stdout, r.stderr)
	}

	// A stage that needs an approval (a new stage has the default policy).
	if _, err := s.admin.CreateStage(ctx, "churn", "canary", "5% of traffic"); err != nil {
		t.Fatal(err)
	}
	r = s.slipway(t, nil, "promote", "churn", "1", "canary")
	if r.code != 4 || !strings.Contains(r.stdout, ": pending_approval") || !strings.Contains(r.stdout, "  wait  1 approval(s): ") ||
		!strings.Contains(r.stderr, "waits for review (0 of 1 approvals; wait for the decision with --wait)") {
		t.Errorf("without --wait: exit %d, %s%s", r.code, r.stdout, r.stderr)
	}
	start := time.Now()
	r = s.slipway(t, nil, "promote", "churn", "1", "canary", "--wait", "--timeout", "2s", "--interval", "300ms")
	if took := time.Since(start); r.code != 4 || !strings.Contains(r.stderr, "waits for review (0 of 1 approvals; no decision after 2s)") || took < 2*time.Second || took > 10*time.Second {
		t.Errorf("--wait --timeout 2s: exit %d after %s, %s%s", r.code, took, r.stdout, r.stderr)
	}

	// SIGINT ends the waiting, not the request.
	sigint, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
	defer cancel()
	r = s.slipwayCtx(sigint, t, nil, "promote", "churn", "1", "canary", "--wait", "--interval", "200ms")
	if r.code != 4 || !strings.Contains(r.stderr, "waits for review (0 of 1 approvals; interrupted)") {
		t.Errorf("--wait, interrupted: exit %d, %s%s", r.code, r.stdout, r.stderr)
	}

	// A reviewer decides while promote --wait polls.
	review := func(decision string) <-chan error {
		open, err := s.reviewer.ListPromotions(ctx, client.PromotionFilter{Model: "churn", Stage: "canary", Status: client.PendingApproval})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int64]bool{}
		for _, p := range open {
			seen[p.ID] = true
		}
		done := make(chan error, 1)
		go func() {
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				open, err := s.reviewer.ListPromotions(ctx, client.PromotionFilter{Model: "churn", Stage: "canary", Status: client.PendingApproval})
				if err != nil {
					done <- err
					return
				}
				for _, p := range open {
					if !seen[p.ID] {
						time.Sleep(700 * time.Millisecond) // promote is polling by now
						_, err := s.reviewer.Review(ctx, p.ID, decision, "looks fine")
						done <- err
						return
					}
				}
			}
			done <- context.DeadlineExceeded
		}()
		return done
	}
	done := review("reject")
	r = s.slipway(t, nil, "promote", "churn", "1", "canary", "--wait", "--timeout", "1m", "--interval", "200ms")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r.code != 3 || !strings.Contains(r.stdout, ": rejected") || !strings.Contains(r.stdout, "rejected by rita: looks fine") ||
		strings.Count(r.stdout, "  wait  1 approval(s)") != 1 || holder("canary") != 0 {
		t.Errorf("--wait, a reviewer rejects: exit %d, %s%s", r.code, r.stdout, r.stderr)
	}
	done = review("approve")
	r = s.slipway(t, nil, "promote", "churn", "1", "canary", "--wait", "--timeout", "1m", "--interval", "200ms", "--json")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var p client.Promotion
	if err := json.Unmarshal([]byte(r.stdout), &p); r.code != 0 || err != nil || p.Status != client.Promoted || p.DecidedBy != "rita" || holder("canary") != 1 ||
		!strings.Contains(r.stderr, ": pending_approval") || !strings.Contains(r.stderr, ": promoted") {
		t.Errorf("--wait, a reviewer approves: exit %d, %v, %s%s", r.code, err, r.stdout, r.stderr)
	}

	// The same Idempotency-Key twice: one request, answered twice.
	ids := map[string]bool{}
	for range 2 {
		r = s.slipway(t, nil, "promote", "churn", "1", "production", "--idempotency-key", "run-42-production")
		ids[regexp.MustCompile(`^promotion \d+`).FindString(r.stdout)] = true
	}
	if r.code != 3 || len(ids) != 1 {
		t.Errorf("a retry with the same key: exit %d, requests %v", r.code, ids)
	}
	if all, _ := s.ci.ListPromotions(ctx, client.PromotionFilter{Model: "churn", Stage: "production"}); len(all) != 2 {
		t.Errorf("production has %d requests, want 2", len(all))
	}
}

// Configuration and usage errors are exit 2 and say what is missing; a
// refused token is exit 1 and says so.
func TestClientConfigAndTokenErrors(t *testing.T) {
	s := startCIServer(t)
	dir := t.TempDir()
	model := writeFile(t, filepath.Join(dir, "model.pkl"), []byte("weights"))
	for _, c := range []struct {
		env  map[string]string
		args []string
		code int
		want string
	}{
		{map[string]string{"SLIPWAY_URL": ""}, []string{"register", "churn", "--file", model}, 2, "SLIPWAY_URL is not set"},
		{map[string]string{"SLIPWAY_TOKEN": ""}, []string{"promote", "churn", "1", "production"}, 2, "SLIPWAY_TOKEN is not set"},
		{map[string]string{"SLIPWAY_URL": "localhost:8080"}, []string{"report", "churn", "1", model, "--suite", "s"}, 2, "is not the URL of a Slipway server"},
		{map[string]string{"SLIPWAY_TOKEN": "", "SLIPWAY_TOKEN_FILE": filepath.Join(dir, "missing")}, []string{"promote", "churn", "1", "production"}, 2, "SLIPWAY_TOKEN_FILE"},
		{nil, []string{"register", "--file", model}, 2, "register needs MODEL"},
		{nil, []string{"register", "churn"}, 2, "at least one --file"},
		{nil, []string{"register", "churn", "--file", model, "--metadata", "framework"}, 2, "want KEY=VALUE or KEY:=JSON"},
		{nil, []string{"report", "churn", "1", model}, 2, "report needs --suite"},
		{nil, []string{"promote", "churn", "one", "production"}, 2, `VERSION "one"`},
		{nil, []string{"promote", "churn", "1", "production", "--timeout", "soon"}, 2, "invalid value"},
		{map[string]string{"SLIPWAY_TOKEN": "slw_not-a-token-of-this-server-000000000000000000"}, []string{"register", "churn", "--file", model}, 1, "401 unauthenticated"},
		{map[string]string{"SLIPWAY_TOKEN": s.reviewerToken + "x"}, []string{"promote", "churn", "1", "production"}, 1, "the token was refused: check SLIPWAY_TOKEN"},
	} {
		r := s.slipway(t, c.env, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) || r.stdout != "" {
			t.Errorf("%v %v: exit %d (want %d), stdout %q, stderr %s", c.env, c.args, r.code, c.code, r.stdout, r.stderr)
		}
	}

	// --url and --token override the environment; SLIPWAY_TOKEN_FILE is read.
	tokenFile := writeFile(t, filepath.Join(dir, "token"), []byte(s.ciToken+"\n"))
	r := s.slipway(t, map[string]string{"SLIPWAY_TOKEN": "", "SLIPWAY_TOKEN_FILE": tokenFile}, "register", "churn", "--create-model", "--file", model)
	if r.code != 0 || r.stdout != "1\n" {
		t.Errorf("SLIPWAY_TOKEN_FILE: exit %d, %s", r.code, r.stderr)
	}
	r = s.slipway(t, map[string]string{"SLIPWAY_URL": "http://127.0.0.1:1", "SLIPWAY_TOKEN": "wrong"}, "register", "churn", "--file", model, "--url", s.base, "--token", s.ciToken)
	if r.code != 0 || r.stdout != "2\n" {
		t.Errorf("--url and --token: exit %d, %s", r.code, r.stderr)
	}

	var out bytes.Buffer
	if code := run(context.Background(), []string{"help"}, envFunc(nil), nil, &out, io.Discard); code != 0 ||
		!strings.Contains(out.String(), "slipway promote MODEL VERSION STAGE") || !strings.Contains(out.String(), "4 promote:") {
		t.Errorf("help: exit %d\n%s", code, out.String())
	}
}
