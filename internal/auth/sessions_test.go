package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/errs"
)

func TestSessions(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := context.Background()
	alice := createUser(t, svc, "alice", auth.RoleReviewer, "")

	start := time.Now()
	s1, err := svc.CreateSession(ctx, alice, auth.SessionMeta{RemoteAddr: "192.0.2.1:4000", UserAgent: "Firefox"})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if len(s1.Secret) != 43 || len(s1.CSRFToken) != 43 {
		t.Errorf("secret %q, csrf %q: want 43 characters each (32 random bytes)", s1.Secret, s1.CSRFToken)
	}
	if s1.Secret == s1.CSRFToken {
		t.Error("session secret and CSRF token are equal")
	}
	// The TTL is applied by the database: check the conversion of 90m.
	if d := s1.ExpiresAt.Sub(start); d < sessionTTL-time.Minute || d > sessionTTL+time.Minute {
		t.Errorf("ExpiresAt is %v after creation, want about %v", d, sessionTTL)
	}

	id, err := svc.LookupSession(ctx, s1.Secret)
	if err != nil {
		t.Fatalf("LookupSession: %v", err)
	}
	if diff := cmp.Diff(auth.Identity{User: alice, CSRFToken: s1.CSRFToken}, id); diff != "" {
		t.Errorf("LookupSession (-want +got):\n%s", diff)
	}

	s2, err := svc.CreateSession(ctx, alice, auth.SessionMeta{})
	if err != nil {
		t.Fatal(err)
	}
	if s2.Secret == s1.Secret || s2.CSRFToken == s1.CSRFToken {
		t.Error("two sessions share a secret or CSRF token")
	}

	// Only a digest of the cookie value is stored.
	rows, err := pool.Query(ctx, `SELECT s::text FROM sessions s`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var row string
		if err := rows.Scan(&row); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(row, s1.Secret) || strings.Contains(row, s2.Secret) {
			t.Errorf("sessions row contains a session secret: %s", row)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	if err := svc.DeleteSession(ctx, s1.Secret); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	_, err = svc.LookupSession(ctx, s1.Secret)
	wantIs(t, err, errs.ErrUnauthenticated)
	if _, err := svc.LookupSession(ctx, s2.Secret); err != nil {
		t.Errorf("the other session ended too: %v", err)
	}
	// Ending an unknown or already ended session is not an error.
	for _, s := range []string{s1.Secret, "", "not-a-session"} {
		if err := svc.DeleteSession(ctx, s); err != nil {
			t.Errorf("DeleteSession(%q): %v", s, err)
		}
	}

	// Sign-in and sign-out are audited, by the user.
	if n := len(auditRows(t, pool, "session.create", "alice")); n != 2 {
		t.Errorf("%d session.create audit rows, want 2", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM audit_log WHERE action = 'session.delete' AND target_id = 'alice' AND actor_name = 'alice' AND actor_id = $1`, alice.ID); n != 1 {
		t.Errorf("%d session.delete audit rows by alice, want 1", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM audit_log WHERE action LIKE 'session.%' AND actor_name <> 'alice'`); n != 0 {
		t.Errorf("%d session audit rows by someone other than alice, want 0", n)
	}
}

func TestLookupSessionRefusesBadSecrets(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := context.Background()
	alice := createUser(t, svc, "alice", auth.RoleViewer, "")
	s, err := svc.CreateSession(ctx, alice, auth.SessionMeta{})
	if err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string]string{
		"empty":          "",
		"short":          "abc",
		"unknown":        strings.Repeat("A", 43),
		"truncated":      s.Secret[:42],
		"extended":       s.Secret + "A",
		"the CSRF token": s.CSRFToken,
	} {
		_, err := svc.LookupSession(ctx, secret)
		if err == nil {
			t.Errorf("%s: LookupSession succeeded", name)
			continue
		}
		wantIs(t, err, errs.ErrUnauthenticated)
	}
}

func TestExpiredSessions(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := context.Background()
	alice := createUser(t, svc, "alice", auth.RoleViewer, "")
	var secrets []string
	for range 3 {
		s, err := svc.CreateSession(ctx, alice, auth.SessionMeta{})
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, s.Secret)
	}
	// Expire all but the newest.
	if _, err := pool.Exec(ctx, `
		UPDATE sessions SET expires_at = now() - interval '1 second'
		WHERE id_hash <> (SELECT id_hash FROM sessions ORDER BY created_at DESC, expires_at DESC LIMIT 1)`); err != nil {
		t.Fatal(err)
	}
	live := 0
	for _, s := range secrets {
		if _, err := svc.LookupSession(ctx, s); err == nil {
			live++
		} else {
			wantIs(t, err, errs.ErrUnauthenticated)
		}
	}
	if live != 1 {
		t.Fatalf("%d sessions still accepted, want 1", live)
	}

	n, err := svc.DeleteExpiredSessions(ctx)
	if err != nil || n != 2 {
		t.Errorf("DeleteExpiredSessions = %d, %v; want 2", n, err)
	}
	n, err = svc.DeleteExpiredSessions(ctx)
	if err != nil || n != 0 {
		t.Errorf("second DeleteExpiredSessions = %d, %v; want 0", n, err)
	}
	if got := count(t, pool, `SELECT count(*) FROM sessions`); got != 1 {
		t.Errorf("%d sessions remain, want the live one", got)
	}
	c, err := svc.Count(ctx)
	if err != nil || c.Sessions != 1 {
		t.Errorf("Count().Sessions = %d, %v; want 1", c.Sessions, err)
	}
}

func TestSessionUserAgentIsBounded(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := context.Background()
	alice := createUser(t, svc, "alice", auth.RoleViewer, "")
	if _, err := svc.CreateSession(ctx, alice, auth.SessionMeta{UserAgent: strings.Repeat("x", 5000)}); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if n := count(t, pool, `SELECT octet_length(user_agent) FROM sessions`); n != 512 {
		t.Errorf("stored user agent is %d bytes, want 512", n)
	}
}

// Browsers send non-ASCII user agents; cutting one at 512 bytes must not
// make the sign-in fail.
func TestSessionUserAgentCutInsideARune(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	alice := createUser(t, svc, "alice", auth.RoleViewer, "")
	ua := strings.Repeat("x", 511) + "é and more"
	if _, err := svc.CreateSession(context.Background(), alice, auth.SessionMeta{UserAgent: ua}); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
}

func TestDefaultSessionTTL(t *testing.T) {
	t.Parallel()
	_, pool := newService(t)
	svc := auth.NewService(pool, auth.Config{})
	alice := createUser(t, svc, "alice", auth.RoleViewer, "")
	start := time.Now()
	s, err := svc.CreateSession(context.Background(), alice, auth.SessionMeta{})
	if err != nil {
		t.Fatal(err)
	}
	if d := s.ExpiresAt.Sub(start); d < 12*time.Hour-time.Minute || d > 12*time.Hour+time.Minute {
		t.Errorf("default session lifetime %v, want 12h", d)
	}
}
