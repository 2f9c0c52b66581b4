package auth_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/errs"
)

func TestBootstrap(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := context.Background()
	token := newSecret(t)
	const password = "bootstrap-password-1"

	created, err := svc.Bootstrap(ctx, token, password)
	if err != nil || !created {
		t.Fatalf("Bootstrap = %v, %v; want true, nil", created, err)
	}
	id, err := svc.LookupToken(ctx, token)
	if err != nil {
		t.Fatalf("LookupToken(bootstrap token): %v", err)
	}
	if id.User.Name != auth.BootstrapAdminName || id.User.Role != auth.RoleAdmin || !id.User.HasPassword {
		t.Errorf("bootstrap identity = %+v, want admin %q with a password", id.User, auth.BootstrapAdminName)
	}
	u, err := svc.Authenticate(ctx, auth.BootstrapAdminName, password)
	if err != nil {
		t.Fatalf("Authenticate(bootstrap password): %v", err)
	}
	if u.ID != id.User.ID {
		t.Errorf("password user %d and token user %d differ", u.ID, id.User.ID)
	}

	// The system did it, and it is audited.
	for _, action := range []string{"user.create", "token.create"} {
		if n := count(t, pool, `SELECT count(*) FROM audit_log WHERE action = $1 AND actor_name = 'system' AND actor_id IS NULL`, action); n != 1 {
			t.Errorf("%d %s audit rows by system, want 1", n, action)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM audit_log a WHERE strpos(a::text, $1) > 0`, token[4:]); n != 0 {
		t.Errorf("%d audit rows contain the bootstrap token", n)
	}

	// A second start with other values changes nothing.
	token2 := newSecret(t)
	created, err = svc.Bootstrap(ctx, token2, "another-password-2")
	if err != nil || created {
		t.Fatalf("second Bootstrap = %v, %v; want false, nil", created, err)
	}
	_, err = svc.LookupToken(ctx, token2)
	wantIs(t, err, errs.ErrUnauthenticated)
	if _, err := svc.Authenticate(ctx, auth.BootstrapAdminName, "another-password-2"); !errors.Is(err, errs.ErrUnauthenticated) {
		t.Errorf("Authenticate with the second password = %v, want ErrUnauthenticated", err)
	}
	if _, err := svc.LookupToken(ctx, token); err != nil {
		t.Errorf("first bootstrap token stopped working: %v", err)
	}
	c, err := svc.Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(auth.Counts{Users: 1, ActiveTokens: 1}, c); diff != "" {
		t.Errorf("Count (-want +got):\n%s", diff)
	}
}

func TestBootstrapWithoutPassword(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := context.Background()
	token := newSecret(t)
	created, err := svc.Bootstrap(ctx, token, "")
	if err != nil || !created {
		t.Fatalf("Bootstrap = %v, %v; want true, nil", created, err)
	}
	id, err := svc.LookupToken(ctx, token)
	if err != nil || id.User.Role != auth.RoleAdmin || id.User.HasPassword {
		t.Errorf("LookupToken = %+v, %v; want a token-only admin", id.User, err)
	}
	_, err = svc.Authenticate(ctx, auth.BootstrapAdminName, "")
	wantIs(t, err, errs.ErrUnauthenticated)
}

func TestBootstrapDoesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		setup    func(t *testing.T, svc *auth.Service)
		token    func(t *testing.T) string
		password string
		wantErr  error // nil: no error
	}{
		{"no token", nil, func(*testing.T) string { return "" }, "", nil},
		{"no token but a password", nil, func(*testing.T) string { return "" }, "bootstrap-password-1", nil},
		{"an admin exists", func(t *testing.T, svc *auth.Service) { createUser(t, svc, "root", auth.RoleAdmin, "") }, newSecret, "", nil},
		{"only a disabled admin exists", func(t *testing.T, svc *auth.Service) {
			createUser(t, svc, "root", auth.RoleAdmin, "")
			createUser(t, svc, "root2", auth.RoleAdmin, "")
			if _, err := svc.UpdateUser(context.Background(), "root2", auth.UserUpdate{Disabled: ptr(true)}); err != nil {
				t.Fatal(err)
			}
		}, newSecret, "", nil},
		{"bad password", nil, newSecret, "short", errs.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			svc, pool := newService(t)
			if tt.setup != nil {
				tt.setup(t, svc)
			}
			before := count(t, pool, `SELECT count(*) FROM users`)
			token := tt.token(t)
			created, err := svc.Bootstrap(context.Background(), token, tt.password)
			if created {
				t.Error("Bootstrap created a user")
			}
			if tt.wantErr == nil && err != nil {
				t.Errorf("Bootstrap: %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Bootstrap = %v, want %v", err, tt.wantErr)
			}
			if after := count(t, pool, `SELECT count(*) FROM users`); after != before {
				t.Errorf("users %d -> %d, want unchanged", before, after)
			}
			if token != "" {
				_, err := svc.LookupToken(context.Background(), token)
				wantIs(t, err, errs.ErrUnauthenticated)
			}
		})
	}
}

func TestBootstrapNameTakenByNonAdmin(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	createUser(t, svc, auth.BootstrapAdminName, auth.RoleViewer, "")
	created, err := svc.Bootstrap(context.Background(), newSecret(t), "")
	if err == nil || created {
		t.Fatalf("Bootstrap = %v, %v; want an error: the name is taken", created, err)
	}
	u, err := svc.GetUser(context.Background(), auth.BootstrapAdminName)
	if err != nil || u.Role != auth.RoleViewer {
		t.Errorf("user %q = %+v, %v; want the viewer untouched", auth.BootstrapAdminName, u, err)
	}
}

// Replicas starting together each run Bootstrap with their own copy of the
// configuration; exactly one admin and one token may result.
func TestBootstrapConcurrent(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := context.Background()
	const n = 5
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = newSecret(t)
	}
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		created = make([]bool, n)
		results = make([]error, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			created[i], results[i] = svc.Bootstrap(ctx, tokens[i], "")
		}()
	}
	close(start)
	wg.Wait()

	wins, working := 0, 0
	for i := range n {
		if results[i] != nil {
			t.Errorf("Bootstrap %d: %v", i, results[i])
		}
		if created[i] {
			wins++
		}
		if _, err := svc.LookupToken(ctx, tokens[i]); err == nil {
			working++
			if !created[i] {
				t.Errorf("token %d works but its Bootstrap reported false", i)
			}
		}
	}
	if wins != 1 || working != 1 {
		t.Errorf("%d Bootstraps created, %d tokens work; want 1 and 1", wins, working)
	}
	if got := count(t, pool, `SELECT count(*) FROM users WHERE role = 'admin'`); got != 1 {
		t.Errorf("%d admins, want 1", got)
	}
	if got := count(t, pool, `SELECT count(*) FROM api_tokens`); got != 1 {
		t.Errorf("%d tokens, want 1", got)
	}
}

// Bootstrap is exported: it must refuse, not panic on, a token too short
// to take a display hint from.
func TestBootstrapShortToken(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	created, err := svc.Bootstrap(context.Background(), "slw_x", "")
	if err == nil || created {
		t.Errorf("Bootstrap(short token) = %v, %v; want an error", created, err)
	}
}
