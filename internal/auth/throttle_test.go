package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/testenv"
)

func TestSignInThrottledPerUserName(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	svc := auth.NewService(db.Pool, auth.Config{})
	ctx := context.Background()
	const pw = "the right password"
	for _, name := range []string{"target", "bystander"} {
		if _, err := svc.CreateUser(ctx, auth.NewUser{Name: name, Role: auth.RoleViewer, Password: pw}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < auth.MaxLoginFailures; i++ {
		if _, err := svc.Authenticate(ctx, "target", "a wrong guess"); !errors.Is(err, errs.ErrUnauthenticated) {
			t.Fatalf("guess %d: %v, want ErrUnauthenticated", i, err)
		}
	}
	// Now even the right password is refused for this name...
	if _, err := svc.Authenticate(ctx, "target", pw); !errors.Is(err, errs.ErrTooManyRequests) {
		t.Fatalf("after %d failures: %v, want ErrTooManyRequests", auth.MaxLoginFailures, err)
	}
	// ...but not for another.
	if _, err := svc.Authenticate(ctx, "bystander", pw); err != nil {
		t.Fatalf("another user: %v", err)
	}
	// Once the failures are older than the window, the name signs in
	// again, and success clears the count.
	if _, err := db.Pool.Exec(ctx, `UPDATE login_failures SET at = at - $1::interval`, (auth.LoginFailureWindow + 1e9).String()); err != nil {
		t.Fatal(err)
	}
	svc.Authenticate(ctx, "target", "one more wrong guess")
	if _, err := svc.Authenticate(ctx, "target", pw); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	var left int
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM login_failures WHERE user_name = 'target'`).Scan(&left)
	if left != 0 {
		t.Errorf("%d failures kept after a successful sign-in, want 0", left)
	}
	// Old failures are reclaimed.
	svc.Authenticate(ctx, "bystander", "wrong")
	db.Pool.Exec(ctx, `UPDATE login_failures SET at = at - interval '1 hour'`)
	if n, err := svc.DeleteOldLoginFailures(ctx); err != nil || n != 1 {
		t.Errorf("DeleteOldLoginFailures = %d, %v; want 1", n, err)
	}
}

// Names no user could have are not recorded: a client cannot fill the
// table with whatever it sends.
func TestSignInFailuresOfImpossibleNamesNotRecorded(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	svc := auth.NewService(db.Pool, auth.Config{})
	ctx := context.Background()
	for _, name := range []string{strings.Repeat("x", 10000), "Not A Name", "possible-name"} {
		if _, err := svc.Authenticate(ctx, name, "guess"); !errors.Is(err, errs.ErrUnauthenticated) {
			t.Fatalf("%.20q: %v", name, err)
		}
	}
	var names []string
	rows, _ := db.Pool.Query(ctx, `SELECT user_name FROM login_failures`)
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	if len(names) != 1 || names[0] != "possible-name" {
		t.Errorf("recorded failures for %q, want only possible-name", names)
	}
}
