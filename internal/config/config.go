// Package config reads Slipway's configuration from the environment once, at
// start, validates all of it and reports every problem with the name of the
// variable at fault. Nothing else in Slipway reads the environment.
package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Config is the whole configuration of a Slipway process.
type Config struct {
	Addr      string   // SLIPWAY_ADDR, host:port to listen on
	PublicURL *url.URL // SLIPWAY_PUBLIC_URL, how browsers reach Slipway; https means secure cookies

	TLSCertFile string // SLIPWAY_TLS_CERT_FILE, serve TLS directly when set with the key
	TLSKeyFile  string // SLIPWAY_TLS_KEY_FILE

	DatabaseURL        string        // SLIPWAY_DATABASE_URL
	DBMaxConns         int32         // SLIPWAY_DB_MAX_CONNS
	DBStatementTimeout time.Duration // SLIPWAY_DB_STATEMENT_TIMEOUT
	Migrate            bool          // SLIPWAY_MIGRATE: apply migrations at start

	Storage              string // SLIPWAY_STORAGE: s3 or filesystem
	StorageDir           string // SLIPWAY_STORAGE_DIR, for filesystem
	S3Endpoint           string // SLIPWAY_S3_ENDPOINT
	S3Bucket             string // SLIPWAY_S3_BUCKET
	S3Credentials        string // SLIPWAY_S3_CREDENTIALS: static (the two keys below) or aws (as the AWS SDKs find them)
	S3AccessKey          string // SLIPWAY_S3_ACCESS_KEY (or _FILE)
	S3SecretKey          string // SLIPWAY_S3_SECRET_KEY (or _FILE)
	S3Region             string // SLIPWAY_S3_REGION
	S3InsecureSkipVerify bool   // SLIPWAY_S3_INSECURE_SKIP_VERIFY

	BootstrapToken    string // SLIPWAY_BOOTSTRAP_TOKEN (or _FILE)
	BootstrapPassword string // SLIPWAY_BOOTSTRAP_PASSWORD (or _FILE)

	// TrustedProxies are the networks of reverse proxies whose
	// X-Forwarded-For is believed (SLIPWAY_TRUSTED_PROXIES, CIDRs).
	TrustedProxies []*net.IPNet

	// OrphanGrace is how old an object no version references must be
	// before the reaper deletes it (SLIPWAY_ORPHAN_GRACE): longer than
	// any upload takes.
	OrphanGrace time.Duration
	// DraftTTL is how long a draft version waits to be finalized
	// (SLIPWAY_DRAFT_TTL).
	DraftTTL time.Duration

	SessionTTL      time.Duration // SLIPWAY_SESSION_TTL
	RequestTimeout  time.Duration // SLIPWAY_REQUEST_TIMEOUT
	ShutdownTimeout time.Duration // SLIPWAY_SHUTDOWN_TIMEOUT
	MaxJSONBody     int64         // SLIPWAY_MAX_JSON_BODY, bytes

	LogLevel slog.Level // SLIPWAY_LOG_LEVEL

	// Webhooks. WebhookKey seals signing secrets at rest (SLIPWAY_WEBHOOK_KEY
	// or _FILE: 32 bytes, base64); without it no endpoint can be created.
	WebhookKey []byte
	// WebhookKeyPrevious opens secrets sealed before a key rotation
	// (SLIPWAY_WEBHOOK_KEY_PREVIOUS or _FILE); `slipway webhooks reseal`
	// moves them to WebhookKey, after which it can go.
	WebhookKeyPrevious []byte
	// WebhookAllowPrivate lets deliveries reach loopback and private
	// networks (SLIPWAY_WEBHOOK_ALLOW_PRIVATE); WebhookAllow and
	// WebhookDeny are networks always allowed or refused
	// (SLIPWAY_WEBHOOK_ALLOW, SLIPWAY_WEBHOOK_DENY: comma-separated CIDRs).
	WebhookAllowPrivate       bool
	WebhookAllow, WebhookDeny []netip.Prefix
	WebhookWorkers            int           // SLIPWAY_WEBHOOK_WORKERS
	WebhookTimeout            time.Duration // SLIPWAY_WEBHOOK_TIMEOUT, one attempt
	WebhookDisableAfter       time.Duration // SLIPWAY_WEBHOOK_DISABLE_AFTER, of continuous failure
	WebhookRotationWindow     time.Duration // SLIPWAY_WEBHOOK_ROTATION_WINDOW, both secrets sign
	// WebhookSchedule is the wait before each retry
	// (SLIPWAY_WEBHOOK_SCHEDULE: comma-separated durations; empty: the
	// default, about 3 days in all).
	WebhookSchedule []time.Duration
}

// TLS reports whether browsers reach Slipway over TLS, directly or through a
// proxy that terminates it.
func (c *Config) TLS() bool {
	return c.TLSCertFile != "" || (c.PublicURL != nil && c.PublicURL.Scheme == "https")
}

// Error lists every invalid variable.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return "invalid configuration:\n  " + strings.Join(e.Problems, "\n  ")
}

// bootstrapTokenPattern: what `slipway tokens create` makes, slw_ + 32 random
// bytes in base64url; bootstrap tokens must be at least as strong.
var bootstrapTokenPattern = regexp.MustCompile(`^slw_[A-Za-z0-9_-]{43,}$`)

// Scope says which part of the configuration a command needs.
type Scope int

const (
	// Server is everything `slipway serve` needs.
	Server Scope = iota
	// Tools is what the administrative commands (migrate, users, tokens)
	// need: the database only.
	Tools
)

// Load reads the configuration from getenv (os.Getenv in production).
func Load(getenv func(string) string, scope Scope) (*Config, error) {
	r := reader{getenv: getenv}
	c := &Config{
		Addr:                  r.str("SLIPWAY_ADDR", ":8080"),
		TLSCertFile:           r.str("SLIPWAY_TLS_CERT_FILE", ""),
		TLSKeyFile:            r.str("SLIPWAY_TLS_KEY_FILE", ""),
		DatabaseURL:           r.secret("SLIPWAY_DATABASE_URL"),
		DBMaxConns:            int32(r.integer("SLIPWAY_DB_MAX_CONNS", 20, 1, 1000)),
		DBStatementTimeout:    r.duration("SLIPWAY_DB_STATEMENT_TIMEOUT", 30*time.Second),
		Migrate:               r.boolean("SLIPWAY_MIGRATE", true),
		Storage:               r.str("SLIPWAY_STORAGE", "s3"),
		StorageDir:            r.str("SLIPWAY_STORAGE_DIR", ""),
		S3Endpoint:            r.str("SLIPWAY_S3_ENDPOINT", ""),
		S3Bucket:              r.str("SLIPWAY_S3_BUCKET", "slipway"),
		S3Credentials:         r.str("SLIPWAY_S3_CREDENTIALS", "static"),
		S3AccessKey:           r.secret("SLIPWAY_S3_ACCESS_KEY"),
		S3SecretKey:           r.secret("SLIPWAY_S3_SECRET_KEY"),
		S3Region:              r.str("SLIPWAY_S3_REGION", "us-east-1"),
		S3InsecureSkipVerify:  r.boolean("SLIPWAY_S3_INSECURE_SKIP_VERIFY", false),
		BootstrapToken:        r.secret("SLIPWAY_BOOTSTRAP_TOKEN"),
		BootstrapPassword:     r.secret("SLIPWAY_BOOTSTRAP_PASSWORD"),
		SessionTTL:            r.duration("SLIPWAY_SESSION_TTL", 12*time.Hour),
		OrphanGrace:           r.duration("SLIPWAY_ORPHAN_GRACE", 24*time.Hour),
		DraftTTL:              r.duration("SLIPWAY_DRAFT_TTL", 24*time.Hour),
		RequestTimeout:        r.duration("SLIPWAY_REQUEST_TIMEOUT", 30*time.Second),
		ShutdownTimeout:       r.duration("SLIPWAY_SHUTDOWN_TIMEOUT", 30*time.Second),
		MaxJSONBody:           int64(r.integer("SLIPWAY_MAX_JSON_BODY", 1<<20, 1024, 64<<20)),
		WebhookAllowPrivate:   r.boolean("SLIPWAY_WEBHOOK_ALLOW_PRIVATE", false),
		WebhookWorkers:        r.integer("SLIPWAY_WEBHOOK_WORKERS", 4, 1, 256),
		WebhookTimeout:        r.duration("SLIPWAY_WEBHOOK_TIMEOUT", 15*time.Second),
		WebhookDisableAfter:   r.duration("SLIPWAY_WEBHOOK_DISABLE_AFTER", 5*24*time.Hour),
		WebhookRotationWindow: r.duration("SLIPWAY_WEBHOOK_ROTATION_WINDOW", 24*time.Hour),
	}
	// the longest window a rotation takes (webhook.MaxRotationWindow)
	if c.WebhookRotationWindow > 7*24*time.Hour {
		r.fail("SLIPWAY_WEBHOOK_ROTATION_WINDOW", "must be at most 168h (7 days), got %s", c.WebhookRotationWindow)
	}
	c.WebhookKey = r.key("SLIPWAY_WEBHOOK_KEY")
	c.WebhookKeyPrevious = r.key("SLIPWAY_WEBHOOK_KEY_PREVIOUS")
	switch {
	case c.WebhookKeyPrevious == nil:
	case c.WebhookKey == nil && r.problemFor("SLIPWAY_WEBHOOK_KEY") == "":
		r.fail("SLIPWAY_WEBHOOK_KEY_PREVIOUS", "needs SLIPWAY_WEBHOOK_KEY, the key that replaces it")
	case bytes.Equal(c.WebhookKey, c.WebhookKeyPrevious):
		r.fail("SLIPWAY_WEBHOOK_KEY_PREVIOUS", "is the same as SLIPWAY_WEBHOOK_KEY: a rotation needs a new key (openssl rand -base64 32)")
	}
	for _, f := range strings.Split(getenv("SLIPWAY_WEBHOOK_SCHEDULE"), ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil || d <= 0 || d > 7*24*time.Hour {
			r.fail("SLIPWAY_WEBHOOK_SCHEDULE", "must be comma-separated durations between 0 and 168h, e.g. 5s,5m,30m,2h,5h,10h, got %q", f)
			break
		}
		c.WebhookSchedule = append(c.WebhookSchedule, d)
	}
	for name, dst := range map[string]*[]netip.Prefix{"SLIPWAY_WEBHOOK_ALLOW": &c.WebhookAllow, "SLIPWAY_WEBHOOK_DENY": &c.WebhookDeny} {
		nets, err := parsePrefixes(getenv(name))
		if err != nil {
			r.fail(name, "must be a comma-separated list of networks such as 10.0.0.0/8 or addresses: %v", err)
		}
		*dst = nets
	}

	if _, _, err := net.SplitHostPort(c.Addr); err != nil && scope == Server {
		r.fail("SLIPWAY_ADDR", "must be host:port (e.g. :8080 or 127.0.0.1:8080): %v", err)
	}
	if v := getenv("SLIPWAY_PUBLIC_URL"); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			r.fail("SLIPWAY_PUBLIC_URL", "must be an http(s) URL with a host and no path, e.g. https://slipway.example.com")
		} else {
			u.Path = ""
			c.PublicURL = u
		}
	}
	for _, s := range strings.Split(getenv("SLIPWAY_TRUSTED_PROXIES"), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			r.fail("SLIPWAY_TRUSTED_PROXIES", "must be a comma-separated list of CIDRs such as 10.0.0.0/8, got %q", s)
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, n)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		r.fail("SLIPWAY_TLS_CERT_FILE", "and SLIPWAY_TLS_KEY_FILE must be set together")
	}

	if c.DatabaseURL == "" {
		r.fail("SLIPWAY_DATABASE_URL", "is required, e.g. postgres://slipway:secret@localhost:5432/slipway")
	} else if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		r.fail("SLIPWAY_DATABASE_URL", "must be a postgres:// URL with a host, e.g. postgres://slipway:secret@localhost:5432/slipway")
	}

	switch lvl := strings.ToLower(r.str("SLIPWAY_LOG_LEVEL", "info")); lvl {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "info":
		c.LogLevel = slog.LevelInfo
	case "warn":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		r.fail("SLIPWAY_LOG_LEVEL", "must be debug, info, warn or error, got %q", lvl)
	}

	for name, d := range map[string]time.Duration{
		"SLIPWAY_SESSION_TTL": c.SessionTTL, "SLIPWAY_REQUEST_TIMEOUT": c.RequestTimeout, "SLIPWAY_ORPHAN_GRACE": c.OrphanGrace, "SLIPWAY_DRAFT_TTL": c.DraftTTL,
		"SLIPWAY_SHUTDOWN_TIMEOUT": c.ShutdownTimeout, "SLIPWAY_DB_STATEMENT_TIMEOUT": c.DBStatementTimeout,
		"SLIPWAY_WEBHOOK_TIMEOUT": c.WebhookTimeout, "SLIPWAY_WEBHOOK_DISABLE_AFTER": c.WebhookDisableAfter,
		"SLIPWAY_WEBHOOK_ROTATION_WINDOW": c.WebhookRotationWindow,
	} {
		if scope == Tools && name != "SLIPWAY_DB_STATEMENT_TIMEOUT" {
			continue // the server's own settings
		}
		if d <= 0 && r.problemFor(name) == "" {
			r.fail(name, "must be a positive duration")
		}
	}

	switch {
	case scope == Tools:
		// no object store, no listener, no bootstrap
	case c.Storage == "s3":
		if c.S3Endpoint == "" {
			r.fail("SLIPWAY_S3_ENDPOINT", "is required when SLIPWAY_STORAGE=s3, e.g. http://127.0.0.1:9000")
		} else if u, err := url.Parse(c.S3Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			r.fail("SLIPWAY_S3_ENDPOINT", "must be an http:// or https:// URL with a host and no path, e.g. http://127.0.0.1:9000")
		}
		if !bucketPattern.MatchString(c.S3Bucket) {
			r.fail("SLIPWAY_S3_BUCKET", "must be a valid S3 bucket name: 3-63 characters of a-z, 0-9, '.' and '-'")
		}
		switch c.S3Credentials {
		case "static":
			if c.S3AccessKey == "" {
				r.fail("SLIPWAY_S3_ACCESS_KEY", "is required when SLIPWAY_STORAGE=s3 (or set SLIPWAY_S3_CREDENTIALS=aws to use an IAM role)")
			}
			if c.S3SecretKey == "" {
				r.fail("SLIPWAY_S3_SECRET_KEY", "is required when SLIPWAY_STORAGE=s3 (or set SLIPWAY_S3_CREDENTIALS=aws to use an IAM role)")
			}
		case "aws":
			const why = "must be unset when SLIPWAY_S3_CREDENTIALS=aws: the credentials then come from the AWS variables, shared files or role"
			if c.S3AccessKey != "" {
				r.fail("SLIPWAY_S3_ACCESS_KEY", why)
			}
			if c.S3SecretKey != "" {
				r.fail("SLIPWAY_S3_SECRET_KEY", why)
			}
		default:
			r.fail("SLIPWAY_S3_CREDENTIALS", "must be static or aws, got %q", c.S3Credentials)
		}
	case c.Storage == "filesystem":
		if c.StorageDir == "" {
			r.fail("SLIPWAY_STORAGE_DIR", "is required when SLIPWAY_STORAGE=filesystem")
		}
	default:
		r.fail("SLIPWAY_STORAGE", "must be s3 or filesystem, got %q", c.Storage)
	}
	if scope == Tools {
		return r.result(c)
	}

	if c.BootstrapToken != "" && !bootstrapTokenPattern.MatchString(c.BootstrapToken) {
		r.fail("SLIPWAY_BOOTSTRAP_TOKEN", "must look like the tokens Slipway issues: slw_ followed by at least 43 base64url characters (32 random bytes), e.g. slw_$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=')")
	}
	if pw := c.BootstrapPassword; pw != "" && (utf8.RuneCountInString(pw) < 12 || len(pw) > 256) {
		r.fail("SLIPWAY_BOOTSTRAP_PASSWORD", "must be 12 characters to 256 bytes long")
	}
	if c.BootstrapPassword != "" && c.BootstrapToken == "" {
		r.fail("SLIPWAY_BOOTSTRAP_PASSWORD", "needs SLIPWAY_BOOTSTRAP_TOKEN: the password is given to the bootstrap admin it creates")
	}

	return r.result(c)
}

func (r *reader) result(c *Config) (*Config, error) {
	if len(r.problems) > 0 {
		return nil, &Error{Problems: r.problems}
	}
	return c, nil
}

var bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// LogValue is the effective configuration with every secret redacted; it is
// what the start-up log line shows.
func (c *Config) LogValue() slog.Value {
	public := ""
	if c.PublicURL != nil {
		public = c.PublicURL.String()
	}
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("public_url", public),
		slog.Bool("tls", c.TLS()),
		slog.Any("trusted_proxies", c.TrustedProxies),
		slog.String("database_url", RedactURL(c.DatabaseURL)),
		slog.Int("db_max_conns", int(c.DBMaxConns)),
		slog.String("db_statement_timeout", c.DBStatementTimeout.String()),
		slog.Bool("migrate", c.Migrate),
		slog.Bool("webhook_key_set", c.WebhookKey != nil),
		slog.Bool("webhook_key_previous_set", c.WebhookKeyPrevious != nil),
		slog.Bool("webhook_allow_private", c.WebhookAllowPrivate),
		slog.Int("webhook_workers", c.WebhookWorkers),
		slog.String("storage", c.Storage),
		slog.String("storage_dir", c.StorageDir),
		slog.String("s3_endpoint", c.S3Endpoint),
		slog.String("s3_bucket", c.S3Bucket),
		slog.String("s3_region", c.S3Region),
		slog.String("s3_credentials", c.S3Credentials),
		slog.String("s3_access_key", redact(c.S3AccessKey)),
		slog.String("s3_secret_key", redact(c.S3SecretKey)),
		slog.Bool("s3_insecure_skip_verify", c.S3InsecureSkipVerify),
		slog.String("bootstrap_token", redact(c.BootstrapToken)),
		slog.String("bootstrap_password", redact(c.BootstrapPassword)),
		slog.String("session_ttl", c.SessionTTL.String()),
		slog.String("orphan_grace", c.OrphanGrace.String()),
		slog.String("draft_ttl", c.DraftTTL.String()),
		slog.String("request_timeout", c.RequestTimeout.String()),
		slog.String("shutdown_timeout", c.ShutdownTimeout.String()),
		slog.Int64("max_json_body", c.MaxJSONBody),
		slog.String("log_level", c.LogLevel.String()),
	)
}

func redact(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// RedactURL hides the password of a URL (and the whole value when it cannot
// be parsed, since it might then be anything).
func RedactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "[redacted]"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "redacted")
	}
	// libpq also takes secrets as query parameters.
	q := u.Query()
	for _, k := range []string{"password", "sslpassword"} {
		if q.Has(k) {
			q.Set(k, "redacted")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

type reader struct {
	getenv   func(string) string
	problems []string
}

func (r *reader) fail(name, format string, args ...any) {
	r.problems = append(r.problems, name+" "+fmt.Sprintf(format, args...))
}

func (r *reader) problemFor(name string) string {
	for _, p := range r.problems {
		if strings.HasPrefix(p, name+" ") {
			return p
		}
	}
	return ""
}

// key reads a secret of 32 random bytes in base64; nil when unset.
func (r *reader) key(name string) []byte {
	k := r.secret(name)
	if k == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(k)
	if err != nil || len(b) != 32 {
		r.fail(name, "must be 32 random bytes in base64 (openssl rand -base64 32)")
		return nil
	}
	return b
}

func (r *reader) str(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

// secret reads NAME, or the file named by NAME_FILE (trailing newline
// trimmed). Setting both is an error: which one wins would be a guess.
func (r *reader) secret(name string) string {
	v, file := r.getenv(name), r.getenv(name+"_FILE")
	if v != "" && file != "" {
		r.fail(name, "and %s_FILE are both set; set one", name)
		return ""
	}
	if file == "" {
		return v
	}
	b, err := os.ReadFile(file)
	if err != nil {
		r.fail(name+"_FILE", "cannot be read: %v", errors.Unwrap(err))
		return ""
	}
	return strings.TrimRight(string(b), "\r\n")
}

func (r *reader) duration(name string, def time.Duration) time.Duration {
	v := r.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.fail(name, "must be a Go duration such as 30s, 5m or 12h, got %q", v)
		return def
	}
	return d
}

func (r *reader) integer(name string, def, lo, hi int) int {
	v := r.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.fail(name, "must be an integer between %d and %d, got %q", lo, hi, v)
		return def
	}
	return n
}

func (r *reader) boolean(name string, def bool) bool {
	v := r.getenv(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, "must be true or false, got %q", v)
		return def
	}
	return b
}

// parsePrefixes reads a comma-separated list of networks or addresses.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("%q is not an address or a network", f)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		n, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a network", f)
		}
		out = append(out, n.Masked())
	}
	return out, nil
}
