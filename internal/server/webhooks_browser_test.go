package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/slipway-ml/slipway/internal/auth"
)

func TestBrowserJourneyWebhooks(t *testing.T) {
	e := newEnv(t, withWebhookDelivery)
	var mu sync.Mutex
	var types []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		types = append(types, string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	ctx, problems := newBrowser(t)
	do := stepper(t, ctx, problems)
	do("sign in as an admin and add an endpoint",
		chromedp.Navigate(e.url+"/login"),
		chromedp.WaitVisible(css(`[data-testid=login-name]`)),
		chromedp.SendKeys(css(`[data-testid=login-name]`), userOf(auth.RoleAdmin)),
		chromedp.SendKeys(css(`[data-testid=login-password]`), testPassword),
		chromedp.Click(css(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(css(`[data-testid=nav-webhooks]`)),
		chromedp.Click(css(`[data-testid=nav-webhooks]`)),
		chromedp.WaitVisible(css(`[data-testid=webhooks-empty]`)),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid=webhook-add]').closest('details').open = true`),
		chromedp.SendKeys(css(`[data-testid=webhook-url]`), recv.URL+"/hooks"),
		chromedp.Click(css(`[data-testid=webhook-save]`)),
		chromedp.WaitVisible(css(`[data-testid=webhook-secret]`)),
	)
	if got := text(t, ctx, `[data-testid=webhook-secret]`); !strings.HasPrefix(got, "whsec_") {
		t.Errorf("secret shown: %q", got)
	}
	do("open it and send a test event",
		chromedp.Click(css(`[data-testid=webhooks-table] a`)),
		chromedp.WaitVisible(css(`[data-testid=webhook-test]`)),
		chromedp.Click(css(`[data-testid=webhook-test]`)),
		chromedp.WaitVisible(css(`[data-testid=webhook-notice]`)),
	)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(types)
		mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	if len(types) != 1 || !strings.Contains(types[0], `"type":"webhook.test"`) {
		t.Fatalf("the receiver got %v", types)
	}
	mu.Unlock()
	do("the delivery log shows it delivered",
		chromedp.Navigate(e.url+"/webhooks/1?status=delivered"),
		chromedp.WaitVisible(css(`[data-testid=deliveries-table]`)),
	)
	if got := text(t, ctx, `[data-testid=deliveries-table] tbody`); !strings.Contains(got, "webhook.test") || !strings.Contains(got, "delivered") {
		t.Errorf("log: %q", got)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("browser problems: %v", p)
	}
}
