package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestChildServe is `slipway serve` in a process of its own, for the test
// that kills it; it does nothing unless asked to.
func TestChildServe(t *testing.T) {
	if os.Getenv("SLIPWAY_TEST_CHILD") != "serve" {
		return
	}
	os.Exit(run(context.Background(), []string{"serve"}, os.Getenv, strings.NewReader(""), io.Discard, os.Stderr))
}

func startChild(t *testing.T, env map[string]string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildServe$")
	cmd.Env = append(os.Environ(), "SLIPWAY_TEST_CHILD=serve")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if res, err := http.Get("http://" + env["SLIPWAY_ADDR"] + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return cmd
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child server is not ready:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func call(t *testing.T, base, method, path, ct string, body io.Reader, want int) []byte {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, body)
	req.Header.Set("Authorization", "Bearer "+bootstrapToken)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	return b
}

// A promotion commits; the receiver is down; Slipway is killed with
// SIGKILL. After the restart the message is delivered, with the webhook-id
// it had before the kill.
func TestWebhookSurvivesKill9(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	env := serverEnv(t)
	env["SLIPWAY_WEBHOOK_KEY"] = base64.StdEncoding.EncodeToString(key)
	env["SLIPWAY_WEBHOOK_ALLOW_PRIVATE"] = "true"
	recvAddr := freeAddr(t) // nothing listens there yet
	base := "http://" + env["SLIPWAY_ADDR"]

	child := startChild(t, env)
	call(t, base, "POST", "/api/v1/models", "application/json", strings.NewReader(`{"name":"m"}`), 201)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("metadata", `{}`)
	fw, _ := mw.CreateFormFile("file", "model.bin")
	fw.Write([]byte("weights"))
	mw.Close()
	call(t, base, "POST", "/api/v1/models/m/versions", mw.FormDataContentType(), &buf, 201)
	var ep struct {
		ID int64 `json:"id"`
	}
	json.Unmarshal(call(t, base, "POST", "/api/v1/webhooks", "application/json",
		strings.NewReader(fmt.Sprintf(`{"url":"http://%s/hooks","event_types":["stage.moved"]}`, recvAddr)), 201), &ep)
	call(t, base, "POST", "/api/v1/models/m/versions/1/promotions", "application/json",
		strings.NewReader(`{"stage":"production","reason":"launch","override":true}`), 201)

	// the first attempt fails (nobody listens) and is logged
	var msgID string
	deadline := time.Now().Add(20 * time.Second)
	for msgID == "" {
		var log struct {
			Items []struct {
				WebhookID string `json:"webhook_id"`
				Attempts  int    `json:"attempts"`
				Status    string `json:"status"`
			} `json:"items"`
		}
		json.Unmarshal(call(t, base, "GET", fmt.Sprintf("/api/v1/webhooks/%d/deliveries", ep.ID), "", nil, 200), &log)
		if len(log.Items) == 1 && log.Items[0].Attempts >= 1 {
			if log.Items[0].Status != "pending" {
				t.Fatalf("after a refused connection: %+v", log.Items[0])
			}
			msgID = log.Items[0].WebhookID
		} else if time.Now().After(deadline) {
			t.Fatalf("no attempt logged: %+v", log.Items)
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err := child.Process.Kill(); err != nil { // SIGKILL: no shutdown at all
		t.Fatal(err)
	}
	child.Wait()

	var mu sync.Mutex
	var got []string
	ln, err := net.Listen("tcp", recvAddr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("webhook-id"))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	startChild(t, env)
	deadline = time.Now().Add(30 * time.Second) // the retry is due about 5 s after the first attempt
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != msgID {
		t.Fatalf("after the restart the receiver got %v, want [%s]", got, msgID)
	}
}
