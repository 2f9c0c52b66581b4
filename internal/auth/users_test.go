package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/pagination"
)

var ignoreUserMeta = cmpopts.IgnoreFields(auth.User{}, "ID", "CreatedAt", "UpdatedAt")

func TestCreateUser(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := audit.WithActor(context.Background(), audit.Actor{Name: "cli"})
	tests := []struct {
		in   auth.NewUser
		want auth.User
	}{
		{auth.NewUser{Name: "alice", Role: auth.RoleAdmin, Password: "alice-password-1"},
			auth.User{Name: "alice", Role: auth.RoleAdmin, HasPassword: true}},
		{auth.NewUser{Name: "ci-bot", Role: auth.RoleContributor},
			auth.User{Name: "ci-bot", Role: auth.RoleContributor}},
		{auth.NewUser{Name: "r.view_2", Role: auth.RoleViewer},
			auth.User{Name: "r.view_2", Role: auth.RoleViewer}},
	}
	for _, tt := range tests {
		start := time.Now()
		got, err := svc.CreateUser(ctx, tt.in)
		if err != nil {
			t.Fatalf("CreateUser(%s): %v", tt.in.Name, err)
		}
		if diff := cmp.Diff(tt.want, got, ignoreUserMeta); diff != "" {
			t.Errorf("CreateUser(%s) (-want +got):\n%s", tt.in.Name, diff)
		}
		if got.ID == 0 || got.CreatedAt.Before(start.Add(-time.Minute)) {
			t.Errorf("CreateUser(%s): id %d, created %v", tt.in.Name, got.ID, got.CreatedAt)
		}
		stored, err := svc.GetUser(context.Background(), tt.in.Name)
		if err != nil {
			t.Fatalf("GetUser(%s): %v", tt.in.Name, err)
		}
		if diff := cmp.Diff(got, stored); diff != "" {
			t.Errorf("GetUser(%s) differs from what CreateUser returned (-create +get):\n%s", tt.in.Name, diff)
		}

		// Exactly one audit row, by the actor of ctx, without the hash or the password.
		rows := auditRows(t, pool, "user.create", tt.in.Name)
		if len(rows) != 1 {
			t.Fatalf("%d user.create audit rows for %s, want 1: %v", len(rows), tt.in.Name, rows)
		}
		var hash *string
		if err := pool.QueryRow(context.Background(), `SELECT password_hash FROM users WHERE name = $1`, tt.in.Name).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		if (hash != nil) != tt.want.HasPassword {
			t.Errorf("%s: password_hash set = %v, want %v", tt.in.Name, hash != nil, tt.want.HasPassword)
		}
		for _, leak := range []string{"argon2", "password_hash"} {
			if strings.Contains(rows[0], leak) {
				t.Errorf("audit row mentions %q: %s", leak, rows[0])
			}
		}
		if hash != nil && strings.Contains(rows[0], strings.Split(*hash, "$")[5]) {
			t.Errorf("audit row contains the password hash: %s", rows[0])
		}
		if tt.in.Password != "" && strings.Contains(rows[0], tt.in.Password) {
			t.Errorf("audit row contains the password: %s", rows[0])
		}
	}

	events, _, err := audit.NewLog(pool).List(context.Background(), audit.Filter{Action: "user.create", TargetID: "alice"}, pagination.Page{})
	if err != nil || len(events) != 1 {
		t.Fatalf("List = %v, %v", events, err)
	}
	var after map[string]any
	if err := json.Unmarshal(events[0].After, &after); err != nil {
		t.Fatal(err)
	}
	wantAfter := map[string]any{"name": "alice", "role": "admin", "disabled": false, "has_password": true}
	if diff := cmp.Diff(wantAfter, after); diff != "" {
		t.Errorf("audit after (-want +got):\n%s", diff)
	}
	if events[0].ActorName != "cli" || string(events[0].Before) != "null" {
		t.Errorf("audit actor %q, before %s; want cli, null", events[0].ActorName, events[0].Before)
	}
}

func TestCreateUserInvalid(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	tests := []struct {
		name string
		in   auth.NewUser
		want []string
	}{
		{"bad name", auth.NewUser{Name: "Bad Name", Role: auth.RoleViewer}, []string{"name"}},
		{"empty name", auth.NewUser{Role: auth.RoleViewer}, []string{"name"}},
		{"name too long", auth.NewUser{Name: strings.Repeat("a", 65), Role: auth.RoleViewer}, []string{"name"}},
		{"unknown role", auth.NewUser{Name: "bob", Role: "root"}, []string{"role"}},
		{"no role", auth.NewUser{Name: "bob"}, []string{"role"}},
		{"short password", auth.NewUser{Name: "bob", Role: auth.RoleViewer, Password: "short"}, []string{"password"}},
		{"everything wrong", auth.NewUser{Name: "-", Role: "god", Password: "x"}, []string{"name", "role", "password"}},
		{"reserved: system", auth.NewUser{Name: "system", Role: auth.RoleViewer}, []string{"name"}},
		{"reserved: cli", auth.NewUser{Name: "cli", Role: auth.RoleViewer}, []string{"name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.CreateUser(context.Background(), tt.in)
			if diff := cmp.Diff(tt.want, fieldsOf(t, err)); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
	if n := count(t, pool, `SELECT count(*) FROM users`); n != 0 {
		t.Errorf("%d users after invalid creations, want 0", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM audit_log`); n != 0 {
		t.Errorf("%d audit rows after invalid creations, want 0", n)
	}
}

func TestCreateUserDuplicate(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	createUser(t, svc, "alice", auth.RoleViewer, "")
	_, err := svc.CreateUser(context.Background(), auth.NewUser{Name: "alice", Role: auth.RoleAdmin})
	wantIs(t, err, errs.ErrConflict)
	u, err := svc.GetUser(context.Background(), "alice")
	if err != nil || u.Role != auth.RoleViewer {
		t.Errorf("GetUser(alice) = %+v, %v; want the original viewer", u, err)
	}
	if rows := auditRows(t, pool, "user.create", "alice"); len(rows) != 1 {
		t.Errorf("%d user.create audit rows, want 1 (the failed create rolls back its row)", len(rows))
	}
}

func TestGetUserNotFound(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	_, err := svc.GetUser(context.Background(), "nobody")
	wantIs(t, err, errs.ErrNotFound)
}

func TestListUsers(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	for _, name := range []string{"dave", "alice", "carol", "bob", "erin"} {
		createUser(t, svc, name, auth.RoleViewer, "")
	}
	var names []string
	p := pagination.Page{Limit: 2}
	for range 10 {
		users, next, err := svc.ListUsers(context.Background(), p)
		if err != nil {
			t.Fatalf("ListUsers: %v", err)
		}
		if len(users) > 2 {
			t.Fatalf("page of %d users, limit 2", len(users))
		}
		for _, u := range users {
			names = append(names, u.Name)
		}
		if next == "" {
			break
		}
		p.Cursor = next
	}
	if diff := cmp.Diff([]string{"alice", "bob", "carol", "dave", "erin"}, names); diff != "" {
		t.Errorf("names across pages (-want +got):\n%s", diff)
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := context.Background()
	alice := createUser(t, svc, "alice", auth.RoleReviewer, "alice-password-1")
	createUser(t, svc, "bob", auth.RoleViewer, "bob-password-22")
	if _, err := svc.UpdateUser(ctx, "bob", auth.UserUpdate{Disabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	createUser(t, svc, "ci", auth.RoleContributor, "")

	got, err := svc.Authenticate(ctx, "alice", "alice-password-1")
	if err != nil {
		t.Fatalf("Authenticate(alice, right password): %v", err)
	}
	if diff := cmp.Diff(alice, got); diff != "" {
		t.Errorf("Authenticate (-want +got):\n%s", diff)
	}

	failures := []struct{ name, user, pw string }{
		{"wrong password", "alice", "alice-password-2"},
		{"empty password", "alice", ""},
		{"unknown user", "mallory", "alice-password-1"},
		{"disabled user", "bob", "bob-password-22"},
		{"token-only user, empty password", "ci", ""},
		{"token-only user, some password", "ci", "anything-at-all-1"},
		{"over-long password", "alice", strings.Repeat("a", 300)},
	}
	var msgs []string
	for _, f := range failures {
		u, err := svc.Authenticate(ctx, f.user, f.pw)
		if !errors.Is(err, errs.ErrUnauthenticated) {
			t.Errorf("%s: Authenticate = %+v, %v; want ErrUnauthenticated", f.name, u, err)
			continue
		}
		if u != (auth.User{}) {
			t.Errorf("%s: Authenticate returned user %+v with its error", f.name, u)
		}
		msgs = append(msgs, err.Error())
	}
	// The message must not tell which part was wrong.
	for i, m := range msgs {
		if m != msgs[0] {
			t.Errorf("failure %q says %q, failure %q says %q: they must be alike", failures[i].name, m, failures[0].name, msgs[0])
		}
	}
}

func TestUpdateUserRoleIsAudited(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	createUser(t, svc, "root", auth.RoleAdmin, "")
	createUser(t, svc, "vic", auth.RoleViewer, "")
	ctx := audit.WithActor(context.Background(), audit.Actor{Name: "root"})

	got, err := svc.UpdateUser(ctx, "vic", auth.UserUpdate{Role: ptr(auth.RoleReviewer)})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if diff := cmp.Diff(auth.User{Name: "vic", Role: auth.RoleReviewer}, got, ignoreUserMeta); diff != "" {
		t.Errorf("UpdateUser (-want +got):\n%s", diff)
	}
	if stored, _ := svc.GetUser(context.Background(), "vic"); stored.Role != auth.RoleReviewer {
		t.Errorf("stored role = %s, want reviewer", stored.Role)
	}

	events, _, err := audit.NewLog(pool).List(context.Background(), audit.Filter{Action: "user.update", TargetID: "vic"}, pagination.Page{})
	if err != nil || len(events) != 1 {
		t.Fatalf("user.update events = %v, %v; want one", events, err)
	}
	var before, after map[string]any
	if err := json.Unmarshal(events[0].Before, &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(events[0].After, &after); err != nil {
		t.Fatal(err)
	}
	wantBefore := map[string]any{"name": "vic", "role": "viewer", "disabled": false, "has_password": false}
	wantAfter := map[string]any{"name": "vic", "role": "reviewer", "disabled": false, "has_password": false}
	if diff := cmp.Diff(wantBefore, before); diff != "" {
		t.Errorf("audit before (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantAfter, after); diff != "" {
		t.Errorf("audit after (-want +got):\n%s", diff)
	}
	if events[0].ActorName != "root" {
		t.Errorf("audit actor = %q, want root", events[0].ActorName)
	}
}

func TestUpdateUserPassword(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := context.Background()
	u := createUser(t, svc, "pat", auth.RoleViewer, "old-password-123")
	if _, err := svc.CreateSession(ctx, u, auth.SessionMeta{}); err != nil {
		t.Fatal(err)
	}

	_, err := svc.UpdateUser(ctx, "pat", auth.UserUpdate{Password: ptr("short")})
	if diff := cmp.Diff([]string{"password"}, fieldsOf(t, err)); diff != "" {
		t.Errorf("short password fields (-want +got):\n%s", diff)
	}

	got, err := svc.UpdateUser(ctx, "pat", auth.UserUpdate{Password: ptr("new-password-456")})
	if err != nil {
		t.Fatalf("UpdateUser(password): %v", err)
	}
	if !got.HasPassword {
		t.Error("HasPassword = false after setting a password")
	}
	if _, err := svc.Authenticate(ctx, "pat", "new-password-456"); err != nil {
		t.Errorf("Authenticate with the new password: %v", err)
	}
	if _, err := svc.Authenticate(ctx, "pat", "old-password-123"); !errors.Is(err, errs.ErrUnauthenticated) {
		t.Errorf("Authenticate with the old password = %v, want ErrUnauthenticated", err)
	}
	// A new password ends the other sessions.
	if n := count(t, pool, `SELECT count(*) FROM sessions WHERE user_id = $1`, u.ID); n != 0 {
		t.Errorf("%d sessions after a password change, want 0", n)
	}
	rows := auditRows(t, pool, "user.password.set", "pat")
	if len(rows) != 1 {
		t.Fatalf("%d user.password.set audit rows, want 1", len(rows))
	}
	for _, leak := range []string{"new-password-456", "argon2"} {
		if strings.Contains(rows[0], leak) {
			t.Errorf("audit row contains %q: %s", leak, rows[0])
		}
	}
}

func TestUpdateUserInvalid(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	createUser(t, svc, "vic", auth.RoleViewer, "")
	_, err := svc.UpdateUser(context.Background(), "vic", auth.UserUpdate{Role: ptr(auth.Role("owner"))})
	if diff := cmp.Diff([]string{"role"}, fieldsOf(t, err)); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	_, err = svc.UpdateUser(context.Background(), "nobody", auth.UserUpdate{Role: ptr(auth.RoleViewer)})
	wantIs(t, err, errs.ErrNotFound)
}

func TestDisablingUserEndsAccess(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := context.Background()
	u := createUser(t, svc, "dan", auth.RoleContributor, "")
	secret, _ := createToken(t, svc, "dan", "ci")
	sess, err := svc.CreateSession(ctx, u, auth.SessionMeta{RemoteAddr: "192.0.2.1", UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.LookupToken(ctx, secret); err != nil {
		t.Fatalf("LookupToken before disabling: %v", err)
	}
	if _, err := svc.LookupSession(ctx, sess.Secret); err != nil {
		t.Fatalf("LookupSession before disabling: %v", err)
	}

	got, err := svc.UpdateUser(ctx, "dan", auth.UserUpdate{Disabled: ptr(true)})
	if err != nil {
		t.Fatalf("UpdateUser(disable): %v", err)
	}
	if !got.Disabled {
		t.Error("Disabled = false after disabling")
	}
	_, err = svc.LookupToken(ctx, secret)
	wantIs(t, err, errs.ErrUnauthenticated)
	_, err = svc.LookupSession(ctx, sess.Secret)
	wantIs(t, err, errs.ErrUnauthenticated)
	if n := count(t, pool, `SELECT count(*) FROM sessions WHERE user_id = $1`, u.ID); n != 0 {
		t.Errorf("%d sessions of a disabled user remain, want 0", n)
	}
	// A disabled user gets no new token either.
	_, _, err = svc.CreateToken(ctx, auth.NewToken{UserName: "dan", Name: "another"})
	wantIs(t, err, errs.ErrConflict)

	// Re-enabling restores the tokens (never revoked), not the sessions (deleted).
	if _, err := svc.UpdateUser(ctx, "dan", auth.UserUpdate{Disabled: ptr(false)}); err != nil {
		t.Fatalf("UpdateUser(enable): %v", err)
	}
	if _, err := svc.LookupToken(ctx, secret); err != nil {
		t.Errorf("LookupToken after re-enabling: %v", err)
	}
	_, err = svc.LookupSession(ctx, sess.Secret)
	wantIs(t, err, errs.ErrUnauthenticated)
}

func TestLastEnabledAdminIsKept(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := context.Background()
	createUser(t, svc, "root", auth.RoleAdmin, "")

	for _, upd := range []auth.UserUpdate{
		{Role: ptr(auth.RoleReviewer)},
		{Disabled: ptr(true)},
		{Role: ptr(auth.RoleViewer), Disabled: ptr(true)},
	} {
		_, err := svc.UpdateUser(ctx, "root", upd)
		wantIs(t, err, errs.ErrConflict)
	}
	u, err := svc.GetUser(ctx, "root")
	if err != nil || u.Role != auth.RoleAdmin || u.Disabled {
		t.Fatalf("root = %+v, %v; want an enabled admin still", u, err)
	}
	// Keeping the role is allowed.
	if _, err := svc.UpdateUser(ctx, "root", auth.UserUpdate{Role: ptr(auth.RoleAdmin), Disabled: ptr(false)}); err != nil {
		t.Errorf("no-op update of the last admin: %v", err)
	}

	// With a second admin, the first may go; then the second is the last.
	createUser(t, svc, "root2", auth.RoleAdmin, "")
	if _, err := svc.UpdateUser(ctx, "root", auth.UserUpdate{Role: ptr(auth.RoleViewer)}); err != nil {
		t.Fatalf("demote root with root2 present: %v", err)
	}
	_, err = svc.UpdateUser(ctx, "root2", auth.UserUpdate{Disabled: ptr(true)})
	wantIs(t, err, errs.ErrConflict)

	// A disabled admin does not count as another admin.
	createUser(t, svc, "root3", auth.RoleAdmin, "")
	if _, err := svc.UpdateUser(ctx, "root3", auth.UserUpdate{Disabled: ptr(true)}); err != nil {
		t.Fatalf("disable root3 with root2 present: %v", err)
	}
	_, err = svc.UpdateUser(ctx, "root2", auth.UserUpdate{Role: ptr(auth.RoleViewer)})
	wantIs(t, err, errs.ErrConflict)
}

// Two admins demoting each other at the same moment must not leave Slipway
// without an admin: exactly one of the two changes may win.
func TestConcurrentDemotionKeepsAnAdmin(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := context.Background()
	createUser(t, svc, "a1", auth.RoleAdmin, "")
	createUser(t, svc, "a2", auth.RoleAdmin, "")

	updates := []auth.UserUpdate{{Role: ptr(auth.RoleViewer)}, {Disabled: ptr(true)}}
	for round := range 6 {
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			results = make([]error, 2)
		)
		for i, name := range []string{"a1", "a2"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, results[i] = svc.UpdateUser(ctx, name, updates[(round+i)%2])
			}()
		}
		close(start)
		wg.Wait()

		won := 0
		for _, err := range results {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, errs.ErrConflict):
				t.Fatalf("round %d: UpdateUser: %v", round, err)
			}
		}
		if won != 1 {
			t.Errorf("round %d: %d demotions succeeded, want exactly 1 (errors %v)", round, won, results)
		}
		if n := count(t, pool, `SELECT count(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL`); n != 1 {
			t.Fatalf("round %d: %d enabled admins, want 1", round, n)
		}
		// Restore both admins for the next round.
		for _, name := range []string{"a1", "a2"} {
			if _, err := svc.UpdateUser(ctx, name, auth.UserUpdate{Role: ptr(auth.RoleAdmin), Disabled: ptr(false)}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestCount(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := context.Background()
	alice := createUser(t, svc, "alice", auth.RoleAdmin, "")
	bob := createUser(t, svc, "bob", auth.RoleViewer, "")
	createUser(t, svc, "carol", auth.RoleViewer, "")

	createToken(t, svc, "alice", "live")
	_, revoked := createToken(t, svc, "alice", "revoked")
	if _, err := svc.RevokeToken(ctx, alice, revoked.ID); err != nil {
		t.Fatal(err)
	}
	_, expired := createToken(t, svc, "bob", "expired")
	if _, err := pool.Exec(ctx, `UPDATE api_tokens SET expires_at = now() - interval '1 minute' WHERE id = $1`, expired.ID); err != nil {
		t.Fatal(err)
	}
	createToken(t, svc, "bob", "future")
	if _, _, err := svc.CreateToken(ctx, auth.NewToken{UserName: "alice", Name: "dated", ExpiresAt: ptr(time.Now().Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		if _, err := svc.CreateSession(ctx, alice, auth.SessionMeta{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.CreateSession(ctx, bob, auth.SessionMeta{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE sessions SET expires_at = now() - interval '1 second' WHERE user_id = $1`, bob.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateUser(ctx, "carol", auth.UserUpdate{Disabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}

	got, err := svc.Count(ctx)
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	want := auth.Counts{Users: 2, ActiveTokens: 3, Sessions: 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Count (-want +got):\n%s", diff)
	}
}

// A change that changes nothing writes nothing: no audit row, no new
// updated_at.
func TestUpdateUserNoChange(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	before := createUser(t, svc, "steady", auth.RoleReviewer, "")
	rows := count(t, pool, `SELECT count(*) FROM audit_log`)
	after, err := svc.UpdateUser(context.Background(), "steady", auth.UserUpdate{Role: ptr(auth.RoleReviewer), Disabled: ptr(false)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("user changed (-before +after):\n%s", diff)
	}
	if n := count(t, pool, `SELECT count(*) FROM audit_log`); n != rows {
		t.Errorf("audit rows %d → %d after a change that changes nothing", rows, n)
	}
}
