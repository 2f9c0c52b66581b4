package server_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/slipway-ml/slipway/internal/auth"
)

// chromium finds the browser, or skips the test (fails under CI).
func chromium(t *testing.T) string {
	for _, name := range []string{os.Getenv("SLIPWAY_TEST_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium found: install it (apt-get install chromium) or set SLIPWAY_TEST_CHROMIUM"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// newBrowser starts headless Chromium. Console errors (a CSP violation, a
// failed script) are collected: a journey that causes one fails. Dialogs
// (hx-confirm) are accepted, as a user who clicks OK.
func newBrowser(t *testing.T) (context.Context, func() []string) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	var mu sync.Mutex
	var problems []string
	note := func(s string) {
		mu.Lock()
		problems = append(problems, s)
		mu.Unlock()
	}
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			note("exception: " + ev.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			// 4xx answers are part of the journeys (a wrong password).
			if ev.Entry.Level == log.EntryLevelError && !strings.Contains(ev.Entry.Text, "favicon") && !strings.Contains(ev.Entry.Text, "status of 4") {
				note("console: " + ev.Entry.Text)
			}
		}
	}))
	t.Cleanup(func() { cancelC(); cancelA() })
	// The first Run starts the browser and must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	tctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelT)
	return tctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

// stepper returns a func that runs the actions of one named step of a
// journey and stops the test, with the browser's problems, if one fails.
func stepper(t *testing.T, ctx context.Context, problems func() []string) func(string, ...chromedp.Action[chromedp.Void]) {
	return func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v (browser problems: %v)", step, err, problems())
		}
	}
}

func css(s string) chromedp.CSS { return chromedp.CSS(s) }

// waitFor waits until the JavaScript expression is true on the page.
func waitFor(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(10*time.Second))(ctx, t)
		return chromedp.Void{}, err
	}
}

// htmxReady waits until htmx has loaded (it is deferred) and processed the
// page, so that the events a test fires are heard.
var htmxReady = waitFor(`document.readyState === 'complete' && typeof htmx !== 'undefined'`)

// text reads the text of the element sel.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func TestBrowserJourneyTokens(t *testing.T) {
	e := newEnv(t)
	ctx, problems := newBrowser(t)
	do := stepper(t, ctx, problems)

	do("sign in",
		chromedp.Navigate(e.url+"/settings/tokens"),
		// Not signed in: the login page, which comes back here afterwards.
		chromedp.WaitVisible(css(`[data-testid=login-form]`)),
		chromedp.SendKeys(css(`[data-testid=login-name]`), "admin"),
		chromedp.SendKeys(css(`[data-testid=login-password]`), testPassword),
		chromedp.Click(css(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(css(`[data-testid=token-form]`)),
	)
	if got := text(t, ctx, `[data-testid=whoami]`); !strings.Contains(got, "admin") {
		t.Errorf("whoami = %q", got)
	}
	do("dashboard", chromedp.Navigate(e.url+"/"), chromedp.WaitVisible(css(`[data-testid=count-users]`)))
	if got := text(t, ctx, `[data-testid=count-users]`); got != "4" {
		t.Errorf("dashboard user count = %q, want 4", got)
	}
	do("create a token",
		chromedp.Navigate(e.url+"/settings/tokens"),
		chromedp.WaitVisible(css(`[data-testid=token-name]`)),
		chromedp.SendKeys(css(`[data-testid=token-name]`), "browser-made"),
		chromedp.Click(css(`[data-testid=token-create]`)),
		chromedp.WaitVisible(css(`[data-testid=token-secret]`)),
	)
	secret := text(t, ctx, `[data-testid=token-secret]`)
	id, err := e.auth.LookupToken(context.Background(), secret)
	if err != nil || id.User.Name != "admin" {
		t.Fatalf("the token shown in the browser does not work: %q %v", secret, err)
	}

	// Revoke it with its button (htmx, after the confirmation dialog).
	revoke := `[data-testid=revoke-` + itoa(id.TokenID) + `]`
	row := `[data-testid=token-` + itoa(id.TokenID) + `]`
	do("revoke", htmxReady, chromedp.Click(css(revoke)), chromedp.WaitNotPresent(css(revoke)))
	if got := text(t, ctx, row+` .badge`); got != "revoked" {
		t.Errorf("status after revoke = %q", got)
	}
	if _, err := e.auth.LookupToken(context.Background(), secret); err == nil {
		t.Error("the token still works after revocation in the browser")
	}

	// Sign out: back to the login page; the dashboard asks to sign in.
	do("sign out",
		chromedp.Click(css(`[data-testid=logout]`)),
		chromedp.WaitVisible(css(`[data-testid=login-form]`)),
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible(css(`[data-testid=login-form]`)),
	)
	if p := problems(); len(p) > 0 {
		t.Errorf("the browser reported problems: %v", p)
	}
}

func TestBrowserJourneyAdmin(t *testing.T) {
	e := newEnv(t)
	ctx, problems := newBrowser(t)
	do := stepper(t, ctx, problems)

	do("wrong password",
		chromedp.Navigate(e.url+"/login"),
		chromedp.WaitVisible(css(`[data-testid=login-name]`)),
		chromedp.SendKeys(css(`[data-testid=login-name]`), "admin"),
		chromedp.SendKeys(css(`[data-testid=login-password]`), "not the password"),
		chromedp.Click(css(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(css(`[data-testid=login-error]`)),
	)
	if got := text(t, ctx, `[data-testid=login-error]`); !strings.Contains(got, "Wrong user name or password") {
		t.Errorf("wrong-password message = %q", got)
	}
	do("sign in",
		chromedp.SetValue(css(`[data-testid=login-password]`), testPassword),
		chromedp.Click(css(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(css(`[data-testid=nav-dashboard]`)),
	)
	do("create a user",
		chromedp.Navigate(e.url+"/admin/users"),
		chromedp.WaitVisible(css(`[data-testid=user-name]`)),
		chromedp.SendKeys(css(`[data-testid=user-name]`), "nina"),
		chromedp.SetValue(css(`[data-testid=user-role]`), "reviewer"),
		chromedp.SendKeys(css(`[data-testid=user-password]`), "nina-password-long"),
		chromedp.Click(css(`[data-testid=user-create]`)),
		chromedp.WaitVisible(css(`[data-testid=users-notice]`)),
		chromedp.WaitVisible(css(`[data-testid=user-nina]`)),
	)
	if got := text(t, ctx, `[data-testid=users-notice]`); !strings.Contains(got, "nina") {
		t.Errorf("notice = %q", got)
	}
	u, err := e.auth.GetUser(context.Background(), "nina")
	if err != nil || u.Role != auth.RoleReviewer {
		t.Errorf("user made in the browser: %+v %v", u, err)
	}
	// Her page: the admin issues her a token.
	do("issue a token on the user page",
		chromedp.Click(css(`[data-testid=user-link-nina]`)),
		chromedp.WaitVisible(css(`[data-testid=user-title]`)),
		chromedp.SendKeys(css(`[data-testid=token-name]`), "for-nina"),
		chromedp.Click(css(`[data-testid=token-create]`)),
		chromedp.WaitVisible(css(`[data-testid=token-secret]`)),
	)
	id, err := e.auth.LookupToken(context.Background(), text(t, ctx, `[data-testid=token-secret]`))
	if err != nil || id.User.Name != "nina" {
		t.Errorf("the token issued on nina's page acts as %q (%v)", id.User.Name, err)
	}
	// The audit log shows her creation; filter through htmx.
	do("filter the audit log",
		chromedp.Navigate(e.url+"/audit"),
		chromedp.WaitVisible(css(`[data-testid=audit-filter]`)),
		chromedp.SendKeys(css(`[data-testid=audit-filter] input[name=action]`), "user.create"),
		chromedp.SendKeys(css(`[data-testid=audit-filter] input[name=target_id]`), "nina"),
		chromedp.Submit(css(`[data-testid=audit-filter] input[name=action]`)),
		chromedp.WaitNotPresent(css(`[data-testid=audit-rows] tr:nth-child(2)`)),
	)
	rows := text(t, ctx, `[data-testid=audit-rows]`)
	if !strings.Contains(rows, "user.create") || !strings.Contains(rows, "nina") {
		t.Errorf("filtered audit rows = %q", rows)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("the browser reported problems: %v", p)
	}
}

func itoa(n int64) string { return strconvFormat(n) }

func TestBrowserJourneyModels(t *testing.T) {
	e := newEnv(t)
	c := e.as(auth.RoleContributor)
	for _, name := range []string{"fraud-scorer", "churn"} {
		createModel(t, c, map[string]any{"name": name, "tags": map[string]string{"team": "risk"}})
	}
	if res := register(c, "fraud-scorer", `{"framework":"lightgbm","source":{"git_commit":"abcdef1234567"}}`,
		file{"model/model.txt", strings.NewReader("tree")}); res.Status != 201 {
		t.Fatalf("register: %d %s", res.Status, res.Body)
	}
	ctx, problems := newBrowser(t)
	do := stepper(t, ctx, problems)
	do("sign in and open Models",
		chromedp.Navigate(e.url+"/login"),
		chromedp.WaitVisible(css(`[data-testid=login-name]`)),
		chromedp.SendKeys(css(`[data-testid=login-name]`), userOf(auth.RoleViewer)),
		chromedp.SendKeys(css(`[data-testid=login-password]`), testPassword),
		chromedp.Click(css(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(css(`[data-testid=nav-models]`)),
		chromedp.Click(css(`[data-testid=nav-models]`)),
		chromedp.WaitVisible(css(`[data-testid=model-churn]`)),
	)
	do("search as you type (htmx)",
		htmxReady,
		chromedp.SendKeys(css(`[data-testid=models-q]`), "fra"),
		chromedp.WaitNotPresent(css(`[data-testid=model-churn]`)),
		chromedp.WaitVisible(css(`[data-testid=model-fraud-scorer]`)),
	)
	do("model page, then version page",
		chromedp.Click(css(`[data-testid=model-fraud-scorer] a`)),
		chromedp.WaitVisible(css(`[data-testid=version-1]`)),
		chromedp.Click(css(`[data-testid=version-1] a`)),
		chromedp.WaitVisible(css(`[data-testid=artifacts-table]`)),
	)
	if got := text(t, ctx, `[data-testid=version-title]`); got != "fraud-scorer v1" {
		t.Errorf("version title = %q", got)
	}
	if got := text(t, ctx, `[data-testid="artifact-model/model.txt"] td.sha`); got != sha(strings.NewReader("tree")) {
		t.Errorf("sha256 on the page = %q", got)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("the browser reported problems: %v", p)
	}
}
