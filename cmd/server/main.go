// Command slipway is Slipway's single binary: the server, the
// administrative commands, and the commands CI pipelines use to register
// versions, attach reports and request promotions.
//
//	slipway [serve] [--migrate=true|false]
//	slipway migrate up | down [N|--all] | version | force N
//	slipway users create --name NAME --role ROLE    (password on stdin; none: token-only user)
//	slipway tokens create --user NAME --name NAME [--expires-in 720h]
//	slipway webhooks reseal
//	slipway health [--url URL]
//	slipway demo [--webhook-url URL] [--secret-file FILE]
//	slipway register MODEL --file PATH[=NAME]… [--metadata KEY=VALUE|KEY:=JSON]… [--json]
//	slipway report MODEL VERSION FILE --suite SUITE [--dataset DATASET/VERSION]
//	slipway promote MODEL VERSION STAGE [--reason TEXT] [--wait [--timeout 30m]]
//	slipway version
//
// Configuration comes from the environment; see the README. register,
// report and promote are clients of a server's REST API only (SLIPWAY_URL,
// SLIPWAY_TOKEN; see docs/ci.md); promote exits 3 when the request is
// rejected or cancelled and 4 while it waits for review.
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
  slipway webhooks reseal                    seal every webhook signing secret under
                                             SLIPWAY_WEBHOOK_KEY (a key rotation: run with the
                                             old key as SLIPWAY_WEBHOOK_KEY_PREVIOUS)
  slipway health [--url URL]                 exit 0 when the local server is ready (/readyz);
                                             for container health checks
  slipway demo [--webhook-url URL] [--secret-file FILE]
                                             load the demo story into an empty registry
                                             (a webhook endpoint at URL for stage moves,
                                             its signing secret written to FILE)
  slipway version                            print the version

For pipelines (clients of a server's API; see docs/ci.md):
  slipway register MODEL --file PATH[=NAME]... [--metadata KEY=VALUE | KEY:=JSON]...
          [--metadata-file FILE.json] [--description TEXT] [--kind model|batch_predictions]
          [--run ID | ORCHESTRATOR:EXTERNAL_ID] [--training-data DATASET/VERSION]...
          [--create-model] [--json]
                                             register a version and upload its files (a
                                             folder: its files); prints the version number
  slipway report MODEL VERSION FILE --suite SUITE [--format slipway|reclist-v0|reclist-v2]
          [--producer TEXT] [--dataset DATASET/VERSION] [--json]
                                             attach an evaluation report; prints its id
  slipway promote MODEL VERSION STAGE [--reason TEXT] [--wait] [--timeout 30m]
          [--interval 5s] [--idempotency-key KEY] [--json]
                                             request a promotion; prints the decision and
                                             every rule's result
  They read the server's URL from SLIPWAY_URL and an API token (role contributor)
  from SLIPWAY_TOKEN or the file SLIPWAY_TOKEN_FILE; --url and --token override them.

Exit status: 0 success (promote: promoted); 1 error; 2 usage or configuration
error; 3 promote: rejected (by the policy or a reviewer) or cancelled; 4 promote:
still waiting for review (no --wait, --timeout passed, or interrupted).

Configuration is read from SLIPWAY_* environment variables (see README.md).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches a command and returns the exit code: 0 success, 1 failure,
// 2 usage or configuration error; promote adds 3 (not promoted) and 4
// (waiting for review).
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
	case "webhooks":
		err = webhooksCmd(ctx, args, getenv, stdout)
	case "health":
		err = healthCmd(ctx, args, getenv, stdout)
	case "demo":
		err = demoCmd(ctx, args, getenv, stdout, stderr)
	case "register":
		err = registerCmd(ctx, args, getenv, stdout, stderr)
	case "report":
		err = reportCmd(ctx, args, getenv, stdout, stderr)
	case "promote":
		err = promoteCmd(ctx, args, getenv, stdout, stderr)
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
	if es, ok := err.(exitStatus); ok {
		if es.msg != "" {
			fmt.Fprintln(stderr, "slipway:", es.msg)
		}
		return es.code
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
