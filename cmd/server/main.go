// Command slipway is Slipway's single binary: the server and the
// administrative commands.
//
//	slipway [serve] [--migrate=true|false]
//	slipway migrate up | down [N|--all] | version | force N
//	slipway users create --name NAME --role ROLE    (password on stdin; none: token-only user)
//	slipway tokens create --user NAME --name NAME [--expires-in 720h]
//	slipway health [--url URL]
//	slipway version
//
// Configuration comes from the environment; see the README.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `usage:
  slipway [serve] [--migrate=true|false]     run the server (default)
  slipway migrate up                         apply pending migrations
  slipway migrate down N | --all             revert N migrations, or all of them
  slipway migrate version                    print the schema version
  slipway migrate force N                    mark version N applied and clean, after a
                                             failed migration was repaired by hand
  slipway users create --name NAME --role ROLE
                                             create a user; the password is read from stdin
                                             (empty stdin: a token-only user, e.g. for CI)
  slipway tokens create --user NAME --name NAME [--expires-in DURATION]
                                             create an API token and print it once
  slipway health [--url URL]                 exit 0 when the local server is ready (/readyz);
                                             for container health checks
  slipway version                            print the version

Configuration is read from SLIPWAY_* environment variables (see README.md).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches a command and returns the exit code: 0 success, 1 failure,
// 2 usage or configuration error.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, args, getenv, stderr)
	case "migrate":
		err = migrateCmd(ctx, args, getenv, stdout)
	case "users":
		err = usersCmd(ctx, args, getenv, stdin, stdout)
	case "tokens":
		err = tokensCmd(ctx, args, getenv, stdout)
	case "health":
		err = healthCmd(ctx, args, getenv, stdout)
	case "version":
		fmt.Fprintln(stdout, "slipway", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		err = usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "slipway:", err)
	if _, ok := err.(usageError); ok {
		fmt.Fprint(stderr, "\n"+usage)
		return 2
	}
	if _, ok := err.(configError); ok {
		return 2
	}
	return 1
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
