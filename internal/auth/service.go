package auth

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/database"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/pagination"
)

// Service manages users, sessions and tokens.
type Service struct {
	db         *pgxpool.Pool
	sessionTTL time.Duration
}

// Config tunes the service.
type Config struct {
	SessionTTL time.Duration // absolute lifetime of a browser session
}

// NewService returns a Service over db.
func NewService(db *pgxpool.Pool, cfg Config) *Service {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	return &Service{db: db, sessionTTL: cfg.SessionTTL}
}

// User is a person or a machine identity (a CI job) that acts on Slipway.
type User struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Role        Role      `json:"role"`
	HasPassword bool      `json:"has_password"`
	Disabled    bool      `json:"disabled"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// auditView is what the audit log keeps of a user: never the hash.
func (u User) auditView() map[string]any {
	return map[string]any{"name": u.Name, "role": u.Role, "disabled": u.Disabled, "has_password": u.HasPassword}
}

var userNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// reservedUserNames are audit actors that are not users.
var reservedUserNames = map[string]bool{audit.System.Name: true, "cli": true}

// ValidateUserName checks the user name grammar.
func ValidateUserName(name string) error {
	if !userNamePattern.MatchString(name) {
		return errs.Invalid("name", "must match ^[a-z0-9][a-z0-9._-]{0,63}$ (lower-case letters, digits, '.', '_', '-')")
	}
	if reservedUserNames[name] {
		return errs.Invalid("name", "%q is reserved: the audit log uses it for changes made by Slipway itself or its command line", name)
	}
	return nil
}

// NewUser is the input of CreateUser.
type NewUser struct {
	Name     string
	Role     Role
	Password string // empty: the user signs in with tokens only
}

const userColumns = `id, name, role, password_hash IS NOT NULL, disabled_at IS NOT NULL, created_at, updated_at`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Name, &u.Role, &u.HasPassword, &u.Disabled, &u.CreatedAt, &u.UpdatedAt)
	return u, err
}

// CreateUser adds a user.
func (s *Service) CreateUser(ctx context.Context, in NewUser) (User, error) {
	var fe errs.FieldErrors
	if err := ValidateUserName(in.Name); err != nil {
		fe = append(fe, err.(*errs.FieldError))
	}
	if _, err := ParseRole(string(in.Role)); err != nil {
		fe = append(fe, err.(*errs.FieldError))
	}
	if in.Password != "" {
		if err := ValidatePassword(in.Password); err != nil {
			fe = append(fe, err.(*errs.FieldError))
		}
	}
	if err := fe.Err(); err != nil {
		return User{}, err
	}
	var hash *string
	if in.Password != "" {
		h, err := HashPassword(in.Password)
		if err != nil {
			return User{}, err
		}
		hash = &h
	}
	var u User
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRow(ctx, `
			INSERT INTO users (name, role, password_hash) VALUES ($1, $2, $3)
			RETURNING `+userColumns, in.Name, in.Role, hash))
		if database.IsUniqueViolation(err) {
			return fmt.Errorf("user %q already exists: %w", in.Name, errs.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create user: %w", err)
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "user.create", TargetType: "user", TargetID: u.Name, After: u.auditView()})
	})
	return u, err
}

// GetUser returns the user called name.
func (s *Service) GetUser(ctx context.Context, name string) (User, error) {
	u, err := scanUser(s.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, fmt.Errorf("user %q: %w", name, errs.ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("get user: %w", err)
	}
	return u, nil
}

// ListUsers returns users by name.
func (s *Service) ListUsers(ctx context.Context, p pagination.Page) ([]User, string, error) {
	var after struct {
		Name string `json:"name"`
	}
	if _, err := p.Decode(&after); err != nil {
		return nil, "", err
	}
	rows, err := s.db.Query(ctx, `SELECT `+userColumns+` FROM users WHERE name > $1 ORDER BY name LIMIT $2`, after.Name, p.Size()+1)
	if err != nil {
		return nil, "", fmt.Errorf("list users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) { return scanUser(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list users: %w", err)
	}
	users, next := pagination.Trim(users, p, func(u User) any { return map[string]string{"name": u.Name} })
	return users, next, nil
}

// UserUpdate changes a user; nil fields stay as they are.
type UserUpdate struct {
	Role     *Role
	Disabled *bool
	Password *string
}

// UpdateUser changes role, disabled flag or password. Disabling a user ends
// their sessions; their tokens stop working at once (lookups check the flag).
// The last enabled admin cannot be demoted or disabled: nobody could manage
// Slipway afterwards.
func (s *Service) UpdateUser(ctx context.Context, name string, in UserUpdate) (User, error) {
	var fe errs.FieldErrors
	if in.Role != nil {
		if _, err := ParseRole(string(*in.Role)); err != nil {
			fe = append(fe, err.(*errs.FieldError))
		}
	}
	var hash *string
	if in.Password != nil {
		if err := ValidatePassword(*in.Password); err != nil {
			fe = append(fe, err.(*errs.FieldError))
		}
	}
	if err := fe.Err(); err != nil {
		return User{}, err
	}
	if in.Password != nil {
		h, err := HashPassword(*in.Password)
		if err != nil {
			return User{}, err
		}
		hash = &h
	}
	var after User
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		// Serialise admin changes so that two concurrent demotions cannot
		// both see "another admin remains".
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('slipway.users.admins'))`); err != nil {
			return err
		}
		before, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE name = $1 FOR UPDATE`, name))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("user %q: %w", name, errs.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("update user: %w", err)
		}
		if in.Password == nil && (in.Role == nil || *in.Role == before.Role) && (in.Disabled == nil || *in.Disabled == before.Disabled) {
			after = before // nothing changes: nothing to write or audit
			return nil
		}
		losesAdmin := before.Role == RoleAdmin && !before.Disabled &&
			((in.Role != nil && *in.Role != RoleAdmin) || (in.Disabled != nil && *in.Disabled))
		if losesAdmin {
			var others int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL AND id <> $1`, before.ID).Scan(&others); err != nil {
				return err
			}
			if others == 0 {
				return fmt.Errorf("user %q is the last enabled admin: %w", name, errs.ErrConflict)
			}
		}
		after, err = scanUser(tx.QueryRow(ctx, `
			UPDATE users SET
				role = coalesce($2, role),
				disabled_at = CASE WHEN $3::bool IS NULL THEN disabled_at WHEN $3 THEN coalesce(disabled_at, now()) ELSE NULL END,
				password_hash = coalesce($4, password_hash),
				updated_at = now()
			WHERE id = $1
			RETURNING `+userColumns, before.ID, in.Role, in.Disabled, hash))
		if err != nil {
			return fmt.Errorf("update user: %w", err)
		}
		if after.Disabled || in.Password != nil {
			if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, after.ID); err != nil {
				return err
			}
		}
		action := "user.update"
		if in.Password != nil && in.Role == nil && in.Disabled == nil {
			action = "user.password.set"
		}
		return audit.Record(ctx, tx, audit.Entry{Action: action, TargetType: "user", TargetID: name, Before: before.auditView(), After: after.auditView()})
	})
	return after, err
}

// Sign-in throttling: after MaxLoginFailures failed attempts for one user
// name within LoginFailureWindow, Authenticate refuses that name until the
// window has passed. Per name rather than per address: guessing one
// account's password from many addresses is the attack that matters.
const (
	MaxLoginFailures   = 10
	LoginFailureWindow = 15 * time.Minute
)

// Authenticate checks a name and password. Every failure, whatever the
// cause (unknown user, wrong password, disabled, no password), is the same
// ErrUnauthenticated, and takes the same time; too many recent failures for
// the name are ErrTooManyRequests.
func (s *Service) Authenticate(ctx context.Context, name, password string) (User, error) {
	var recent int
	err := s.db.QueryRow(ctx, `SELECT count(*) FROM login_failures WHERE user_name = $1 AND at > now() - $2::interval`,
		name, LoginFailureWindow.String()).Scan(&recent)
	if err != nil {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	if recent >= MaxLoginFailures {
		return User{}, fmt.Errorf("too many failed sign-ins for %q; try again in %v: %w", name, LoginFailureWindow, errs.ErrTooManyRequests)
	}
	u, err := s.checkPassword(ctx, name, password)
	switch {
	case errors.Is(err, errs.ErrUnauthenticated) && ValidateUserName(name) == nil:
		// Only names a user could have are counted: the table does not
		// fill with whatever a client sends as a name.
		req := audit.RequestFrom(ctx)
		if _, ierr := s.db.Exec(ctx, `INSERT INTO login_failures (user_name, remote_addr) VALUES ($1, $2)`, name, req.RemoteAddr); ierr != nil {
			return User{}, fmt.Errorf("authenticate: %w", ierr)
		}
	case err == nil && recent > 0:
		if _, err := s.db.Exec(ctx, `DELETE FROM login_failures WHERE user_name = $1`, name); err != nil {
			return User{}, fmt.Errorf("authenticate: %w", err)
		}
	}
	return u, err
}

// DeleteOldLoginFailures forgets failures older than the window.
func (s *Service) DeleteOldLoginFailures(ctx context.Context) (int64, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM login_failures WHERE at <= now() - $1::interval`, LoginFailureWindow.String())
	if err != nil {
		return 0, fmt.Errorf("delete old login failures: %w", err)
	}
	return tag.RowsAffected(), nil
}

func (s *Service) checkPassword(ctx context.Context, name, password string) (User, error) {
	fail := fmt.Errorf("wrong user name or password: %w", errs.ErrUnauthenticated)
	if len(password) > maxPasswordLen {
		return User{}, fail
	}
	var (
		u    User
		hash *string
	)
	err := s.db.QueryRow(ctx, `SELECT `+userColumns+`, password_hash FROM users WHERE name = $1`, name).
		Scan(&u.ID, &u.Name, &u.Role, &u.HasPassword, &u.Disabled, &u.CreatedAt, &u.UpdatedAt, &hash)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	h := dummyHash
	if hash != nil {
		h = *hash
	}
	ok, verr := VerifyPassword(h, password)
	if verr != nil {
		return User{}, fmt.Errorf("user %q: %w", name, verr)
	}
	if !ok || hash == nil || u.Disabled {
		return User{}, fail
	}
	return u, nil
}

// Counts are the identity figures the dashboard shows.
type Counts struct {
	Users        int64
	ActiveTokens int64
	Sessions     int64
}

// Count returns current figures.
func (s *Service) Count(ctx context.Context) (Counts, error) {
	var c Counts
	err := s.db.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM users WHERE disabled_at IS NULL),
		       (SELECT count(*) FROM api_tokens t JOIN users u ON u.id = t.user_id
		         WHERE t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()) AND u.disabled_at IS NULL),
		       (SELECT count(*) FROM sessions WHERE expires_at > now())`).Scan(&c.Users, &c.ActiveTokens, &c.Sessions)
	if err != nil {
		return c, fmt.Errorf("count identities: %w", err)
	}
	return c, nil
}

// ChangePassword lets a user replace their own password, proving they know
// the current one. It ends all their sessions. A token-only user cannot
// give themselves a password: that is an admin's decision.
func (s *Service) ChangePassword(ctx context.Context, name, current, next string) error {
	u, err := s.GetUser(ctx, name)
	if err != nil {
		return err
	}
	if !u.HasPassword {
		return fmt.Errorf("user %q signs in with tokens only; an admin can set a password: %w", name, errs.ErrConflict)
	}
	if _, err := s.Authenticate(ctx, name, current); errors.Is(err, errs.ErrUnauthenticated) {
		return errs.Invalid("current_password", "is not your current password")
	} else if err != nil {
		return err
	}
	if current == next {
		return errs.Invalid("new_password", "must differ from the current password")
	}
	if err := ValidatePassword(next); err != nil {
		return errs.Invalid("new_password", "%s", err.(*errs.FieldError).Rule)
	}
	_, err = s.UpdateUser(ctx, name, UserUpdate{Password: &next})
	return err
}
