package main

// The CI commands: register, report and promote. They are clients of a
// Slipway server's public API (internal/client), never of its database, so
// a pipeline needs only the binary, SLIPWAY_URL and SLIPWAY_TOKEN.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-ml/slipway/internal/client"
)

// Exit statuses of promote beyond 0, 1 and 2.
const (
	exitNotPromoted = 3 // rejected, by a rule or a reviewer, or cancelled
	exitPending     = 4 // still waiting for review
)

// exitStatus ends a command with a status of its own. Its message, if any,
// is printed like an error's; the command has printed the rest.
type exitStatus struct {
	code int
	msg  string
}

func (e exitStatus) Error() string { return e.msg }

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ", ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// parseArgs parses flags and positional arguments in any order
// (`register churn --file m.pkl` as well as `register --file m.pkl churn`).
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{fmt.Sprintf("%s: %v", fs.Name(), err)}
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// apiFlags are the flags of the commands that talk to a server.
type apiFlags struct{ url, token *string }

func addAPIFlags(fs *flag.FlagSet) apiFlags {
	return apiFlags{
		url:   fs.String("url", "", "the server's URL (default: $SLIPWAY_URL)"),
		token: fs.String("token", "", "an API token (default: $SLIPWAY_TOKEN, or the file $SLIPWAY_TOKEN_FILE)"),
	}
}

// client makes the API client from the flags and the environment.
func (f apiFlags) client(getenv func(string) string) (*client.Client, error) {
	base := *f.url
	if base == "" {
		base = getenv("SLIPWAY_URL")
	}
	if base == "" {
		return nil, configError{errors.New("SLIPWAY_URL is not set: the URL of the Slipway server, e.g. http://localhost:8080 (or pass --url)")}
	}
	token := *f.token
	if token == "" {
		token = getenv("SLIPWAY_TOKEN")
	}
	if token == "" && getenv("SLIPWAY_TOKEN_FILE") != "" {
		b, err := os.ReadFile(getenv("SLIPWAY_TOKEN_FILE"))
		if err != nil {
			return nil, configError{fmt.Errorf("SLIPWAY_TOKEN_FILE: %w", err)}
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, configError{errors.New("SLIPWAY_TOKEN is not set: an API token of a user with the contributor role (or pass --token; see docs/ci.md)")}
	}
	c, err := client.New(base, token)
	if err != nil {
		return nil, configError{fmt.Errorf("SLIPWAY_URL: %w", err)}
	}
	c.UserAgent = "slipway/" + version
	return c, nil
}

// explain adds what to do to the API errors a pipeline's configuration
// causes.
func explain(err error) error {
	switch client.StatusCode(err) {
	case 401:
		return fmt.Errorf("%w\nthe token was refused: check SLIPWAY_TOKEN (or --token); it may be mistyped, expired or revoked, or its user disabled", err)
	case 403:
		return fmt.Errorf("%w\nthe token's user may not do this: registering, attaching reports and requesting promotions need the contributor role", err)
	}
	return err
}

var datasetVersionRE = regexp.MustCompile(`^([a-z0-9][a-z0-9._-]{0,127})/([1-9][0-9]*)$`)

// parseDatasetVersion reads DATASET/VERSION, e.g. sessions-test/3.
func parseDatasetVersion(flagName, s string) (*client.DatasetVersion, error) {
	m := datasetVersionRE.FindStringSubmatch(s)
	if m == nil {
		return nil, usageError{fmt.Sprintf("--%s %q: want DATASET/VERSION, e.g. sessions-test/3", flagName, s)}
	}
	n, _ := strconv.Atoi(m[2])
	return &client.DatasetVersion{Dataset: m[1], Version: n}, nil
}

func parseVersionArg(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, usageError{fmt.Sprintf("VERSION %q: want a version number (1, 2, 3…)", s)}
	}
	return n, nil
}

func registerCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("register", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	api := addAPIFlags(fs)
	var files, metadata, training listFlag
	fs.Var(&files, "file", "PATH[=NAME]: a file (or a folder's files) to upload; NAME is its path in the version")
	fs.Var(&metadata, "metadata", "KEY=VALUE (a string) or KEY:=JSON; KEY is a metadata field, or FIELD.KEY inside one")
	metadataFile := fs.String("metadata-file", "", "a JSON object of metadata fields; --metadata and the other flags apply over it")
	description := fs.String("description", "", "the version's description")
	kind := fs.String("kind", "", "model (default) or batch_predictions")
	runRef := fs.String("run", "", "the run that produced it: a Slipway run id, or ORCHESTRATOR:EXTERNAL_ID")
	fs.Var(&training, "training-data", "DATASET/VERSION it was trained on (repeatable)")
	createModel := fs.Bool("create-model", false, "create the model first if it does not exist")
	asJSON := fs.Bool("json", false, "print the version object instead of its number")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"register needs MODEL: slipway register MODEL --file PATH[=NAME] …"}
	}
	if len(files) == 0 {
		return usageError{"register needs at least one --file PATH[=NAME]"}
	}
	model := pos[0]
	c, err := api.client(getenv)
	if err != nil {
		return err
	}
	meta, err := versionMetadata(*metadataFile, metadata, *description, *kind, *runRef, training)
	if err != nil {
		return err
	}
	uploads, total, err := uploadsOf(files)
	if err != nil {
		return err
	}
	if *createModel {
		if err := ensureModel(ctx, c, model, stderr); err != nil {
			return explain(err)
		}
	}
	fmt.Fprintf(stderr, "uploading %d file(s), %s, to %s/models/%s…\n", len(uploads), byteSize(total), c.BaseURL(), model)
	v, err := c.RegisterVersion(ctx, model, meta, uploads, client.NewIdempotencyKey())
	if err != nil {
		return explain(err)
	}
	// Only the number (or the object) on stdout: V=$(slipway register …).
	if *asJSON {
		fmt.Fprintf(stdout, "%s\n", v.JSON())
	} else {
		fmt.Fprintln(stdout, v.Version)
	}
	fmt.Fprintf(stderr, "registered %s version %d: %d file(s), %s\n", v.Model, v.Version, v.ArtifactCount, byteSize(v.TotalSize))
	for _, a := range v.Artifacts {
		fmt.Fprintf(stderr, "  %s  %s  sha256 %s\n", a.Path, byteSize(a.Size), a.SHA256)
	}
	fmt.Fprintf(stderr, "  %s/models/%s/versions/%d\n", c.BaseURL(), v.Model, v.Version)
	return nil
}

// versionMetadata builds the metadata of a version: the file's object,
// then each --metadata setting, then the flags for single fields.
func versionMetadata(file string, settings []string, description, kind, runRef string, training []string) (map[string]any, error) {
	meta := map[string]any{}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--metadata-file: %w", err)
		}
		if err := json.Unmarshal(b, &meta); err != nil || meta == nil {
			return nil, fmt.Errorf("--metadata-file %s: not a JSON object: %v", file, err)
		}
	}
	for _, s := range settings {
		key, value, err := parseSetting(s)
		if err != nil {
			return nil, err
		}
		field, sub, nested := strings.Cut(key, ".")
		if !nested {
			meta[field] = value
			continue
		}
		obj, ok := meta[field].(map[string]any)
		if !ok {
			if meta[field] != nil {
				return nil, usageError{fmt.Sprintf("--metadata %s: %s is not an object", s, field)}
			}
			obj = map[string]any{}
			meta[field] = obj
		}
		obj[sub] = value
	}
	if description != "" {
		meta["description"] = description
	}
	if kind != "" {
		meta["kind"] = kind
	}
	if runRef != "" {
		if id, err := strconv.ParseInt(runRef, 10, 64); err == nil && id > 0 {
			meta["run"] = map[string]any{"id": id}
		} else if orch, ext, ok := strings.Cut(runRef, ":"); ok && orch != "" && ext != "" {
			meta["run"] = map[string]any{"orchestrator": orch, "external_id": ext}
		} else {
			return nil, usageError{fmt.Sprintf("--run %q: want a Slipway run id (41) or ORCHESTRATOR:EXTERNAL_ID (github-actions:11893420417)", runRef)}
		}
	}
	if len(training) > 0 {
		var refs []*client.DatasetVersion
		for _, t := range training {
			d, err := parseDatasetVersion("training-data", t)
			if err != nil {
				return nil, err
			}
			refs = append(refs, d)
		}
		meta["training_data"] = refs
	}
	return meta, nil
}

// parseSetting reads KEY=VALUE (VALUE a string) or KEY:=JSON.
func parseSetting(s string) (string, any, error) {
	key, value, ok := strings.Cut(s, "=")
	if !ok || key == "" || key == ":" {
		return "", nil, usageError{fmt.Sprintf("--metadata %q: want KEY=VALUE or KEY:=JSON, e.g. framework=sklearn, params.C:=0.5", s)}
	}
	if k, isJSON := strings.CutSuffix(key, ":"); isJSON {
		var v any
		if err := json.Unmarshal([]byte(value), &v); err != nil {
			return "", nil, usageError{fmt.Sprintf("--metadata %s: the value after := must be JSON: %v", s, err)}
		}
		return k, v, nil
	}
	return key, value, nil
}

// uploadsOf turns --file PATH[=NAME] arguments into uploads. PATH may be
// a folder: its files are uploaded with their paths under NAME (under the
// version's root without NAME).
func uploadsOf(specs []string) ([]client.Upload, int64, error) {
	var out []client.Upload
	var total int64
	for _, spec := range specs {
		local, name := spec, ""
		if _, err := os.Stat(spec); err != nil {
			if i := strings.LastIndex(spec, "="); i > 0 {
				local, name = spec[:i], spec[i+1:]
			}
		}
		fi, err := os.Stat(local)
		if err != nil {
			return nil, 0, fmt.Errorf("--file %s: %w", spec, err)
		}
		add := func(local, name string) error {
			b, err := client.File(local)
			if err != nil {
				return fmt.Errorf("--file %s: %w", spec, err)
			}
			total += b.Size
			out = append(out, client.Upload{Path: name, ContentType: mime.TypeByExtension(path.Ext(name)), Body: b})
			return nil
		}
		if !fi.IsDir() {
			if name == "" {
				name = filepath.Base(local)
			}
			if err := add(local, name); err != nil {
				return nil, 0, err
			}
			continue
		}
		err = filepath.WalkDir(local, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(local, p)
			if err != nil {
				return err
			}
			return add(p, path.Join(name, filepath.ToSlash(rel)))
		})
		if err != nil {
			return nil, 0, err
		}
	}
	return out, total, nil
}

// ensureModel creates the model unless it exists.
func ensureModel(ctx context.Context, c *client.Client, name string, stderr io.Writer) error {
	_, err := c.GetModel(ctx, name)
	if client.StatusCode(err) != 404 {
		return err
	}
	if _, err := c.CreateModel(ctx, client.NewModel{Name: name}); err != nil && client.StatusCode(err) != 409 {
		return err
	}
	fmt.Fprintf(stderr, "created model %s\n", name)
	return nil
}

func reportCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	api := addAPIFlags(fs)
	suite := fs.String("suite", "", "the evaluation suite, e.g. offline-metrics or reclist (policies name it)")
	format := fs.String("format", "", "slipway, reclist-v0 or reclist-v2 (default: detected)")
	producer := fs.String("producer", "", "the tool and version that wrote the report")
	dataset := fs.String("dataset", "", "DATASET/VERSION evaluated on")
	asJSON := fs.Bool("json", false, "print the report object instead of its id")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 3 {
		return usageError{"report needs MODEL VERSION FILE: slipway report MODEL VERSION FILE --suite SUITE …"}
	}
	if *suite == "" {
		return usageError{"report needs --suite: the evaluation suite policies name, e.g. offline-metrics"}
	}
	n, err := parseVersionArg(pos[1])
	if err != nil {
		return err
	}
	opts := client.ReportOptions{Suite: *suite, Format: *format, Producer: *producer, IdempotencyKey: client.NewIdempotencyKey()}
	if *dataset != "" {
		if opts.EvaluationDataset, err = parseDatasetVersion("dataset", *dataset); err != nil {
			return err
		}
	}
	c, err := api.client(getenv)
	if err != nil {
		return err
	}
	body, err := client.File(pos[2])
	if err != nil {
		return err
	}
	r, err := c.AttachReport(ctx, pos[0], n, opts, body)
	if err != nil {
		return explain(err)
	}
	if *asJSON {
		fmt.Fprintf(stdout, "%s\n", r.JSON())
	} else {
		fmt.Fprintln(stdout, r.ID)
	}
	fmt.Fprintf(stderr, "attached report %d to %s version %d: suite %s, format %s, %d metric(s), %d test(s), %d failed\n",
		r.ID, r.Model, r.Version, r.Suite, r.Format, r.MetricCount, r.TestCount, r.TestsFailed)
	return nil
}

func promoteCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("promote", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	api := addAPIFlags(fs)
	reason := fs.String("reason", "", "why this version should hold the stage (kept with the request)")
	wait := fs.Bool("wait", false, "wait for the reviewers' decision when approvals are needed")
	timeout := fs.Duration("timeout", 30*time.Minute, "with --wait: how long to wait")
	interval := fs.Duration("interval", 5*time.Second, "with --wait: how often to ask")
	key := fs.String("idempotency-key", "", "the request's Idempotency-Key (default: a random one; its retries reuse it)")
	asJSON := fs.Bool("json", false, "print the promotion object (after waiting) instead of the summary")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 3 {
		return usageError{"promote needs MODEL VERSION STAGE: slipway promote MODEL VERSION STAGE [--reason TEXT] [--wait]"}
	}
	n, err := parseVersionArg(pos[1])
	if err != nil {
		return err
	}
	if *timeout <= 0 || *interval <= 0 {
		return usageError{"--timeout and --interval must be positive"}
	}
	c, err := api.client(getenv)
	if err != nil {
		return err
	}
	if *reason == "" {
		*reason = "requested with slipway promote"
	}
	if *key == "" {
		*key = client.NewIdempotencyKey()
	}
	p, err := c.RequestPromotion(ctx, pos[0], n, client.NewPromotion{Stage: pos[2], Reason: *reason}, *key)
	if err != nil {
		return explain(err)
	}
	// The decision and the rules on stdout; with --json, the object is
	// there and they go to stderr.
	// The decision and the rules on stdout; with --json, the object is
	// there and they go to stderr.
	h := stdout
	if *asJSON {
		h = stderr
	}
	printPromotion(h, c, p, true)
	stillOpen := ""
	if p.Open() && *wait {
		q, why, err := waitForDecision(ctx, c, p, *timeout, *interval, stderr)
		if err != nil {
			return explain(err)
		}
		if q.Status != p.Status {
			// A reviewer's rejection does not evaluate the rules again:
			// print them only when they changed.
			printPromotion(h, c, q, !reflect.DeepEqual(q.Rules, p.Rules))
		}
		p, stillOpen = q, why
	}
	if *asJSON {
		fmt.Fprintf(stdout, "%s\n", p.JSON())
	}
	switch p.Status {
	case client.Promoted:
		return nil
	case client.PendingApproval:
		if stillOpen == "" {
			stillOpen = "wait for the decision with --wait"
		}
		return exitStatus{exitPending, fmt.Sprintf("promotion %d waits for review (%d of %d approvals; %s): it stays open, and the reviewers' decision applies whenever it comes",
			p.ID, p.Approvals, p.ApprovalsRequired, stillOpen)}
	default: // rejected or cancelled: printed above
		return exitStatus{code: exitNotPromoted}
	}
}

// printPromotion prints a request's decision and, with rules, the result
// of every rule.
func printPromotion(w io.Writer, c *client.Client, p *client.Promotion, rules bool) {
	champion := "no champion"
	if p.Champion != nil {
		champion = fmt.Sprintf("champion v%d", *p.Champion)
	}
	fmt.Fprintf(w, "promotion %d: %s version %d → %s: %s (policy revision %d, %s)\n", p.ID, p.Model, p.Version, p.Stage, p.Status, p.PolicyRevision, champion)
	for _, r := range p.Rules {
		if !rules {
			break
		}
		mark := "FAIL"
		switch {
		case r.Skipped:
			mark = "skip"
		case r.Pending:
			mark = "wait"
		case r.Passed:
			mark = "pass"
		}
		fmt.Fprintf(w, "  %s  %s: %s\n", mark, r.Name, r.Message)
	}
	if p.Message != "" {
		fmt.Fprintf(w, "  %s\n", p.Message)
	}
	fmt.Fprintf(w, "  %s/promotions/%d\n", c.BaseURL(), p.ID)
}

// waitForDecision asks for the request every interval until it is no
// longer open, or until the timeout passes or ctx ends: then it returns
// the request, still open, and why it stopped waiting. A failed poll is
// reported and tried again: a network blip must not end hours of waiting.
func waitForDecision(ctx context.Context, c *client.Client, p *client.Promotion, timeout, interval time.Duration, stderr io.Writer) (*client.Promotion, string, error) {
	fmt.Fprintf(stderr, "waiting up to %s for review of promotion %d (%d of %d approvals)…\n", timeout, p.ID, p.Approvals, p.ApprovalsRequired)
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return p, fmt.Sprintf("no decision after %s", timeout), nil
		}
		select {
		case <-ctx.Done():
			return p, "interrupted", nil
		case <-time.After(min(interval, left)):
		}
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		q, err := c.GetPromotion(qctx, p.ID)
		cancel()
		switch {
		case ctx.Err() != nil:
			return p, "interrupted", nil
		case err != nil:
			if s := client.StatusCode(err); s == 401 || s == 403 || s == 404 {
				return p, "", err
			}
			fmt.Fprintf(stderr, "slipway: %v (trying again)\n", err)
			continue
		}
		if q.Approvals != p.Approvals && q.Open() {
			fmt.Fprintf(stderr, "promotion %d: %d of %d approvals\n", q.ID, q.Approvals, q.ApprovalsRequired)
		}
		p = q
		if !p.Open() {
			return p, "", nil
		}
	}
}

// byteSize writes n bytes for people.
func byteSize(n int64) string {
	const unit = 1024
	if n == 1 {
		return "1 byte"
	}
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
