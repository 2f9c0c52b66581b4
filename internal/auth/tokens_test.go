package auth_test

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/pagination"
)

func TestCreateToken(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := context.Background()
	alice := createUser(t, svc, "alice", auth.RoleContributor, "")

	secret, tok, err := svc.CreateToken(ctx, auth.NewToken{UserName: "alice", Name: "github actions"})
	if err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	body, ok := strings.CutPrefix(secret, auth.TokenPrefix)
	if !ok || auth.TokenPrefix != "slw_" {
		t.Fatalf("secret %q does not start with slw_", secret)
	}
	if len(body) < 43 {
		t.Errorf("secret %q has %d characters after the prefix, want at least 43", secret, len(body))
	}
	if raw, err := base64.RawURLEncoding.DecodeString(body); err != nil || len(raw) < 32 {
		t.Errorf("secret body %q is not 32+ bytes of base64url: %v", body, err)
	}
	want := auth.Token{ID: tok.ID, UserName: "alice", Name: "github actions", Hint: secret[:8], CreatedAt: tok.CreatedAt}
	if diff := cmp.Diff(want, tok); diff != "" {
		t.Errorf("CreateToken (-want +got):\n%s", diff)
	}
	if tok.ID == 0 || time.Since(tok.CreatedAt) > time.Minute || !tok.Active(time.Now()) {
		t.Errorf("token %+v: want an id, a fresh created_at and active", tok)
	}

	// Only a digest is stored: the secret is in no column of any row, and in no audit record.
	for _, q := range []string{`SELECT t::text FROM api_tokens t`, `SELECT a::text FROM audit_log a`} {
		rows, err := pool.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var row string
			if err := rows.Scan(&row); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(row, body) || strings.Contains(row, body[:20]) {
				t.Errorf("%s: row contains the secret: %s", q, row)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if rows := auditRows(t, pool, "token.create", strconv.FormatInt(tok.ID, 10)); len(rows) != 1 {
		t.Errorf("%d token.create audit rows, want 1", len(rows))
	}

	id, err := svc.LookupToken(ctx, secret)
	if err != nil {
		t.Fatalf("LookupToken: %v", err)
	}
	want2 := auth.Identity{User: alice, TokenID: tok.ID}
	if diff := cmp.Diff(want2, id); diff != "" {
		t.Errorf("LookupToken (-want +got):\n%s", diff)
	}
	if id.Actor().Name != "alice" || id.Actor().UserID != alice.ID {
		t.Errorf("Actor() = %+v, want alice", id.Actor())
	}

	secret2, _ := createToken(t, svc, "alice", "second")
	if secret2 == secret {
		t.Error("two tokens have the same secret")
	}
}

func TestLookupTokenRefusesBadSecrets(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := context.Background()
	createUser(t, svc, "alice", auth.RoleViewer, "")
	secret, _ := createToken(t, svc, "alice", "t")
	last := secret[len(secret)-1]
	flipped := "A"
	if last == 'A' {
		flipped = "B"
	}
	for name, s := range map[string]string{
		"empty":              "",
		"prefix only":        "slw_",
		"no prefix":          strings.TrimPrefix(secret, "slw_"),
		"other prefix":       "xyz_" + strings.TrimPrefix(secret, "slw_"),
		"one character off":  secret[:len(secret)-1] + flipped,
		"truncated":          secret[:len(secret)-1],
		"extended":           secret + "A",
		"never issued":       newSecret(t),
		"huge":               "slw_" + strings.Repeat("A", 10000),
		"session-like value": strings.TrimPrefix(newSecret(t), "slw_"),
	} {
		if _, err := svc.LookupToken(ctx, s); err == nil {
			t.Errorf("%s: LookupToken(%q) succeeded", name, s)
		} else {
			wantIs(t, err, errs.ErrUnauthenticated)
		}
	}
}

func TestTokenRevokedAndExpired(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := context.Background()
	alice := createUser(t, svc, "alice", auth.RoleViewer, "")

	revokedSecret, revoked := createToken(t, svc, "alice", "to revoke")
	got, err := svc.RevokeToken(ctx, alice, revoked.ID)
	if err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	if got.RevokedAt == nil || got.Active(time.Now()) {
		t.Errorf("revoked token = %+v, want revoked_at set and inactive", got)
	}
	_, err = svc.LookupToken(ctx, revokedSecret)
	wantIs(t, err, errs.ErrUnauthenticated)

	expiredSecret, expired := createToken(t, svc, "alice", "to expire")
	if _, err := svc.LookupToken(ctx, expiredSecret); err != nil {
		t.Fatalf("LookupToken before expiry: %v", err)
	}
	if _, err := pool.Exec(ctx, `UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`, expired.ID); err != nil {
		t.Fatal(err)
	}
	_, err = svc.LookupToken(ctx, expiredSecret)
	wantIs(t, err, errs.ErrUnauthenticated)

	// A token with an expiry in the future works, and reports it.
	exp := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	datedSecret, dated, err := svc.CreateToken(ctx, auth.NewToken{UserName: "alice", Name: "dated", ExpiresAt: &exp})
	if err != nil {
		t.Fatalf("CreateToken(expires in 1h): %v", err)
	}
	if dated.ExpiresAt == nil || !dated.ExpiresAt.Equal(exp) {
		t.Errorf("ExpiresAt = %v, want %v", dated.ExpiresAt, exp)
	}
	if _, err := svc.LookupToken(ctx, datedSecret); err != nil {
		t.Errorf("LookupToken of a token expiring in 1h: %v", err)
	}
}

func TestLookupTokenSetsLastUsed(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := context.Background()
	createUser(t, svc, "alice", auth.RoleViewer, "")
	secret, tok := createToken(t, svc, "alice", "t")
	if tok.LastUsedAt != nil {
		t.Fatalf("new token LastUsedAt = %v, want nil", tok.LastUsedAt)
	}
	if _, err := svc.LookupToken(ctx, secret); err != nil {
		t.Fatal(err)
	}
	tokens, _, err := svc.ListTokens(ctx, "alice", pagination.Page{})
	if err != nil || len(tokens) != 1 {
		t.Fatalf("ListTokens = %v, %v", tokens, err)
	}
	if lu := tokens[0].LastUsedAt; lu == nil || time.Since(*lu) > time.Minute || time.Until(*lu) > time.Minute {
		t.Errorf("LastUsedAt after lookup = %v, want about now", lu)
	}
}

func TestListTokensPagination(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := context.Background()
	alice := createUser(t, svc, "alice", auth.RoleViewer, "")
	createUser(t, svc, "bob", auth.RoleViewer, "")
	var wantIDs []int64
	for _, name := range []string{"t1", "t2", "t3", "t4", "t5"} {
		_, tok := createToken(t, svc, "alice", name)
		wantIDs = append([]int64{tok.ID}, wantIDs...) // newest first
		createToken(t, svc, "bob", name)              // interleaved, never listed for alice
	}
	// Revoked tokens are listed too.
	if _, err := svc.RevokeToken(ctx, alice, wantIDs[2]); err != nil {
		t.Fatal(err)
	}

	var gotIDs []int64
	p := pagination.Page{Limit: 1}
	pages := 0
	for {
		pages++
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		tokens, next, err := svc.ListTokens(ctx, "alice", p)
		if err != nil {
			t.Fatalf("ListTokens: %v", err)
		}
		if len(tokens) != 1 {
			t.Fatalf("page %d has %d tokens, want 1", pages, len(tokens))
		}
		if tokens[0].UserName != "alice" {
			t.Errorf("listed a token of %q", tokens[0].UserName)
		}
		gotIDs = append(gotIDs, tokens[0].ID)
		if next == "" {
			break
		}
		p.Cursor = next
	}
	if diff := cmp.Diff(wantIDs, gotIDs); diff != "" {
		t.Errorf("token ids across pages (-want +got):\n%s", diff)
	}

	_, _, err := svc.ListTokens(ctx, "alice", pagination.Page{Cursor: "garbage!"})
	wantIs(t, err, errs.ErrInvalid)
	none, next, err := svc.ListTokens(ctx, "nobody", pagination.Page{})
	if err != nil || len(none) != 0 || next != "" {
		t.Errorf("ListTokens(unknown user) = %v, %q, %v; want nothing", none, next, err)
	}
}

func TestTokenNamesAreUniqueWhileLive(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := context.Background()
	alice := createUser(t, svc, "alice", auth.RoleViewer, "")
	createUser(t, svc, "bob", auth.RoleViewer, "")
	_, first := createToken(t, svc, "alice", "deploy")

	_, _, err := svc.CreateToken(ctx, auth.NewToken{UserName: "alice", Name: "deploy"})
	wantIs(t, err, errs.ErrConflict)
	// Another user may use the name.
	createToken(t, svc, "bob", "deploy")
	// After revocation the name is free again.
	if _, err := svc.RevokeToken(ctx, alice, first.ID); err != nil {
		t.Fatal(err)
	}
	secret, _ := createToken(t, svc, "alice", "deploy")
	if _, err := svc.LookupToken(ctx, secret); err != nil {
		t.Errorf("LookupToken of the re-created token: %v", err)
	}
}

func TestCreateTokenInvalid(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := context.Background()
	createUser(t, svc, "alice", auth.RoleViewer, "")
	tests := []struct {
		name string
		in   auth.NewToken
		want []string
	}{
		{"empty name", auth.NewToken{UserName: "alice"}, []string{"name"}},
		{"blank name", auth.NewToken{UserName: "alice", Name: "   "}, []string{"name"}},
		{"name too long", auth.NewToken{UserName: "alice", Name: strings.Repeat("n", 101)}, []string{"name"}},
		{"control character", auth.NewToken{UserName: "alice", Name: "a\nb"}, []string{"name"}},
		{"expired", auth.NewToken{UserName: "alice", Name: "x", ExpiresAt: ptr(time.Now().Add(-time.Minute))}, []string{"expires_at"}},
		{"expires now", auth.NewToken{UserName: "alice", Name: "x", ExpiresAt: ptr(time.Now())}, []string{"expires_at"}},
		{"too far", auth.NewToken{UserName: "alice", Name: "x", ExpiresAt: ptr(time.Now().Add(auth.MaxTokenLifetime + time.Hour))}, []string{"expires_at"}},
		{"both", auth.NewToken{UserName: "alice", ExpiresAt: ptr(time.Now().Add(-time.Hour))}, []string{"name", "expires_at"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := svc.CreateToken(ctx, tt.in)
			if diff := cmp.Diff(tt.want, fieldsOf(t, err)); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
	// 100 characters, multi-byte, is fine.
	createToken(t, svc, "alice", strings.Repeat("é", 100))

	_, _, err := svc.CreateToken(ctx, auth.NewToken{UserName: "nobody", Name: "x"})
	wantIs(t, err, errs.ErrNotFound)

	if n := count(t, pool, `SELECT count(*) FROM api_tokens`); n != 1 {
		t.Errorf("%d tokens stored, want only the valid one", n)
	}
}

func TestRevokeToken(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := context.Background()
	alice := createUser(t, svc, "alice", auth.RoleContributor, "")
	bob := createUser(t, svc, "bob", auth.RoleReviewer, "")
	admin := createUser(t, svc, "root", auth.RoleAdmin, "")
	secret, tok := createToken(t, svc, "alice", "ci")

	// Someone else's token does not exist for a non-admin.
	_, err := svc.RevokeToken(ctx, bob, tok.ID)
	wantIs(t, err, errs.ErrNotFound)
	if _, err := svc.LookupToken(ctx, secret); err != nil {
		t.Fatalf("token stopped working after a refused revocation: %v", err)
	}
	_, err = svc.RevokeToken(ctx, alice, 999999)
	wantIs(t, err, errs.ErrNotFound)

	// An admin may revoke anyone's.
	got, err := svc.RevokeToken(ctx, admin, tok.ID)
	if err != nil {
		t.Fatalf("RevokeToken by admin: %v", err)
	}
	if got.ID != tok.ID || got.UserName != "alice" || got.RevokedAt == nil {
		t.Errorf("RevokeToken = %+v, want alice's token, revoked", got)
	}
	_, err = svc.LookupToken(ctx, secret)
	wantIs(t, err, errs.ErrUnauthenticated)

	// Twice is fine, and changes nothing.
	again, err := svc.RevokeToken(ctx, alice, tok.ID)
	if err != nil {
		t.Fatalf("second RevokeToken: %v", err)
	}
	if diff := cmp.Diff(got, again); diff != "" {
		t.Errorf("second RevokeToken (-first +second):\n%s", diff)
	}
	if rows := auditRows(t, pool, "token.revoke", strconv.FormatInt(tok.ID, 10)); len(rows) != 1 {
		t.Errorf("%d token.revoke audit rows, want 1", len(rows))
	}

	// The owner may revoke their own.
	ownSecret, own := createToken(t, svc, "alice", "own")
	if _, err := svc.RevokeToken(ctx, alice, own.ID); err != nil {
		t.Fatalf("RevokeToken by owner: %v", err)
	}
	_, err = svc.LookupToken(ctx, ownSecret)
	wantIs(t, err, errs.ErrUnauthenticated)
}

// Identity columns are bigint; the cursor must not be squeezed into a
// 32-bit parameter.
func TestListTokensBeyond32BitIDs(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `ALTER TABLE api_tokens ALTER COLUMN id RESTART WITH 3000000000`); err != nil {
		t.Fatal(err)
	}
	createUser(t, svc, "alice", auth.RoleViewer, "")
	createToken(t, svc, "alice", "t1")
	createToken(t, svc, "alice", "t2")
	_, next, err := svc.ListTokens(ctx, "alice", pagination.Page{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	tokens, _, err := svc.ListTokens(ctx, "alice", pagination.Page{Limit: 1, Cursor: next})
	if err != nil || len(tokens) != 1 || tokens[0].Name != "t1" {
		t.Errorf("second page = %+v, %v; want t1", tokens, err)
	}
}
