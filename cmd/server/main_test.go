package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/database"
	"github.com/slipway-ml/slipway/internal/testenv"
	"github.com/slipway-ml/slipway/internal/webhook"
)

const bootstrapToken = "slw_cmd-test-bootstrap-0123456789abcdefghijklmnopqr"

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func envFunc(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func serverEnv(t *testing.T) map[string]string {
	db := testenv.NewDB(t)
	s3 := testenv.NewS3(t)
	return map[string]string{
		"SLIPWAY_ADDR":               freeAddr(t),
		"SLIPWAY_DATABASE_URL":       db.URL,
		"SLIPWAY_S3_ENDPOINT":        s3.Endpoint,
		"SLIPWAY_S3_BUCKET":          s3.Bucket,
		"SLIPWAY_S3_ACCESS_KEY":      s3.AccessKey,
		"SLIPWAY_S3_SECRET_KEY":      s3.SecretKey,
		"SLIPWAY_BOOTSTRAP_TOKEN":    bootstrapToken,
		"SLIPWAY_BOOTSTRAP_PASSWORD": "bootstrap-password-123",
		"SLIPWAY_SHUTDOWN_TIMEOUT":   "10s",
	}
}

type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newSyncBuffer() *syncBuffer { b := &syncBuffer{mu: make(chan struct{}, 1)}; return b }
func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}
func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

// startServe runs `slipway serve` in the background and waits until it is
// ready. cancel stands for SIGTERM.
func startServe(t *testing.T, env map[string]string) (base string, cancel func(), done <-chan int, logs *syncBuffer) {
	t.Helper()
	ctx, cancelCtx := context.WithCancel(context.Background())
	logs = newSyncBuffer()
	ch := make(chan int, 1)
	go func() { ch <- run(ctx, []string{"serve"}, envFunc(env), strings.NewReader(""), io.Discard, logs) }()
	base = "http://" + env["SLIPWAY_ADDR"]
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		select {
		case code := <-ch:
			t.Fatalf("serve exited with %d before it was ready:\n%s", code, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			cancelCtx()
			t.Fatalf("serve not ready after 30s:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(cancelCtx)
	return base, cancelCtx, ch, logs
}

// slowBody sends a body in parts, pausing before each part after the
// first. The client flushes every part as a chunk of its own.
type slowBody struct {
	parts [][]byte
	pause time.Duration
	reads int
}

func (b *slowBody) Read(p []byte) (int, error) {
	if len(b.parts) == 0 {
		return 0, io.EOF
	}
	if b.reads > 0 {
		time.Sleep(b.pause)
	}
	b.reads++
	n := copy(p, b.parts[0])
	b.parts = b.parts[1:]
	return n, nil
}

func TestServeStartsMigratesBootstrapsAndShutsDownGracefully(t *testing.T) {
	env := serverEnv(t)
	base, cancel, done, logs := startServe(t, env)

	// The start-up line shows the configuration with secrets redacted.
	out := logs.String()
	if !strings.Contains(out, `"msg":"starting Slipway"`) || strings.Contains(out, bootstrapToken) || strings.Contains(out, env["SLIPWAY_S3_SECRET_KEY"]) || strings.Contains(out, "bootstrap-password-123") {
		t.Errorf("start-up log does not show a redacted configuration:\n%s", out)
	}

	req, _ := http.NewRequest("GET", base+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+bootstrapToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var me auth.User
	json.NewDecoder(res.Body).Decode(&me)
	res.Body.Close()
	if res.StatusCode != 200 || me.Name != "admin" || me.Role != auth.RoleAdmin {
		t.Fatalf("bootstrap token: %d %+v", res.StatusCode, me)
	}

	var healthOut bytes.Buffer
	if code := run(context.Background(), []string{"health"}, envFunc(env), nil, &healthOut, io.Discard); code != 0 || !strings.HasPrefix(healthOut.String(), "200") {
		t.Errorf("health: exit %d, %q", code, healthOut.String())
	}

	// A request in flight when SIGTERM comes is finished, then serve returns.
	body := &slowBody{parts: [][]byte{[]byte(`{"name":`), []byte(`"in-flight"}`)}, pause: 1500 * time.Millisecond}
	result := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/api/v1/tokens", body)
		req.Header.Set("Authorization", "Bearer "+bootstrapToken)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("in-flight request: %v", err)
			result <- 0
			return
		}
		res.Body.Close()
		result <- res.StatusCode
	}()
	time.Sleep(500 * time.Millisecond) // the first half of the body is on its way
	cancel()
	if code := <-result; code != http.StatusCreated {
		t.Errorf("in-flight request during shutdown: %d, want 201", code)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited with %d:\n%s", code, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
	if code := run(context.Background(), []string{"health"}, envFunc(env), nil, io.Discard, io.Discard); code != 1 {
		t.Errorf("health after shutdown: exit %d, want 1", code)
	}
}

// TestServeWithAWSCredentials: SLIPWAY_S3_CREDENTIALS=aws takes the keys
// from where the AWS SDKs look (here the variables), and /readyz, which
// checks the bucket, says ready.
func TestServeWithAWSCredentials(t *testing.T) {
	env := serverEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", env["SLIPWAY_S3_ACCESS_KEY"])
	t.Setenv("AWS_SECRET_ACCESS_KEY", env["SLIPWAY_S3_SECRET_KEY"])
	delete(env, "SLIPWAY_S3_ACCESS_KEY")
	delete(env, "SLIPWAY_S3_SECRET_KEY")
	env["SLIPWAY_S3_CREDENTIALS"] = "aws"
	_, cancel, done, logs := startServe(t, env)
	if !strings.Contains(logs.String(), `"s3_credentials":"aws"`) {
		t.Errorf("the start-up line does not say where S3 credentials come from:\n%s", logs.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exited with %d:\n%s", code, logs.String())
	}
}

func TestServeRefusesNewerSchema(t *testing.T) {
	env := serverEnv(t)
	db := testenv.NewDB(t)
	env["SLIPWAY_DATABASE_URL"] = db.URL
	if _, err := db.Pool.Exec(context.Background(), `UPDATE schema_migrations SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"serve", "--migrate=false"}, {"serve"}} {
		var stderr bytes.Buffer
		code := run(context.Background(), args, envFunc(env), strings.NewReader(""), io.Discard, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), "newer than this binary knows") {
			t.Errorf("%v on a newer schema: exit %d, %s", args, code, stderr.String())
		}
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"serve"}, envFunc(map[string]string{
		"SLIPWAY_DATABASE_URL": "mysql://x", "SLIPWAY_S3_ENDPOINT": "ftp://x", "SLIPWAY_ADDR": "nope",
	}), strings.NewReader(""), io.Discard, &stderr)
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	for _, v := range []string{"SLIPWAY_DATABASE_URL", "SLIPWAY_S3_ENDPOINT", "SLIPWAY_ADDR", "SLIPWAY_S3_ACCESS_KEY"} {
		if !strings.Contains(stderr.String(), v) {
			t.Errorf("the error does not name %s:\n%s", v, stderr.String())
		}
	}
}

func TestAdminCommands(t *testing.T) {
	db := testenv.NewDB(t)
	env := envFunc(map[string]string{"SLIPWAY_DATABASE_URL": db.URL})
	cmd := func(stdin string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, env, strings.NewReader(stdin), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	latest := fmt.Sprintf("schema version %d ", database.LatestVersion())
	if code, out, _ := cmd("", "migrate", "version"); code != 0 || !strings.Contains(out, latest) {
		t.Errorf("migrate version: %d %q", code, out)
	}
	if code, out, errOut := cmd("a-long-enough-password\n", "users", "create", "--name", "carol", "--role", "reviewer"); code != 0 || !strings.Contains(out, "created user carol") {
		t.Fatalf("users create: %d %q %q", code, out, errOut)
	}
	if code, out, _ := cmd("", "users", "create", "--name", "ci", "--role", "contributor"); code != 0 || !strings.Contains(out, "tokens only") {
		t.Errorf("token-only user: %d %q", code, out)
	}
	if code, _, errOut := cmd("short\n", "users", "create", "--name", "dave", "--role", "viewer"); code != 1 || !strings.Contains(errOut, "password") {
		t.Errorf("short password: %d %q", code, errOut)
	}
	if code, _, errOut := cmd("", "users", "create", "--name", "erin", "--role", "root"); code != 1 || !strings.Contains(errOut, "role") {
		t.Errorf("bad role: %d %q", code, errOut)
	}
	if code, _, _ := cmd("", "users", "create", "--name", "x"); code != 2 {
		t.Errorf("missing --role: exit %d, want 2", code)
	}
	code, out, errOut := cmd("", "tokens", "create", "--user", "ci", "--name", "github", "--expires-in", "720h")
	if code != 0 {
		t.Fatalf("tokens create: %d %q", code, errOut)
	}
	token := strings.TrimSpace(out)
	svc := auth.NewService(db.Pool, auth.Config{})
	id, err := svc.LookupToken(context.Background(), token)
	if err != nil || id.User.Name != "ci" || id.User.Role != auth.RoleContributor {
		t.Fatalf("printed token %q does not work: %v %+v", token, err, id.User)
	}
	if _, err := svc.Authenticate(context.Background(), "carol", "a-long-enough-password"); err != nil {
		t.Errorf("password from stdin: %v", err)
	}
	if code, _, errOut := cmd("", "tokens", "create", "--user", "nobody", "--name", "x"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("token for unknown user: %d %q", code, errOut)
	}
	// The audit log says the command line did it.
	var actor string
	if err := db.Pool.QueryRow(context.Background(), `SELECT actor_name FROM audit_log WHERE action = 'user.create' AND target_id = 'carol'`).Scan(&actor); err != nil || actor != "cli" {
		t.Errorf("audit actor = %q, %v; want cli", actor, err)
	}
	if code, out, _ := cmd("", "migrate", "down", "--all"); code != 0 || !strings.Contains(out, "schema version 0") {
		t.Errorf("migrate down --all: %d %q", code, out)
	}
	if code, out, _ := cmd("", "migrate", "force", "0"); code != 0 || !strings.Contains(out, "schema version 0 ") {
		t.Errorf("migrate force 0: %d %q", code, out)
	}
	if code, _, _ := cmd("", "migrate", "force", "99"); code != 2 {
		t.Errorf("migrate force beyond the latest version: exit %d, want 2", code)
	}
	if code, out, _ := cmd("", "migrate", "up"); code != 0 || !strings.Contains(out, latest) {
		t.Errorf("migrate up: %d %q", code, out)
	}
	// A failed migration leaves the schema dirty: serve and up refuse it,
	// force after a manual repair clears it.
	if _, err := db.Pool.Exec(context.Background(), `UPDATE schema_migrations SET dirty = true`); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := cmd("", "migrate", "up"); code != 1 || !strings.Contains(errOut, "dirty") || !strings.Contains(errOut, "migrate force") {
		t.Errorf("migrate up on a dirty schema: %d %q", code, errOut)
	}
	if code, out, _ := cmd("", "migrate", "force", fmt.Sprint(database.LatestVersion())); code != 0 || !strings.Contains(out, latest) || strings.Contains(out, "dirty") {
		t.Errorf("migrate force: %d %q", code, out)
	}
	if code, _, _ := cmd("", "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}

// TestWebhookKeyRotationCommand: the operator's steps of docs/operations.md
// — the new key with the old one as previous, `webhooks reseal`, then the
// new key alone.
func TestWebhookKeyRotationCommand(t *testing.T) {
	db := testenv.NewDB(t)
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	b64 := base64.StdEncoding.EncodeToString
	sealer, _ := webhook.NewSealer(oldKey)
	ctx := audit.WithActor(context.Background(), audit.Actor{Name: "test"})
	if _, _, err := webhook.NewService(db.Pool, sealer, webhook.AddressPolicy{}).Create(ctx, webhook.NewEndpoint{URL: "https://serving.example.com/hooks"}); err != nil {
		t.Fatal(err)
	}
	reseal := func(vars map[string]string) (int, string, string) {
		vars["SLIPWAY_DATABASE_URL"] = db.URL
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"webhooks", "reseal"}, envFunc(vars), nil, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, _, errOut := reseal(map[string]string{}); code != 2 || !strings.Contains(errOut, "SLIPWAY_WEBHOOK_KEY") {
		t.Errorf("reseal without a key: exit %d, %q; want 2 naming the setting", code, errOut)
	}
	if code, _, errOut := reseal(map[string]string{"SLIPWAY_WEBHOOK_KEY": b64(newKey)}); code != 1 || !strings.Contains(errOut, "opens with neither") {
		t.Errorf("reseal with the new key but not the old: exit %d, %q; want 1", code, errOut)
	}
	code, out, errOut := reseal(map[string]string{"SLIPWAY_WEBHOOK_KEY": b64(newKey), "SLIPWAY_WEBHOOK_KEY_PREVIOUS": b64(oldKey)})
	if code != 0 || !strings.Contains(out, "resealed the secrets of 1 of 1 webhook endpoints") || !strings.Contains(out, "no longer needed") {
		t.Fatalf("reseal: exit %d, %q %q", code, out, errOut)
	}
	if code, out, _ := reseal(map[string]string{"SLIPWAY_WEBHOOK_KEY": b64(newKey)}); code != 0 || !strings.Contains(out, "0 of 1") {
		t.Errorf("reseal with the new key alone afterwards: exit %d, %q; want 0 of 1", code, out)
	}
	var actor string
	if err := db.Pool.QueryRow(ctx, `SELECT actor_name FROM audit_log WHERE action = 'webhook.reseal_secrets'`).Scan(&actor); err != nil || actor != "cli" {
		t.Errorf("the reseal's audit entry: actor %q, %v", actor, err)
	}
}
