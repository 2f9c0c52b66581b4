package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// What `make run` does on a first start, as a new user sees it: the demo
// is loaded with an endpoint for the example receiver, the receiver and
// Slipway start, the receiver loads what production holds; a reviewer
// approves the waiting request and the receiver loads the new version.
func TestDemoFirstStartToServing(t *testing.T) {
	env := serverEnv(t)
	key := make([]byte, 32)
	rand.Read(key)
	env["SLIPWAY_WEBHOOK_KEY"] = base64.StdEncoding.EncodeToString(key)
	env["SLIPWAY_WEBHOOK_ALLOW_PRIVATE"] = "true"
	dir := t.TempDir()
	receiverAddr := freeAddr(t)
	hookURL := "http://" + receiverAddr + "/hooks"
	secretFile := filepath.Join(dir, "receiver.secret")

	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"demo", "--webhook-url", hookURL, "--secret-file", secretFile}, envFunc(env), strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("demo exited %d: %s %s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "Loaded the demo: models session-recs and churn-scores") || !strings.Contains(out.String(), "A promotion waits for review: /promotions/") {
		t.Fatalf("demo said:\n%s", out.String())
	}
	var pending int64
	fmt.Sscanf(out.String()[strings.Index(out.String(), "/promotions/"):], "/promotions/%d", &pending)
	secret, err := os.ReadFile(secretFile)
	if err != nil || !strings.HasPrefix(string(secret), "whsec_") {
		t.Fatalf("secret file: %q %v", secret, err)
	}
	if st, _ := os.Stat(secretFile); st.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode %v", st.Mode())
	}

	// a second run leaves the registry alone
	out.Reset()
	if code := run(context.Background(), []string{"demo"}, envFunc(env), strings.NewReader(""), &out, io.Discard); code != 0 || !strings.Contains(out.String(), "not empty") {
		t.Fatalf("second demo: %d %s", code, out.String())
	}
	if code := run(context.Background(), []string{"demo", "--secret-file", secretFile}, envFunc(env), strings.NewReader(""), io.Discard, io.Discard); code != 2 {
		t.Fatalf("--secret-file without --webhook-url exited %d", code)
	}

	// the example receiver, built as a user builds it
	bin := filepath.Join(dir, "serving-receiver")
	build := exec.Command("go", "build", "-o", bin, "../../examples/serving-receiver")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the receiver: %v\n%s", err, b)
	}
	logs := newSyncBuffer()
	receiver := exec.Command(bin, "-addr", receiverAddr, "-dir", filepath.Join(dir, "models"))
	receiver.Env = append(os.Environ(), "SLIPWAY_WEBHOOK_SECRET="+strings.TrimSpace(string(secret)))
	receiver.Stdout, receiver.Stderr = logs, logs
	if err := receiver.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { receiver.Process.Kill(); receiver.Wait() })

	base, _, _, _ := startServe(t, env)
	waitForLog(t, logs, "loaded model session-recs version 2 for stage production")
	waitForLog(t, logs, "loaded model churn-scores version 1 for stage production")

	// the bootstrap admin reviews the waiting request (four eyes: the CI
	// pipeline asked for it)
	body := call(t, base, "POST", fmt.Sprintf("/api/v1/promotions/%d/reviews", pending), "application/json",
		strings.NewReader(`{"decision": "approve", "comment": "DE regression is within the noise of the holdout"}`), 200)
	var p struct{ Status string }
	if err := json.Unmarshal(body, &p); err != nil || p.Status != "promoted" {
		t.Fatalf("review: %s", body)
	}
	waitForLog(t, logs, "loaded model session-recs version 4 for stage production")
	if _, err := os.Stat(filepath.Join(dir, "models", "session-recs", "production")); err != nil {
		t.Logf("receiver directory layout: %v", err)
	}
}

func waitForLog(t *testing.T, logs *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the receiver never logged %q:\n%s", want, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
