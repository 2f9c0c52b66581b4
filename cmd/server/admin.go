package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/config"
	"github.com/slipway-ml/slipway/internal/database"
	"github.com/slipway-ml/slipway/internal/webhook"
)

// cliActor is the audit actor of changes made with this command line.
var cliActor = audit.Actor{Name: "cli"}

// toolsDatabase opens the database for an administrative command; with
// checkSchema, it refuses a schema this binary does not know.
func toolsDatabase(ctx context.Context, getenv func(string) string, checkSchema bool) (*pgxpool.Pool, error) {
	cfg, err := loadConfig(getenv, config.Tools)
	if err != nil {
		return nil, err
	}
	pool, err := openDatabase(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if checkSchema {
		if err := database.CheckSchema(ctx, pool); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return pool, nil
}

func migrateCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{"migrate needs up, down, version or force"}
	}
	pool, err := toolsDatabase(ctx, getenv, false)
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := database.NewMigrator(pool)
	if err != nil {
		return err
	}
	defer m.Close()
	switch args[0] {
	case "up":
		if len(args) != 1 {
			return usageError{"migrate up takes no arguments"}
		}
		if err := m.Up(); err != nil {
			return err
		}
	case "down":
		if len(args) != 2 {
			return usageError{"migrate down needs N (how many) or --all"}
		}
		n := 0
		if args[1] != "--all" {
			n, err = strconv.Atoi(args[1])
			if err != nil || n < 1 {
				return usageError{"migrate down needs a positive N or --all"}
			}
		}
		if err := m.Down(n); err != nil {
			return err
		}
	case "force":
		if len(args) != 2 {
			return usageError{"migrate force needs the version N the schema now matches"}
		}
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 0 || n > int(database.LatestVersion()) {
			return usageError{fmt.Sprintf("migrate force needs a version N between 0 and %d", database.LatestVersion())}
		}
		if err := m.Force(n); err != nil {
			return err
		}
	case "version":
	default:
		return usageError{fmt.Sprintf("unknown migrate command %q", args[0])}
	}
	v, dirty, err := m.Version()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema version %d (this binary knows %d)", v, database.LatestVersion())
	if dirty {
		fmt.Fprint(stdout, ", dirty: a migration failed half-way")
	}
	fmt.Fprintln(stdout)
	return nil
}

func usersCmd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return usageError{"users needs create"}
	}
	fs := flag.NewFlagSet("users create", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "user name")
	role := fs.String("role", "", "viewer, contributor, reviewer or admin")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	if *name == "" || *role == "" || fs.NArg() > 0 {
		return usageError{"users create needs --name and --role"}
	}
	// The password comes on stdin so that it is neither in the process
	// list nor in shell history. An empty stdin makes a token-only user.
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return fmt.Errorf("read password from stdin: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	pool, err := toolsDatabase(ctx, getenv, true)
	if err != nil {
		return err
	}
	defer pool.Close()
	svc := auth.NewService(pool, auth.Config{})
	u, err := svc.CreateUser(audit.WithActor(ctx, cliActor), auth.NewUser{Name: *name, Role: auth.Role(*role), Password: password})
	if err != nil {
		return err
	}
	login := "password"
	if !u.HasPassword {
		login = "tokens only"
	}
	fmt.Fprintf(stdout, "created user %s (role %s, sign-in: %s)\n", u.Name, u.Role, login)
	return nil
}

func tokensCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return usageError{"tokens needs create"}
	}
	fs := flag.NewFlagSet("tokens create", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	user := fs.String("user", "", "the user the token acts as")
	name := fs.String("name", "", "a name to recognise the token by")
	expiresIn := fs.Duration("expires-in", 0, "lifetime, e.g. 720h; 0 for a token that does not expire")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	if *user == "" || *name == "" || fs.NArg() > 0 {
		return usageError{"tokens create needs --user and --name"}
	}
	if *expiresIn < 0 {
		return usageError{"--expires-in must not be negative"}
	}
	pool, err := toolsDatabase(ctx, getenv, true)
	if err != nil {
		return err
	}
	defer pool.Close()
	in := auth.NewToken{UserName: *user, Name: *name}
	if *expiresIn > 0 {
		t := time.Now().Add(*expiresIn)
		in.ExpiresAt = &t
	}
	secret, _, err := auth.NewService(pool, auth.Config{}).CreateToken(audit.WithActor(ctx, cliActor), in)
	if err != nil {
		return err
	}
	// The token alone on stdout, so that scripts can capture it.
	fmt.Fprintln(stdout, secret)
	return nil
}

// webhooksCmd reseals the webhook signing secrets under the current
// SLIPWAY_WEBHOOK_KEY: the middle step of a key rotation (see
// docs/operations.md).
func webhooksCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) != 1 || args[0] != "reseal" {
		return usageError{"webhooks needs reseal"}
	}
	cfg, err := loadConfig(getenv, config.Tools)
	if err != nil {
		return err
	}
	if cfg.WebhookKey == nil {
		return usageError{"webhooks reseal needs SLIPWAY_WEBHOOK_KEY (the new key) and, during a rotation, SLIPWAY_WEBHOOK_KEY_PREVIOUS (the old one)"}
	}
	sealer, err := newSealer(cfg)
	if err != nil {
		return err
	}
	pool, err := toolsDatabase(ctx, getenv, true)
	if err != nil {
		return err
	}
	defer pool.Close()
	resealed, total, err := webhook.NewService(pool, sealer, webhook.AddressPolicy{}).ResealSecrets(audit.WithActor(ctx, cliActor))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "resealed the secrets of %d of %d webhook endpoints under SLIPWAY_WEBHOOK_KEY", resealed, total)
	if cfg.WebhookKeyPrevious != nil {
		fmt.Fprint(stdout, "; SLIPWAY_WEBHOOK_KEY_PREVIOUS is no longer needed")
	}
	fmt.Fprintln(stdout)
	return nil
}
