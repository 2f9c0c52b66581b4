package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/chromedp/chromedp"

	"github.com/slipway-ml/slipway/internal/auth"
)

// signInAs fills the sign-in form the page shows and sends it.
func signInAs(name string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.WaitVisible(css(`[data-testid=login-name]`)),
		chromedp.SendKeys(css(`[data-testid=login-name]`), name),
		chromedp.SendKeys(css(`[data-testid=login-password]`), testPassword),
		chromedp.Click(css(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(css(`[data-testid=nav-dashboard]`)),
	}
}

// layoutProblems is a script that lists what breaks the layout of the page
// at the window's width: a page wider than the window (a sideways scroll
// of the whole page), or one of the visible selectors not visible.
const layoutProblems = `(sels) => {
	const out = [];
	const w = window.innerWidth;
	const page = document.documentElement.scrollWidth;
	if (page > w) {
		const wide = Array.from(document.querySelectorAll('main *, header *')).filter(e => {
			const r = e.getBoundingClientRect();
			return r.right > w + 1 && !e.closest('.table-wrap, .graph-scroll, .secret');
		}).slice(0, 3).map(e => e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).split(' ').join('.') : '') + ' ' + Math.round(e.getBoundingClientRect().right) + 'px');
		out.push('page is ' + page + 'px wide in a ' + w + 'px window; wide: ' + wide.join(', '));
	}
	for (const s of sels) {
		const e = document.querySelector(s);
		if (!e) { out.push(s + ': missing'); continue; }
		const r = e.getBoundingClientRect();
		const st = getComputedStyle(e);
		if (r.width === 0 || r.height === 0 || st.visibility === 'hidden' || st.display === 'none') out.push(s + ': not visible');
		else if (r.left < 0 || r.right > w + 1) out.push(s + ': outside the window (' + Math.round(r.left) + '..' + Math.round(r.right) + ')');
	}
	return out;
}`

// TestBrowserNarrowWindow opens the key pages in a laptop window and in a
// narrow (phone-sized) one: no page scrolls sideways as a whole (wide
// tables scroll inside their wrapper), the navigation and the page's main
// parts are on screen, and the champion and the challenger stack.
func TestBrowserNarrowWindow(t *testing.T) {
	e := newEnv(t)
	id := seedReview(t, e)
	ctx, problems := newBrowser(t)
	do := stepper(t, ctx, problems)
	do("sign in as an admin (the longest navigation)",
		append([]chromedp.Action[chromedp.Void]{chromedp.Navigate(e.url + "/login")}, signInAs(userOf(auth.RoleAdmin))...)...)

	pages := []struct {
		path    string
		visible []string
	}{
		{"/models", []string{`[data-testid=nav-models]`, `[data-testid=logout]`, `[data-testid=models-filter] button`, `[data-testid=model-session-recs] a`}},
		{"/models/session-recs", []string{`[data-testid=model-name]`, `[data-testid=stages-panel]`, `[data-testid=version-2] a`, `[data-testid=holder-at]`}},
		{"/models/session-recs/versions/2", []string{`[data-testid=version-title]`, `[data-testid=version-source]`, `[data-testid="download-model.bin"]`}},
		{fmt.Sprintf("/promotions/%d", id), []string{`[data-testid=promotion-title]`, `[data-testid=compare-heads]`, `[data-testid=review-approve]`, `[data-testid=review-comment]`}},
		{"/reviews", []string{`[data-testid=nav-reviews]`, fmt.Sprintf(`[data-testid=review-%d] [data-testid=review-link]`, id)}},
		{"/datasets/sessions-train/versions/1", []string{`[data-testid=dataset-version-title]`, `[data-testid=lineage-explore]`}},
		{"/audit", []string{`[data-testid=audit-filter] button`}},
		{"/settings/tokens", []string{`[data-testid=token-name]`, `[data-testid=token-create]`}},
	}
	for _, size := range []struct{ w, h int64 }{{1366, 768}, {400, 800}} {
		do(fmt.Sprintf("a %d×%d window", size.w, size.h), chromedp.EmulateViewport(size.w, size.h))
		for _, pg := range pages {
			do(pg.path, chromedp.Navigate(e.url+pg.path), chromedp.WaitVisible(css(`main`)))
			sels, _ := json.Marshal(pg.visible)
			got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string]("("+layoutProblems+")("+string(sels)+")"))
			if err != nil {
				t.Fatalf("%s: %v", pg.path, err)
			}
			for _, p := range got {
				t.Errorf("%d px, %s: %s", size.w, pg.path, p)
			}
			if dir := os.Getenv("SLIPWAY_TEST_SCREENSHOTS"); dir != "" {
				if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
					name := fmt.Sprintf("%d-%s.png", size.w, strings.NewReplacer("/", "_", "?", "_").Replace(strings.Trim(pg.path, "/")))
					os.WriteFile(filepath.Join(dir, name), png, 0o644)
				}
			}
		}
	}

	// In the narrow window the candidate and the champion are one above
	// the other, not side by side.
	do("the promotion page, narrow", chromedp.Navigate(e.url+fmt.Sprintf("/promotions/%d", id)), chromedp.WaitVisible(css(`[data-testid=compare-heads]`)))
	stacked, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		const [a, b] = document.querySelectorAll('[data-testid=compare-heads] > .side');
		const ra = a.getBoundingClientRect(), rb = b.getBoundingClientRect();
		return rb.top >= ra.bottom && Math.abs(ra.left - rb.left) < 1;
	})()`))
	if err != nil || !stacked {
		t.Errorf("candidate and champion side by side in a 400 px window (stacked=%v, %v)", stacked, err)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("the browser reported problems: %v", p)
	}
}

// focused describes the element that has the keyboard focus.
const focused = `(() => { const e = document.activeElement; return e ? (e.dataset.testid || e.id || e.tagName.toLowerCase()) : ''; })()`

// TestBrowserKeyboard signs in and moves around with the keyboard only:
// the sign-in form is filled with Tab and sent with Enter; on every page
// the first Tab reaches the skip link, visibly, and Enter on it moves the
// focus to the content.
func TestBrowserKeyboard(t *testing.T) {
	e := newEnv(t)
	ctx, problems := newBrowser(t)
	do := stepper(t, ctx, problems)
	at := func(want string) {
		t.Helper()
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](focused))
		if err != nil || got != want {
			t.Fatalf("focus on %q (%v), want %q", got, err, want)
		}
	}

	do("the sign-in page", chromedp.Navigate(e.url+"/login"), chromedp.WaitVisible(css(`[data-testid=login-form]`)))
	// From the top of the page: the skip link, then the user name field.
	do("Tab", chromedp.KeyEvent("\t"))
	at("skip-link")
	do("Tab", chromedp.KeyEvent("\t"))
	at("login-name")
	do("type the name, Tab", chromedp.KeyEvent(userOf(auth.RoleViewer)), chromedp.KeyEvent("\t"))
	at("login-password")
	do("type the password, Enter",
		chromedp.KeyEvent(testPassword),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(css(`[data-testid=nav-dashboard]`)),
	)
	if got := text(t, ctx, `[data-testid=whoami]`); !strings.Contains(got, userOf(auth.RoleViewer)) {
		t.Errorf("signed in as %q", got)
	}

	do("the models page", chromedp.Navigate(e.url+"/models"), chromedp.WaitVisible(css(`[data-testid=models-filter]`)))
	if cur, err := chromedp.Run(ctx, chromedp.AttributeValue(css(`[data-testid=nav-models]`), "aria-current")); err != nil || cur.Value != "page" {
		t.Errorf("the current page in the navigation: aria-current=%q (%v)", cur.Value, err)
	}
	do("Tab", chromedp.KeyEvent("\t"))
	at("skip-link")
	// the skip link shows when focused, with a visible focus ring
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		const e = document.activeElement, r = e.getBoundingClientRect(), s = getComputedStyle(e);
		return r.top >= 0 && r.bottom <= window.innerHeight && r.width > 0 && s.outlineStyle === 'solid' && parseFloat(s.outlineWidth) >= 2;
	})()`))
	if err != nil || !shown {
		t.Errorf("the focused skip link is not visible with a focus ring (%v)", err)
	}
	do("Enter on the skip link", chromedp.KeyEvent("\r"))
	at("main")
	do("Tab", chromedp.KeyEvent("\t"))
	inMain, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.activeElement.closest('main') !== null && document.activeElement.tagName === 'INPUT'`))
	if err != nil || !inMain {
		t.Errorf("Tab after the skip link does not reach the search field (%v)", err)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("the browser reported problems: %v", p)
	}
}

// TestUIReviewQueuePages pages the review queue, oldest first, with plain
// links.
func TestUIReviewQueuePages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ci := e.as(auth.RoleContributor)
	createModel(t, ci, map[string]any{"name": "queued"})
	var ids []int64
	for v := 1; v <= 3; v++ {
		registerVersion(t, ci, "queued", fmt.Sprint(v))
		var p struct{ ID int64 }
		res := ci.Send("POST", fmt.Sprintf("/api/v1/models/queued/versions/%d/promotions", v), map[string]any{"stage": "staging", "reason": "try it"})
		if res.Status != http.StatusCreated {
			t.Fatalf("request v%d: %d %s", v, res.Status, res.Body)
		}
		res.Decode(t, &p)
		ids = append(ids, p.ID)
	}
	b := e.browser()
	b.login(userOf(auth.RoleReviewer), testPassword)
	rows := func(doc *goquery.Document) []string {
		var out []string
		doc.Find(`[data-testid=reviews-table] tbody tr`).Each(func(_ int, s *goquery.Selection) {
			out = append(out, s.AttrOr("data-testid", ""))
		})
		return out
	}
	doc := htmlDoc(t, b.do("GET", "/reviews?limit=2", nil, nil))
	if got, want := rows(doc), []string{fmt.Sprintf("review-%d", ids[0]), fmt.Sprintf("review-%d", ids[1])}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("first page %v, want %v (oldest first)", got, want)
	}
	next, ok := doc.Find(`a[data-testid=reviews-next]`).Attr("href")
	if !ok || !strings.HasPrefix(next, "/reviews?cursor=") {
		t.Fatalf("next page link: %q", next)
	}
	doc = htmlDoc(t, b.do("GET", next+"&limit=2", nil, nil))
	if got, want := rows(doc), []string{fmt.Sprintf("review-%d", ids[2])}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("second page %v, want %v", got, want)
	}
	if doc.Find(`[data-testid=reviews-next]`).Length() != 0 || doc.Find(`a[data-testid=reviews-next-first]`).AttrOr("href", "") != "/reviews" {
		t.Errorf("last page: a next link, or no link to the first page")
	}
}

// TestUIEmptyStatesAndLabels reads the pages of a fresh Slipway: each empty
// list says what goes there and how; every form control has a label;
// every table scrolls in a wrapper; every time shown has its exact value.
func TestUIEmptyStatesAndLabels(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	createModel(t, e.as(auth.RoleContributor), map[string]any{"name": "empty-model"})
	if _, err := e.auth.CreateUser(context.Background(), auth.NewUser{Name: "newbie", Role: auth.RoleViewer}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.login(userOf(auth.RoleAdmin), testPassword)
	empty := map[string]struct{ sel, want string }{
		"/models?q=zzz":        {`[data-testid=models-empty]`, "Clear the filters"},
		"/models/empty-model":  {`[data-testid=versions-empty]`, "POST /api/v1/models/empty-model/versions"},
		"/reviews":             {`[data-testid=reviews-empty]`, "Nothing waits for your review"},
		"/datasets":            {`[data-testid=datasets-empty]`, "POST /api/v1/datasets"},
		"/runs":                {`[data-testid=runs-empty]`, "POST /api/v1/runs"},
		"/webhooks":            {`[data-testid=webhooks-empty]`, "Add an endpoint"},
		"/admin/users/newbie":  {`[data-testid=tokens-empty]`, "Create one above"},
		"/audit?action=nobody": {`[data-testid=audit-empty]`, "Clear the filters"},
	}
	for path, want := range empty {
		doc := htmlDoc(t, b.do("GET", path, nil, nil))
		if got := doc.Find(want.sel).Text(); !strings.Contains(got, want.want) {
			t.Errorf("%s: %s = %q, want it to say %q", path, want.sel, got, want.want)
		}
	}
	for _, path := range []string{"/models", "/models/empty-model", "/reviews", "/datasets", "/runs", "/lineage", "/webhooks",
		"/settings/tokens", "/settings/password", "/admin/users", "/admin/users/admin", "/audit", "/models/empty-model/stages/production/policy"} {
		doc := htmlDoc(t, b.do("GET", path, nil, nil))
		if doc.Find(`a.skip-link[href="#main"]`).Length() != 1 || doc.Find(`main#main`).Length() != 1 {
			t.Errorf("%s: no skip link to main#main", path)
		}
		doc.Find(`input, select, textarea`).Each(func(_ int, s *goquery.Selection) {
			if s.AttrOr("type", "") == "hidden" {
				return
			}
			_, named := s.Attr("aria-label")
			id := s.AttrOr("id", "")
			if !named && s.Closest("label").Length() == 0 && (id == "" || doc.Find(`label[for="`+id+`"]`).Length() == 0) {
				t.Errorf("%s: <%s name=%q> has no label", path, goquery.NodeName(s), s.AttrOr("name", ""))
			}
		})
		doc.Find(`table`).Each(func(_ int, s *goquery.Selection) {
			if !s.Parent().HasClass("table-wrap") {
				t.Errorf("%s: table %q outside a .table-wrap", path, s.AttrOr("data-testid", ""))
			}
		})
		doc.Find(`time`).Each(func(_ int, s *goquery.Selection) {
			if s.AttrOr("datetime", "") == "" || s.AttrOr("title", "") == "" {
				t.Errorf("%s: <time> %q without datetime and title", path, s.Text())
			}
		})
		doc.Find(`div[hx-get], div[hx-post], span[hx-get], span[hx-post], [onclick]`).Each(func(_ int, s *goquery.Selection) {
			t.Errorf("%s: a clickable <%s>: use a link or a button", path, goquery.NodeName(s))
		})
		doc.Find(`[style]`).Each(func(_ int, s *goquery.Selection) {
			t.Errorf("%s: a style attribute on <%s> (the CSP refuses it)", path, goquery.NodeName(s))
		})
	}
}

// TestUIFieldErrors sends forms the services refuse: the alert above the
// form says what is wrong, and the message is next to its field too, which
// is marked invalid and points at it.
func TestUIFieldErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.login(userOf(auth.RoleAdmin), testPassword)
	forms := []struct {
		name, path string
		form       url.Values
		alert      string // the alert's data-testid
		field      string
	}{
		{"a token without a name", "/settings/tokens", url.Values{"name": {" "}, "expires_in_days": {"30"}}, "token-error", "name"},
		{"a new password too short", "/settings/password", url.Values{"current_password": {testPassword}, "new_password": {"short"}}, "password-error", "new_password"},
		{"a user with a bad name", "/admin/users", url.Values{"name": {"Not A Name"}, "role": {"viewer"}}, "users-error", "name"},
		{"a webhook without a URL", "/webhooks", url.Values{"url": {"not a url"}}, "webhook-error", "url"},
	}
	for _, f := range forms {
		res := b.do("POST", f.path, f.form, nil)
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", f.name, res.StatusCode)
			continue
		}
		doc := htmlDoc(t, res)
		if doc.Find(`[data-testid=`+f.alert+`][role=alert]`).Length() != 1 {
			t.Errorf("%s: no alert %s", f.name, f.alert)
		}
		msg := doc.Find(`[data-testid=field-error-` + f.field + `]`)
		control := doc.Find(`[name=` + f.field + `]`)
		id, _ := msg.Attr("id")
		if msg.Length() != 1 || strings.TrimSpace(msg.Text()) == "" || id == "" {
			t.Errorf("%s: no message next to the field %q", f.name, f.field)
			continue
		}
		if control.AttrOr("aria-invalid", "") != "true" || control.AttrOr("aria-describedby", "") != id {
			t.Errorf("%s: the field %q is not marked invalid and described by %q: aria-invalid=%q aria-describedby=%q",
				f.name, f.field, id, control.AttrOr("aria-invalid", ""), control.AttrOr("aria-describedby", ""))
		}
	}
}
