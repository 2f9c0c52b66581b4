package auth_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/google/go-cmp/cmp"

	"github.com/slipway-ml/slipway/internal/auth"
)

func TestRoleAllows(t *testing.T) {
	t.Parallel()
	roles := []auth.Role{auth.RoleViewer, auth.RoleContributor, auth.RoleReviewer, auth.RoleAdmin}
	if diff := cmp.Diff(roles, auth.Roles); diff != "" {
		t.Errorf("Roles, least privileged first (-want +got):\n%s", diff)
	}
	// want[holder][need]
	want := [4][4]bool{
		//        viewer contrib reviewer admin
		/* viewer      */ {true, false, false, false},
		/* contributor */ {true, true, false, false},
		/* reviewer    */ {true, true, true, false},
		/* admin       */ {true, true, true, true},
	}
	for i, holder := range roles {
		for j, need := range roles {
			if got := holder.Allows(need); got != want[i][j] {
				t.Errorf("%s.Allows(%s) = %v, want %v", holder, need, got, want[i][j])
			}
		}
	}
	// A role that is not one of the four allows nothing.
	for _, holder := range []auth.Role{"", "root", "Admin", "superadmin"} {
		for _, need := range roles {
			if holder.Allows(need) {
				t.Errorf("%q.Allows(%s) = true, want false", holder, need)
			}
		}
	}
}

func TestParseRole(t *testing.T) {
	t.Parallel()
	for _, r := range auth.Roles {
		got, err := auth.ParseRole(string(r))
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v; want %q", r, got, err, r)
		}
	}
	for _, s := range []string{"", "Admin", "ADMIN", " admin", "admin ", "owner", "viewers"} {
		got, err := auth.ParseRole(s)
		if got != "" {
			t.Errorf("ParseRole(%q) = %q, want empty", s, got)
		}
		if diff := cmp.Diff([]string{"role"}, fieldsOf(t, err)); diff != "" {
			t.Errorf("ParseRole(%q) fields (-want +got):\n%s", s, diff)
		}
	}
}

func TestHashAndVerifyPassword(t *testing.T) {
	t.Parallel()
	const pw = "correct horse battery staple"
	h1, err := auth.HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := auth.HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Errorf("two hashes of one password are equal (%s): the salt is not random", h1)
	}
	if !strings.HasPrefix(h1, "$argon2id$v=19$") {
		t.Errorf("hash %q is not a PHC argon2id string", h1)
	}
	if strings.Contains(h1, pw) {
		t.Errorf("hash %q contains the password", h1)
	}
	tests := []struct {
		hash, pw string
		want     bool
	}{
		{h1, pw, true},
		{h2, pw, true},
		{h1, pw + " ", false},
		{h1, strings.ToUpper(pw), false},
		{h1, "", false},
	}
	for _, tt := range tests {
		got, err := auth.VerifyPassword(tt.hash, tt.pw)
		if err != nil || got != tt.want {
			t.Errorf("VerifyPassword(%q, %q) = %v, %v; want %v, nil", tt.hash, tt.pw, got, err, tt.want)
		}
	}
}

// Parameters come from the hash: raising them later keeps old hashes valid.
func TestVerifyPasswordReadsParametersFromHash(t *testing.T) {
	t.Parallel()
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		t.Fatal(err)
	}
	key := argon2.IDKey([]byte("an older password"), salt, 1, 8*1024, 2, 16)
	b64 := base64.RawStdEncoding.EncodeToString
	hash := fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, 8*1024, 1, 2, b64(salt), b64(key))
	for pw, want := range map[string]bool{"an older password": true, "another password": false} {
		got, err := auth.VerifyPassword(hash, pw)
		if err != nil || got != want {
			t.Errorf("VerifyPassword(old-parameter hash, %q) = %v, %v; want %v, nil", pw, got, err, want)
		}
	}
}

func TestVerifyPasswordRejectsMalformedHash(t *testing.T) {
	t.Parallel()
	good, err := auth.HashPassword("a fine password")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=..., salt, key
	join := func(p ...string) string { return strings.Join(p, "$") }
	tests := map[string]string{
		"empty":             "",
		"plain text":        "a fine password",
		"bcrypt":            "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"argon2i":           join("", "argon2i", parts[2], parts[3], parts[4], parts[5]),
		"wrong version":     join("", "argon2id", "v=16", parts[3], parts[4], parts[5]),
		"no version":        join("", "argon2id", "x", parts[3], parts[4], parts[5]),
		"bad parameters":    join("", "argon2id", parts[2], "m=lots,t=2,p=1", parts[4], parts[5]),
		"bad salt":          join("", "argon2id", parts[2], parts[3], "!!not base64!!", parts[5]),
		"bad key":           join("", "argon2id", parts[2], parts[3], parts[4], "!!not base64!!"),
		"empty key":         join("", "argon2id", parts[2], parts[3], parts[4], ""),
		"missing part":      join("", "argon2id", parts[2], parts[3], parts[4]),
		"one part too many": good + "$extra",
	}
	for name, hash := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ok, err := auth.VerifyPassword(hash, "a fine password")
			if err == nil || ok {
				t.Errorf("VerifyPassword(%q) = %v, %v; want false and an error", hash, ok, err)
			}
		})
	}
}

func TestValidatePassword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		pw   string
		ok   bool
	}{
		{"empty", "", false},
		{"11 characters", strings.Repeat("a", 11), false},
		{"12 characters", strings.Repeat("a", 12), true},
		{"12 multi-byte characters", strings.Repeat("é", 12), true},
		{"11 multi-byte characters (22 bytes)", strings.Repeat("é", 11), false},
		{"256 bytes", strings.Repeat("a", 256), true},
		{"257 bytes", strings.Repeat("a", 257), false},
		{"200 characters of 2 bytes (400 bytes)", strings.Repeat("é", 200), false},
		{"invalid UTF-8", "\xff\xfe" + strings.Repeat("a", 12), false},
		{"spaces count", "            ", true},
	}
	for _, tt := range tests {
		err := auth.ValidatePassword(tt.pw)
		if tt.ok {
			if err != nil {
				t.Errorf("%s: ValidatePassword: %v", tt.name, err)
			}
			continue
		}
		if diff := cmp.Diff([]string{"password"}, fieldsOf(t, err)); diff != "" {
			t.Errorf("%s: fields (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestValidateUserName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"a", "alice", "ci-bot", "svc.train_01", "0day", strings.Repeat("a", 64)} {
		if err := auth.ValidateUserName(name); err != nil {
			t.Errorf("ValidateUserName(%q): %v", name, err)
		}
	}
	for _, name := range []string{"", "Alice", "-bot", ".x", "_x", "a b", "a/b", "émile", strings.Repeat("a", 65)} {
		if diff := cmp.Diff([]string{"name"}, fieldsOf(t, auth.ValidateUserName(name))); diff != "" {
			t.Errorf("ValidateUserName(%q) fields (-want +got):\n%s", name, diff)
		}
	}
}

// A stored hash with zero rounds or lanes (a corrupted row, a hand-edited
// hash) must be reported as malformed; argon2.IDKey panics on it.
func TestVerifyPasswordRejectsZeroParameters(t *testing.T) {
	t.Parallel()
	for _, params := range []string{"m=19456,t=0,p=1", "m=19456,t=2,p=0"} {
		hash := "$argon2id$v=19$" + params + "$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5"
		ok, err := auth.VerifyPassword(hash, "x")
		if err == nil || ok {
			t.Errorf("VerifyPassword(%q) = %v, %v; want false and an error", hash, ok, err)
		}
	}
}
