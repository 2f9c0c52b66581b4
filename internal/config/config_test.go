package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slipway-ml/slipway/internal/config"
)

// Distinctive values, so that a leak of any of them is easy to spot.
const (
	dbPassword     = "db-pass-Zq81"
	accessKey      = "access-key-Kp27"
	secretKey      = "secret-key-Wt64"
	bootstrapToken = "slw_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdEf" // 44 characters after slw_
	bootstrapPass  = "bootstrap-pass-Xy93"
)

var databaseURL = "postgres://slipway:" + dbPassword + "@localhost:5432/slipway"

// minimal is the smallest valid environment.
func minimal() map[string]string {
	return map[string]string{
		"SLIPWAY_DATABASE_URL":  databaseURL,
		"SLIPWAY_S3_ENDPOINT":   "http://127.0.0.1:9000",
		"SLIPWAY_S3_ACCESS_KEY": accessKey,
		"SLIPWAY_S3_SECRET_KEY": secretKey,
	}
}

// env returns a getenv over minimal() with overrides applied; an override
// to "" unsets the variable.
func env(overrides map[string]string) func(string) string {
	m := minimal()
	for k, v := range overrides {
		if v == "" {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	return func(name string) string { return m[name] }
}

// problemVars returns the variables named by the problems of a *config.Error
// (each problem starts with the variable's name and a space).
func problemVars(t *testing.T, err error) []string {
	t.Helper()
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error = %v (%T), want *config.Error", err, err)
	}
	seen := map[string]bool{}
	var vars []string
	for _, p := range ce.Problems {
		name, _, ok := strings.Cut(p, " ")
		if !ok || !strings.HasPrefix(name, "SLIPWAY_") {
			t.Errorf("problem %q does not start with the variable's name", p)
			continue
		}
		if !seen[name] {
			seen[name] = true
			vars = append(vars, name)
		}
		if !strings.Contains(err.Error(), p) {
			t.Errorf("Error() = %q does not contain problem %q", err.Error(), p)
		}
	}
	sort.Strings(vars)
	return vars
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	got, err := config.Load(env(nil), config.Server)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &config.Config{
		Addr:               ":8080",
		DatabaseURL:        databaseURL,
		DBMaxConns:         20,
		DBStatementTimeout: 30 * time.Second,
		Migrate:            true,
		Storage:            "s3",
		S3Endpoint:         "http://127.0.0.1:9000",
		S3Bucket:           "slipway",
		S3Credentials:      "static",
		S3AccessKey:        accessKey,
		S3SecretKey:        secretKey,
		S3Region:           "us-east-1",
		SessionTTL:         12 * time.Hour,
		OrphanGrace:        24 * time.Hour,
		DraftTTL:           24 * time.Hour,
		RequestTimeout:     30 * time.Second,
		ShutdownTimeout:    30 * time.Second,
		MaxJSONBody:        1 << 20,
		LogLevel:           slog.LevelInfo,

		WebhookWorkers:        4,
		WebhookTimeout:        15 * time.Second,
		WebhookDisableAfter:   5 * 24 * time.Hour,
		WebhookRotationWindow: 24 * time.Hour,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
	if got.TLS() {
		t.Error("TLS() = true with no certificate and no public URL")
	}
}

func TestLoadEveryVariable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	got, err := config.Load(env(map[string]string{
		"SLIPWAY_ADDR":                    "127.0.0.1:9090",
		"SLIPWAY_PUBLIC_URL":              "https://slipway.example.com/",
		"SLIPWAY_TLS_CERT_FILE":           "/etc/slipway/cert.pem",
		"SLIPWAY_TLS_KEY_FILE":            "/etc/slipway/key.pem",
		"SLIPWAY_DATABASE_URL":            "postgresql://db.internal/slipway",
		"SLIPWAY_DB_MAX_CONNS":            "7",
		"SLIPWAY_DB_STATEMENT_TIMEOUT":    "5s",
		"SLIPWAY_MIGRATE":                 "false",
		"SLIPWAY_STORAGE":                 "filesystem",
		"SLIPWAY_STORAGE_DIR":             dir,
		"SLIPWAY_S3_ENDPOINT":             "",
		"SLIPWAY_S3_ACCESS_KEY":           "",
		"SLIPWAY_S3_SECRET_KEY":           "",
		"SLIPWAY_S3_BUCKET":               "not_checked_for_filesystem",
		"SLIPWAY_S3_CREDENTIALS":          "aws",
		"SLIPWAY_S3_REGION":               "eu-west-1",
		"SLIPWAY_S3_INSECURE_SKIP_VERIFY": "true",
		"SLIPWAY_BOOTSTRAP_TOKEN":         bootstrapToken,
		"SLIPWAY_BOOTSTRAP_PASSWORD":      bootstrapPass,
		"SLIPWAY_SESSION_TTL":             "90m",
		"SLIPWAY_ORPHAN_GRACE":            "6h",
		"SLIPWAY_DRAFT_TTL":               "2h",
		"SLIPWAY_TRUSTED_PROXIES":         "10.0.0.0/8, 192.168.1.0/24",
		"SLIPWAY_REQUEST_TIMEOUT":         "10s",
		"SLIPWAY_SHUTDOWN_TIMEOUT":        "1m",
		"SLIPWAY_MAX_JSON_BODY":           "2048",
		"SLIPWAY_LOG_LEVEL":               "DEBUG",
		"SLIPWAY_WEBHOOK_KEY":             "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"SLIPWAY_WEBHOOK_KEY_PREVIOUS":    "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=",
		"SLIPWAY_WEBHOOK_ALLOW_PRIVATE":   "true",
		"SLIPWAY_WEBHOOK_ALLOW":           "10.1.0.0/16, 192.0.2.7",
		"SLIPWAY_WEBHOOK_DENY":            "10.1.2.0/24",
		"SLIPWAY_WEBHOOK_WORKERS":         "8",
		"SLIPWAY_WEBHOOK_TIMEOUT":         "5s",
		"SLIPWAY_WEBHOOK_DISABLE_AFTER":   "72h",
		"SLIPWAY_WEBHOOK_ROTATION_WINDOW": "1h",
		"SLIPWAY_WEBHOOK_SCHEDULE":        "1s, 1m,1h",
	}), config.Server)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got.PublicURL == nil || got.PublicURL.String() != "https://slipway.example.com" {
		t.Errorf("PublicURL = %v, want https://slipway.example.com (trailing slash dropped)", got.PublicURL)
	}
	got.PublicURL = nil // *url.URL has unexported fields; checked above
	want := &config.Config{
		Addr:                 "127.0.0.1:9090",
		TLSCertFile:          "/etc/slipway/cert.pem",
		TLSKeyFile:           "/etc/slipway/key.pem",
		DatabaseURL:          "postgresql://db.internal/slipway",
		DBMaxConns:           7,
		DBStatementTimeout:   5 * time.Second,
		Migrate:              false,
		Storage:              "filesystem",
		StorageDir:           dir,
		S3Bucket:             "not_checked_for_filesystem",
		S3Credentials:        "aws",
		S3Region:             "eu-west-1",
		S3InsecureSkipVerify: true,
		BootstrapToken:       bootstrapToken,
		BootstrapPassword:    bootstrapPass,
		SessionTTL:           90 * time.Minute,
		OrphanGrace:          6 * time.Hour,
		DraftTTL:             2 * time.Hour,
		TrustedProxies:       []*net.IPNet{mustCIDR("10.0.0.0/8"), mustCIDR("192.168.1.0/24")},
		RequestTimeout:       10 * time.Second,
		ShutdownTimeout:      time.Minute,
		MaxJSONBody:          2048,
		LogLevel:             slog.LevelDebug,

		WebhookKey:            []byte("0123456789abcdef0123456789abcdef"),
		WebhookKeyPrevious:    []byte("fedcba9876543210fedcba9876543210"),
		WebhookAllowPrivate:   true,
		WebhookAllow:          []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("192.0.2.7/32")},
		WebhookDeny:           []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24")},
		WebhookWorkers:        8,
		WebhookTimeout:        5 * time.Second,
		WebhookDisableAfter:   72 * time.Hour,
		WebhookRotationWindow: time.Hour,
		WebhookSchedule:       []time.Duration{time.Second, time.Minute, time.Hour},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
}

func TestLoadRejectsBadVariable(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "does-not-exist")
	readable := writeFile(t, "from-file\n")
	tests := []struct {
		name string
		env  map[string]string
		want []string // every variable the problems name, sorted
	}{
		{"addr without port", map[string]string{"SLIPWAY_ADDR": "8080"}, []string{"SLIPWAY_ADDR"}},
		{"rotation window beyond a week", map[string]string{"SLIPWAY_WEBHOOK_ROTATION_WINDOW": "169h"}, []string{"SLIPWAY_WEBHOOK_ROTATION_WINDOW"}},
		{"addr host only", map[string]string{"SLIPWAY_ADDR": "localhost"}, []string{"SLIPWAY_ADDR"}},
		{"public url ftp", map[string]string{"SLIPWAY_PUBLIC_URL": "ftp://slipway.example.com"}, []string{"SLIPWAY_PUBLIC_URL"}},
		{"public url with path", map[string]string{"SLIPWAY_PUBLIC_URL": "https://example.com/slipway"}, []string{"SLIPWAY_PUBLIC_URL"}},
		{"public url without host", map[string]string{"SLIPWAY_PUBLIC_URL": "https://"}, []string{"SLIPWAY_PUBLIC_URL"}},
		{"tls cert without key", map[string]string{"SLIPWAY_TLS_CERT_FILE": "/cert.pem"}, []string{"SLIPWAY_TLS_CERT_FILE"}},
		{"tls key without cert", map[string]string{"SLIPWAY_TLS_KEY_FILE": "/key.pem"}, []string{"SLIPWAY_TLS_CERT_FILE"}},
		{"database url missing", map[string]string{"SLIPWAY_DATABASE_URL": ""}, []string{"SLIPWAY_DATABASE_URL"}},
		{"database url mysql", map[string]string{"SLIPWAY_DATABASE_URL": "mysql://u:p@localhost/db"}, []string{"SLIPWAY_DATABASE_URL"}},
		{"database url without host", map[string]string{"SLIPWAY_DATABASE_URL": "postgres:///slipway"}, []string{"SLIPWAY_DATABASE_URL"}},
		{"database url keyword form", map[string]string{"SLIPWAY_DATABASE_URL": "host=localhost dbname=slipway"}, []string{"SLIPWAY_DATABASE_URL"}},
		{"db max conns not a number", map[string]string{"SLIPWAY_DB_MAX_CONNS": "many"}, []string{"SLIPWAY_DB_MAX_CONNS"}},
		{"db max conns zero", map[string]string{"SLIPWAY_DB_MAX_CONNS": "0"}, []string{"SLIPWAY_DB_MAX_CONNS"}},
		{"db max conns too many", map[string]string{"SLIPWAY_DB_MAX_CONNS": "1001"}, []string{"SLIPWAY_DB_MAX_CONNS"}},
		{"max json body too small", map[string]string{"SLIPWAY_MAX_JSON_BODY": "1023"}, []string{"SLIPWAY_MAX_JSON_BODY"}},
		{"max json body too large", map[string]string{"SLIPWAY_MAX_JSON_BODY": "67108865"}, []string{"SLIPWAY_MAX_JSON_BODY"}},
		{"statement timeout unparsable", map[string]string{"SLIPWAY_DB_STATEMENT_TIMEOUT": "30"}, []string{"SLIPWAY_DB_STATEMENT_TIMEOUT"}},
		{"statement timeout zero", map[string]string{"SLIPWAY_DB_STATEMENT_TIMEOUT": "0s"}, []string{"SLIPWAY_DB_STATEMENT_TIMEOUT"}},
		{"session ttl unparsable", map[string]string{"SLIPWAY_SESSION_TTL": "forever"}, []string{"SLIPWAY_SESSION_TTL"}},
		{"session ttl negative", map[string]string{"SLIPWAY_SESSION_TTL": "-5m"}, []string{"SLIPWAY_SESSION_TTL"}},
		{"request timeout unparsable", map[string]string{"SLIPWAY_REQUEST_TIMEOUT": "10 seconds"}, []string{"SLIPWAY_REQUEST_TIMEOUT"}},
		{"shutdown timeout zero", map[string]string{"SLIPWAY_SHUTDOWN_TIMEOUT": "0"}, []string{"SLIPWAY_SHUTDOWN_TIMEOUT"}},
		{"migrate not a boolean", map[string]string{"SLIPWAY_MIGRATE": "yes"}, []string{"SLIPWAY_MIGRATE"}},
		{"insecure skip verify not a boolean", map[string]string{"SLIPWAY_S3_INSECURE_SKIP_VERIFY": "maybe"}, []string{"SLIPWAY_S3_INSECURE_SKIP_VERIFY"}},
		{"storage unknown", map[string]string{"SLIPWAY_STORAGE": "gcs"}, []string{"SLIPWAY_STORAGE"}},
		{"filesystem without dir", map[string]string{"SLIPWAY_STORAGE": "filesystem"}, []string{"SLIPWAY_STORAGE_DIR"}},
		{"s3 endpoint missing", map[string]string{"SLIPWAY_S3_ENDPOINT": ""}, []string{"SLIPWAY_S3_ENDPOINT"}},
		{"s3 endpoint with path", map[string]string{"SLIPWAY_S3_ENDPOINT": "http://127.0.0.1:9000/slipway"}, []string{"SLIPWAY_S3_ENDPOINT"}},
		{"s3 endpoint ftp", map[string]string{"SLIPWAY_S3_ENDPOINT": "ftp://127.0.0.1:9000"}, []string{"SLIPWAY_S3_ENDPOINT"}},
		{"s3 endpoint without scheme", map[string]string{"SLIPWAY_S3_ENDPOINT": "127.0.0.1:9000"}, []string{"SLIPWAY_S3_ENDPOINT"}},
		{"s3 bucket too short", map[string]string{"SLIPWAY_S3_BUCKET": "ab"}, []string{"SLIPWAY_S3_BUCKET"}},
		{"s3 bucket upper case", map[string]string{"SLIPWAY_S3_BUCKET": "Slipway"}, []string{"SLIPWAY_S3_BUCKET"}},
		{"s3 bucket underscore", map[string]string{"SLIPWAY_S3_BUCKET": "slip_way"}, []string{"SLIPWAY_S3_BUCKET"}},
		{"s3 bucket leading dash", map[string]string{"SLIPWAY_S3_BUCKET": "-slipway"}, []string{"SLIPWAY_S3_BUCKET"}},
		{"s3 bucket too long", map[string]string{"SLIPWAY_S3_BUCKET": strings.Repeat("a", 64)}, []string{"SLIPWAY_S3_BUCKET"}},
		{"s3 access key missing", map[string]string{"SLIPWAY_S3_ACCESS_KEY": ""}, []string{"SLIPWAY_S3_ACCESS_KEY"}},
		{"s3 secret key missing", map[string]string{"SLIPWAY_S3_SECRET_KEY": ""}, []string{"SLIPWAY_S3_SECRET_KEY"}},
		{"webhook key previous without key", map[string]string{"SLIPWAY_WEBHOOK_KEY_PREVIOUS": "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="}, []string{"SLIPWAY_WEBHOOK_KEY_PREVIOUS"}},
		{"webhook key previous same as key", map[string]string{"SLIPWAY_WEBHOOK_KEY": "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=", "SLIPWAY_WEBHOOK_KEY_PREVIOUS": "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="}, []string{"SLIPWAY_WEBHOOK_KEY_PREVIOUS"}},
		{"webhook key previous short", map[string]string{"SLIPWAY_WEBHOOK_KEY": "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=", "SLIPWAY_WEBHOOK_KEY_PREVIOUS": "c2hvcnQ="}, []string{"SLIPWAY_WEBHOOK_KEY_PREVIOUS"}},
		{"s3 credentials unknown", map[string]string{"SLIPWAY_S3_CREDENTIALS": "iam"}, []string{"SLIPWAY_S3_CREDENTIALS"}},
		{"s3 aws credentials with keys", map[string]string{"SLIPWAY_S3_CREDENTIALS": "aws"}, []string{"SLIPWAY_S3_ACCESS_KEY", "SLIPWAY_S3_SECRET_KEY"}},
		{"bootstrap token short", map[string]string{"SLIPWAY_BOOTSTRAP_TOKEN": "slw_tooshort"}, []string{"SLIPWAY_BOOTSTRAP_TOKEN"}},
		{"bootstrap token 42 characters", map[string]string{"SLIPWAY_BOOTSTRAP_TOKEN": "slw_" + strings.Repeat("a", 42)}, []string{"SLIPWAY_BOOTSTRAP_TOKEN"}},
		{"bootstrap token wrong prefix", map[string]string{"SLIPWAY_BOOTSTRAP_TOKEN": "tok_" + strings.Repeat("a", 43)}, []string{"SLIPWAY_BOOTSTRAP_TOKEN"}},
		{"bootstrap token not base64url", map[string]string{"SLIPWAY_BOOTSTRAP_TOKEN": "slw_" + strings.Repeat("a+/", 15)}, []string{"SLIPWAY_BOOTSTRAP_TOKEN"}},
		{"bootstrap password short", map[string]string{"SLIPWAY_BOOTSTRAP_TOKEN": bootstrapToken, "SLIPWAY_BOOTSTRAP_PASSWORD": "short"}, []string{"SLIPWAY_BOOTSTRAP_PASSWORD"}},
		{"bootstrap password without token", map[string]string{"SLIPWAY_BOOTSTRAP_PASSWORD": bootstrapPass}, []string{"SLIPWAY_BOOTSTRAP_PASSWORD"}},
		{"log level unknown", map[string]string{"SLIPWAY_LOG_LEVEL": "verbose"}, []string{"SLIPWAY_LOG_LEVEL"}},
		{"trusted proxy not a CIDR", map[string]string{"SLIPWAY_TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"}, []string{"SLIPWAY_TRUSTED_PROXIES"}},
		{"orphan grace zero", map[string]string{"SLIPWAY_ORPHAN_GRACE": "0s"}, []string{"SLIPWAY_ORPHAN_GRACE"}},
		// A secret given both ways is refused, and then counts as unset.
		{"s3 secret key and file", map[string]string{"SLIPWAY_S3_SECRET_KEY_FILE": readable}, []string{"SLIPWAY_S3_SECRET_KEY"}},
		{"database url and file", map[string]string{"SLIPWAY_DATABASE_URL_FILE": readable}, []string{"SLIPWAY_DATABASE_URL"}},
		{"bootstrap token and file", map[string]string{"SLIPWAY_BOOTSTRAP_TOKEN": bootstrapToken, "SLIPWAY_BOOTSTRAP_TOKEN_FILE": readable}, []string{"SLIPWAY_BOOTSTRAP_TOKEN"}},
		// An unreadable file names the _FILE variable (and the value it should have given is missing).
		{"s3 access key file missing", map[string]string{"SLIPWAY_S3_ACCESS_KEY": "", "SLIPWAY_S3_ACCESS_KEY_FILE": missing}, []string{"SLIPWAY_S3_ACCESS_KEY", "SLIPWAY_S3_ACCESS_KEY_FILE"}},
		{"database url file is a directory", map[string]string{"SLIPWAY_DATABASE_URL": "", "SLIPWAY_DATABASE_URL_FILE": t.TempDir()}, []string{"SLIPWAY_DATABASE_URL", "SLIPWAY_DATABASE_URL_FILE"}},
		{"bootstrap password file missing", map[string]string{"SLIPWAY_BOOTSTRAP_TOKEN": bootstrapToken, "SLIPWAY_BOOTSTRAP_PASSWORD_FILE": missing}, []string{"SLIPWAY_BOOTSTRAP_PASSWORD_FILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Load(env(tt.env), config.Server)
			if err == nil {
				t.Fatalf("Load succeeded (%+v), want an error naming %v", cfg, tt.want)
			}
			if cfg != nil {
				t.Errorf("Load returned a config with its error")
			}
			if diff := cmp.Diff(tt.want, problemVars(t, err)); diff != "" {
				t.Errorf("variables named by the problems (-want +got):\n%s\nerror: %v", diff, err)
			}
		})
	}
}

func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	_, err := config.Load(env(map[string]string{
		"SLIPWAY_ADDR":            "nope",
		"SLIPWAY_DATABASE_URL":    "",
		"SLIPWAY_MIGRATE":         "sometimes",
		"SLIPWAY_SESSION_TTL":     "0s",
		"SLIPWAY_REQUEST_TIMEOUT": "-1s",
		"SLIPWAY_S3_BUCKET":       "X",
		"SLIPWAY_S3_SECRET_KEY":   "",
		"SLIPWAY_LOG_LEVEL":       "loud",
	}), config.Server)
	want := []string{
		"SLIPWAY_ADDR", "SLIPWAY_DATABASE_URL", "SLIPWAY_LOG_LEVEL", "SLIPWAY_MIGRATE",
		"SLIPWAY_REQUEST_TIMEOUT", "SLIPWAY_S3_BUCKET", "SLIPWAY_S3_SECRET_KEY", "SLIPWAY_SESSION_TTL",
	}
	if diff := cmp.Diff(want, problemVars(t, err)); diff != "" {
		t.Errorf("variables named by the problems (-want +got):\n%s\nerror: %v", diff, err)
	}
}

func TestLoadReadsFileVariants(t *testing.T) {
	t.Parallel()
	dbURL := "postgres://slipway:file-db-pass@db:5432/slipway"
	got, err := config.Load(env(map[string]string{
		"SLIPWAY_DATABASE_URL":            "",
		"SLIPWAY_DATABASE_URL_FILE":       writeFile(t, dbURL+"\n"),
		"SLIPWAY_S3_ACCESS_KEY":           "",
		"SLIPWAY_S3_ACCESS_KEY_FILE":      writeFile(t, "file-access\n"),
		"SLIPWAY_S3_SECRET_KEY":           "",
		"SLIPWAY_S3_SECRET_KEY_FILE":      writeFile(t, "file-secret"), // no newline at all
		"SLIPWAY_BOOTSTRAP_TOKEN_FILE":    writeFile(t, bootstrapToken+"\r\n"),
		"SLIPWAY_BOOTSTRAP_PASSWORD_FILE": writeFile(t, "  spaces are kept  \n\n"),
	}), config.Server)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	type secrets struct{ DatabaseURL, S3AccessKey, S3SecretKey, BootstrapToken, BootstrapPassword string }
	want := secrets{dbURL, "file-access", "file-secret", bootstrapToken, "  spaces are kept  "}
	gotS := secrets{got.DatabaseURL, got.S3AccessKey, got.S3SecretKey, got.BootstrapToken, got.BootstrapPassword}
	if diff := cmp.Diff(want, gotS); diff != "" {
		t.Errorf("secrets read from files (-want +got):\n%s", diff)
	}
}

// logJSON renders cfg the way the start-up log line does and returns the
// raw line and its "config" group.
func logJSON(t *testing.T, cfg *config.Config) (string, map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("configuration", "config", cfg)
	var line struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line %q: %v", buf.String(), err)
	}
	if line.Config == nil {
		t.Fatalf("log line %q has no config group", buf.String())
	}
	return buf.String(), line.Config
}

func TestLogValueRedactsSecrets(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(map[string]string{
		"SLIPWAY_BOOTSTRAP_TOKEN":    bootstrapToken,
		"SLIPWAY_BOOTSTRAP_PASSWORD": bootstrapPass,
	}), config.Server)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	raw, fields := logJSON(t, cfg)
	for _, secret := range []string{dbPassword, accessKey, secretKey, bootstrapToken, bootstrapToken[4:], bootstrapPass} {
		if strings.Contains(raw, secret) {
			t.Errorf("log line contains secret %q:\n%s", secret, raw)
		}
	}
	want := map[string]any{
		"database_url":       "postgres://slipway:redacted@localhost:5432/slipway",
		"s3_access_key":      "[redacted]",
		"s3_secret_key":      "[redacted]",
		"bootstrap_token":    "[redacted]",
		"bootstrap_password": "[redacted]",
		// Non-secret values stay readable: the log line is for operators.
		"s3_endpoint": "http://127.0.0.1:9000",
		"s3_bucket":   "slipway",
		"addr":        ":8080",
		"storage":     "s3",
		"log_level":   "INFO",
	}
	got := map[string]any{}
	for k := range want {
		got[k] = fields[k]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("logged fields (-want +got):\n%s", diff)
	}
}

func TestLogValueUnsetSecretsAreEmpty(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(nil), config.Server)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	_, fields := logJSON(t, cfg)
	// An unset secret is shown as unset, not as "[redacted]", so operators
	// can tell the two apart.
	for _, k := range []string{"bootstrap_token", "bootstrap_password"} {
		if fields[k] != "" {
			t.Errorf("%s = %q, want empty when unset", k, fields[k])
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"postgres://slipway:hunter2@localhost:5432/slipway?sslmode=disable", "postgres://slipway:redacted@localhost:5432/slipway?sslmode=disable"},
		{"postgres://slipway@localhost/slipway", "postgres://slipway@localhost/slipway"},
		{"postgres://localhost/slipway", "postgres://localhost/slipway"},
		{"postgres://u:p%40ss@host/db", "postgres://u:redacted@host/db"},
		{"postgres://u:hunter2@host:port:bad/db", "[redacted]"}, // unparsable: hide it all
	}
	for _, tt := range tests {
		if got := config.RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// pgx also takes the password from the query string; the start-up log must
// not show it either.
func TestRedactURLQueryPassword(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"postgres://slipway@localhost/slipway?password=hunter2",
		"postgres://slipway@localhost/slipway?sslmode=require&sslpassword=hunter2",
	} {
		if got := config.RedactURL(in); strings.Contains(got, "hunter2") {
			t.Errorf("RedactURL(%q) = %q, shows the password", in, got)
		}
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"nothing", nil, false},
		{"certificate and key", map[string]string{"SLIPWAY_TLS_CERT_FILE": "/c.pem", "SLIPWAY_TLS_KEY_FILE": "/k.pem"}, true},
		{"https public url behind a proxy", map[string]string{"SLIPWAY_PUBLIC_URL": "https://slipway.example.com"}, true},
		{"http public url", map[string]string{"SLIPWAY_PUBLIC_URL": "http://slipway.example.com"}, false},
		{"certificate and http public url", map[string]string{"SLIPWAY_TLS_CERT_FILE": "/c.pem", "SLIPWAY_TLS_KEY_FILE": "/k.pem", "SLIPWAY_PUBLIC_URL": "http://localhost:8080"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Load(env(tt.env), config.Server)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := cfg.TLS(); got != tt.want {
				t.Errorf("TLS() = %v, want %v", got, tt.want)
			}
		})
	}
	if (&config.Config{}).TLS() {
		t.Error("zero Config: TLS() = true")
	}
}

// The administrative commands need the database only: what the server alone
// uses is neither required nor checked.
func TestLoadToolsScope(t *testing.T) {
	t.Parallel()
	dbOnly := func(extra map[string]string) func(string) string {
		m := map[string]string{"SLIPWAY_DATABASE_URL": databaseURL}
		for k, v := range extra {
			m[k] = v
		}
		return func(name string) string { return m[name] }
	}
	cfg, err := config.Load(dbOnly(map[string]string{
		"SLIPWAY_ADDR":               "not an address",
		"SLIPWAY_STORAGE":            "gcs",
		"SLIPWAY_S3_BUCKET":          "X",
		"SLIPWAY_BOOTSTRAP_TOKEN":    "slw_short",
		"SLIPWAY_BOOTSTRAP_PASSWORD": "short",
		"SLIPWAY_SESSION_TTL":        "0s",
	}), config.Tools)
	if err != nil {
		t.Fatalf("Load(Tools) with only a database URL: %v", err)
	}
	if cfg.DatabaseURL != databaseURL || cfg.DBMaxConns != 20 || cfg.DBStatementTimeout != 30*time.Second {
		t.Errorf("Load(Tools) = database %q, max conns %d, statement timeout %v; want the URL and defaults",
			cfg.DatabaseURL, cfg.DBMaxConns, cfg.DBStatementTimeout)
	}

	// What the tools do use is still checked.
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"database url missing", map[string]string{"SLIPWAY_DATABASE_URL": ""}, []string{"SLIPWAY_DATABASE_URL"}},
		{"database url mysql", map[string]string{"SLIPWAY_DATABASE_URL": "mysql://h/db"}, []string{"SLIPWAY_DATABASE_URL"}},
		{"database url and file", map[string]string{"SLIPWAY_DATABASE_URL_FILE": writeFile(t, databaseURL)}, []string{"SLIPWAY_DATABASE_URL"}},
		{"db max conns", map[string]string{"SLIPWAY_DB_MAX_CONNS": "0"}, []string{"SLIPWAY_DB_MAX_CONNS"}},
		{"statement timeout unparsable", map[string]string{"SLIPWAY_DB_STATEMENT_TIMEOUT": "soon"}, []string{"SLIPWAY_DB_STATEMENT_TIMEOUT"}},
		{"log level", map[string]string{"SLIPWAY_LOG_LEVEL": "loud"}, []string{"SLIPWAY_LOG_LEVEL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(dbOnly(tt.env), config.Tools)
			if err == nil {
				t.Fatalf("Load(Tools) succeeded, want an error naming %v", tt.want)
			}
			if diff := cmp.Diff(tt.want, problemVars(t, err)); diff != "" {
				t.Errorf("variables named by the problems (-want +got):\n%s\nerror: %v", diff, err)
			}
		})
	}
}

// The tools open the database with SLIPWAY_DB_STATEMENT_TIMEOUT too; a
// negative one reaches PostgreSQL as a negative statement_timeout.
func TestLoadToolsScopeChecksStatementTimeout(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"0s", "-5s"} {
		_, err := config.Load(func(name string) string {
			return map[string]string{"SLIPWAY_DATABASE_URL": databaseURL, "SLIPWAY_DB_STATEMENT_TIMEOUT": v}[name]
		}, config.Tools)
		if err == nil {
			t.Errorf("Load(Tools) accepted SLIPWAY_DB_STATEMENT_TIMEOUT=%s", v)
		}
	}
}

func mustCIDR(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}
