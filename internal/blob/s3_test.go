package blob_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/blob/blobtest"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/testenv"
)

// testS3 is the MinIO the S3 tests use (see internal/testenv).
type testS3 struct {
	endpoint, accessKey, secretKey string
}

func s3FromEnv(t *testing.T) testS3 {
	t.Helper()
	env := testenv.NewS3(t)
	return testS3{endpoint: env.Endpoint, accessKey: env.AccessKey, secretKey: env.SecretKey}
}

// newS3 returns a store on a fresh bucket, removed with its objects when t
// ends.
func newS3(t *testing.T, env testS3) (*blob.S3Store, string) {
	t.Helper()
	bucket := "slipway-test-" + strings.ToLower(rand.Text()[:16])
	s, err := blob.NewS3(t.Context(), blob.S3Config{
		Endpoint:     env.endpoint,
		Bucket:       bucket,
		AccessKey:    env.accessKey,
		SecretKey:    env.secretKey,
		Region:       "us-east-1",
		CreateBucket: true,
	})
	if err != nil {
		t.Fatalf("NewS3: %v", err)
	}
	t.Cleanup(func() {
		u, _ := url.Parse(env.endpoint)
		c, err := minio.New(u.Host, &minio.Options{
			Creds:  credentials.NewStaticV4(env.accessKey, env.secretKey, ""),
			Secure: u.Scheme == "https",
		})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// ForceDelete (a MinIO extension) also drops incomplete
			// multipart uploads.
			err = c.RemoveBucketWithOptions(ctx, bucket, minio.RemoveBucketOptions{ForceDelete: true})
		}
		if err != nil {
			t.Errorf("remove bucket %s: %v", bucket, err)
		}
	})
	return s, bucket
}

func TestS3Conformance(t *testing.T) {
	env := s3FromEnv(t)
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, _ := newS3(t, env)
		return s
	})
}

func TestS3CreateBucketTwice(t *testing.T) {
	env := s3FromEnv(t)
	s, bucket := newS3(t, env)
	if _, err := s.Put(t.Context(), "k", strings.NewReader("x"), blob.PutOptions{Size: 1}); err != nil {
		t.Fatal(err)
	}
	// Another NewS3 with CreateBucket on the same bucket, as a second
	// replica starting, finds it and keeps its objects.
	for range 2 {
		again, err := blob.NewS3(t.Context(), blob.S3Config{
			Endpoint: env.endpoint, Bucket: bucket, AccessKey: env.accessKey, SecretKey: env.secretKey,
			Region: "us-east-1", CreateBucket: true,
		})
		if err != nil {
			t.Fatalf("NewS3 on an existing bucket: %v", err)
		}
		if _, err := again.Stat(t.Context(), "k"); err != nil {
			t.Errorf("Stat through the second store: %v", err)
		}
	}
}

func TestS3MissingBucket(t *testing.T) {
	env := s3FromEnv(t)
	s, err := blob.NewS3(t.Context(), blob.S3Config{
		Endpoint: env.endpoint, Bucket: "slipway-test-never-created", AccessKey: env.accessKey, SecretKey: env.secretKey,
		Region: "us-east-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); !errors.Is(err, errs.ErrUnavailable) {
		t.Errorf("Ping of a missing bucket: error = %v, want errs.ErrUnavailable", err)
	}
	if _, err := s.Stat(t.Context(), "k"); !errors.Is(err, errs.ErrUnavailable) {
		t.Errorf("Stat in a missing bucket: error = %v, want errs.ErrUnavailable", err)
	}
}

func TestS3BadCredentials(t *testing.T) {
	env := s3FromEnv(t)
	s, err := blob.NewS3(t.Context(), blob.S3Config{
		Endpoint: env.endpoint, Bucket: "slipway-test-creds", AccessKey: env.accessKey, SecretKey: "wrong-secret",
		Region: "us-east-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping with a wrong secret key succeeded")
	}
}

func TestNewS3Config(t *testing.T) {
	ok := blob.S3Config{Endpoint: "http://127.0.0.1:9000", Bucket: "slipway", AccessKey: "a", SecretKey: "s"}
	tests := []struct {
		name  string
		edit  func(*blob.S3Config)
		field string
	}{
		{"no endpoint", func(c *blob.S3Config) { c.Endpoint = "" }, "endpoint"},
		{"ftp scheme", func(c *blob.S3Config) { c.Endpoint = "ftp://127.0.0.1:9000" }, "endpoint"},
		{"s3 scheme", func(c *blob.S3Config) { c.Endpoint = "s3://bucket" }, "endpoint"},
		{"no scheme", func(c *blob.S3Config) { c.Endpoint = "127.0.0.1:9000" }, "endpoint"},
		{"host only", func(c *blob.S3Config) { c.Endpoint = "minio.local" }, "endpoint"},
		{"no host", func(c *blob.S3Config) { c.Endpoint = "http://" }, "endpoint"},
		{"port only", func(c *blob.S3Config) { c.Endpoint = "http://:9000" }, "endpoint"},
		{"path", func(c *blob.S3Config) { c.Endpoint = "http://127.0.0.1:9000/slipway" }, "endpoint"},
		{"deep path", func(c *blob.S3Config) { c.Endpoint = "https://s3.example.com/a/b/" }, "endpoint"},
		{"query", func(c *blob.S3Config) { c.Endpoint = "http://127.0.0.1:9000?x=1" }, "endpoint"},
		{"fragment", func(c *blob.S3Config) { c.Endpoint = "http://127.0.0.1:9000#x" }, "endpoint"},
		{"credentials in URL", func(c *blob.S3Config) { c.Endpoint = "http://user:pass@127.0.0.1:9000" }, "endpoint"},
		{"bad port", func(c *blob.S3Config) { c.Endpoint = "http://127.0.0.1:port" }, "endpoint"},
		{"no bucket", func(c *blob.S3Config) { c.Bucket = "" }, "bucket"},
		{"upper-case bucket", func(c *blob.S3Config) { c.Bucket = "Slipway" }, "bucket"},
		{"short bucket", func(c *blob.S3Config) { c.Bucket = "ab" }, "bucket"},
		{"bucket with slash", func(c *blob.S3Config) { c.Bucket = "a/b" }, "bucket"},
		{"access key alone", func(c *blob.S3Config) { c.SecretKey = "" }, "secret_key"},
		{"secret key alone", func(c *blob.S3Config) { c.AccessKey = "" }, "secret_key"},
		{"AWS credentials and keys", func(c *blob.S3Config) { c.AWSCredentials = true }, "access_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			_, err := blob.NewS3(t.Context(), cfg)
			var fe errs.FieldErrors
			switch {
			case !errors.Is(err, errs.ErrInvalid):
				t.Fatalf("NewS3(%+v): error = %v, want errs.ErrInvalid", cfg, err)
			case !errors.As(err, &fe) || len(fe) != 1 || fe[0].Field != tt.field:
				t.Errorf("NewS3(%+v): error = %v, want one error for field %s", cfg, err, tt.field)
			}
		})
	}
	for _, endpoint := range []string{"http://127.0.0.1:9000", "https://s3.example.com/", "http://[::1]:9000", "HTTPS://S3.EXAMPLE.COM"} {
		cfg := ok
		cfg.Endpoint = endpoint
		if _, err := blob.NewS3(t.Context(), cfg); err != nil {
			t.Errorf("NewS3(endpoint %q): %v", endpoint, err)
		}
	}
}

// closedPort returns the address of a local port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestS3Unreachable(t *testing.T) {
	cfg := blob.S3Config{Endpoint: "http://" + closedPort(t), Bucket: "slipway", AccessKey: "a", SecretKey: "s", Region: "us-east-1"}
	s, err := blob.NewS3(t.Context(), cfg)
	if err != nil {
		t.Fatalf("NewS3 without CreateBucket must not connect: %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	err = s.Ping(ctx)
	if !errors.Is(err, errs.ErrUnavailable) {
		t.Errorf("Ping of a closed port: error = %v, want errs.ErrUnavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Ping of a closed port took %v", d)
	}

	for name, op := range map[string]func(context.Context) error{
		"Stat": func(ctx context.Context) error { _, err := s.Stat(ctx, "k"); return err },
		"Get":  func(ctx context.Context) error { _, _, err := s.Get(ctx, "k", nil); return err },
		"Put": func(ctx context.Context) error {
			_, err := s.Put(ctx, "k", strings.NewReader("x"), blob.PutOptions{Size: -1})
			return err
		},
		"Delete": func(ctx context.Context) error { return s.Delete(ctx, "k") },
		"List":   func(ctx context.Context) error { return s.List(ctx, "", func(blob.Info) error { return nil }) },
		"NewS3 with CreateBucket": func(ctx context.Context) error {
			cfg := cfg
			cfg.CreateBucket = true
			_, err := blob.NewS3(ctx, cfg)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			if err := op(ctx); !errors.Is(err, errs.ErrUnavailable) {
				t.Errorf("%s on a closed port: error = %v, want errs.ErrUnavailable", name, err)
			}
		})
	}
}

func TestS3InsecureSkipVerify(t *testing.T) {
	// A TLS server with a self-signed certificate that says every bucket
	// exists (HEAD /bucket → 200).
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake errors are expected
	srv.StartTLS()
	defer srv.Close()
	for _, skip := range []bool{false, true} {
		s, err := blob.NewS3(t.Context(), blob.S3Config{
			Endpoint: srv.URL, Bucket: "slipway", AccessKey: "a", SecretKey: "s", Region: "us-east-1",
			InsecureSkipVerify: skip,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		err = s.Ping(ctx)
		cancel()
		if got, want := err == nil, skip; got != want {
			t.Errorf("Ping of a self-signed server with InsecureSkipVerify %v: error = %v", skip, err)
		}
	}
}

func ExampleNewS3() {
	s, err := blob.NewS3(context.Background(), blob.S3Config{
		Endpoint:  "http://127.0.0.1:9000",
		Bucket:    "slipway",
		AccessKey: "minioadmin",
		SecretKey: "minioadmin",
	})
	fmt.Println(s != nil, err)
	// Output: true <nil>
}

func TestS3AbortStaleUploads(t *testing.T) {
	env := s3FromEnv(t)
	s, bucket := newS3(t, env)
	u, _ := url.Parse(env.endpoint)
	core, err := minio.NewCore(u.Host, &minio.Options{Creds: credentials.NewStaticV4(env.accessKey, env.secretKey, ""), Secure: u.Scheme == "https"})
	if err != nil {
		t.Fatal(err)
	}
	// Uploads a crash left unfinished, and one outside the prefixes.
	for _, key := range []string{"models/1/abc/000000", "reports/7/0123abcd", "elsewhere/x"} {
		if _, err := core.NewMultipartUpload(t.Context(), bucket, key, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.AbortStaleUploads(t.Context(), "models/", time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("uploads younger than the cutoff: aborted %d, %v; want 0", n, err)
	}
	if n, err := s.AbortStaleUploads(t.Context(), "models/", time.Now().Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("aborted %d, %v; want 1", n, err)
	}
	// The reaper of the other prefixes (datasets, quality results,
	// reports) aborts them too.
	never := func(context.Context, string) (bool, error) { return false, nil }
	if st, err := blob.ReapUnreferenced(t.Context(), s, "reports/", time.Now().Add(-time.Hour), never); err != nil || st.Aborted != 0 {
		t.Fatalf("reap reports/, uploads younger than the cutoff: %+v, %v; want none aborted", st, err)
	}
	if st, err := blob.ReapUnreferenced(t.Context(), s, "reports/", time.Now().Add(time.Minute), never); err != nil || st.Aborted != 1 {
		t.Fatalf("reap reports/: %+v, %v; want 1 aborted", st, err)
	}
	var left []string
	for up := range core.ListIncompleteUploads(t.Context(), bucket, "", true) {
		left = append(left, up.Key)
	}
	if len(left) != 1 || left[0] != "elsewhere/x" {
		t.Errorf("unfinished uploads left: %v, want only elsewhere/x", left)
	}
}

// awsEnv clears what the AWS credential chain reads, so that a test sees
// only what it sets: no variables, no shared files, and a container
// credentials endpoint that knows nothing (instead of the EC2 metadata
// service, which a test machine does not have).
func awsEnv(t *testing.T) {
	none := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(none.Close)
	home := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "", "AWS_ACCESS_KEY": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SECRET_KEY": "", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "HOME": home,
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "credentials"), "AWS_CONFIG_FILE": filepath.Join(home, "config"),
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_ROLE_ARN": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN": "", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI": none.URL,
	} {
		t.Setenv(k, v)
	}
}

// TestS3AWSCredentials finds the keys as the AWS SDKs do: from the
// variables, from a profile of the shared files, and from a role's
// temporary credentials served as ECS serves them to a task.
func TestS3AWSCredentials(t *testing.T) {
	env := s3FromEnv(t)
	roundTrip := func(t *testing.T) {
		t.Helper()
		bucket := "slipway-test-" + strings.ToLower(rand.Text()[:16])
		s, err := blob.NewS3(t.Context(), blob.S3Config{Endpoint: env.endpoint, Bucket: bucket, AWSCredentials: true, Region: "us-east-1", CreateBucket: true})
		if err != nil {
			t.Fatalf("NewS3 with AWS credentials: %v", err)
		}
		if _, err := s.Put(t.Context(), "k/v", strings.NewReader("role"), blob.PutOptions{Size: -1}); err != nil {
			t.Fatalf("Put: %v", err)
		}
		rc, _, err := s.Get(t.Context(), "k/v", nil)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != "role" {
			t.Errorf("read back %q", b)
		}
		if err := s.Delete(t.Context(), "k/v"); err != nil {
			t.Error(err)
		}
		u, _ := url.Parse(env.endpoint)
		c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(env.accessKey, env.secretKey, "")})
		if err == nil {
			_ = c.RemoveBucket(context.Background(), bucket)
		}
	}
	t.Run("variables", func(t *testing.T) {
		awsEnv(t)
		t.Setenv("AWS_ACCESS_KEY_ID", env.accessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", env.secretKey)
		roundTrip(t)
	})
	t.Run("shared file profile", func(t *testing.T) {
		awsEnv(t)
		f := os.Getenv("AWS_SHARED_CREDENTIALS_FILE")
		body := "[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n\n[slipway]\naws_access_key_id = " + env.accessKey + "\naws_secret_access_key = " + env.secretKey + "\n"
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("AWS_PROFILE", "slipway")
		roundTrip(t)
	})
	t.Run("container role", func(t *testing.T) {
		awsEnv(t)
		var calls atomic.Int32
		role := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			if r.Header.Get("Authorization") != "task-token" {
				http.Error(w, "no token", http.StatusUnauthorized)
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{
				"AccessKeyId": env.accessKey, "SecretAccessKey": env.secretKey,
				"Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
			})
		}))
		t.Cleanup(role.Close)
		t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", role.URL)
		t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "task-token")
		roundTrip(t)
		if calls.Load() == 0 {
			t.Error("the role's credentials endpoint was never asked")
		}
	})
	t.Run("none found", func(t *testing.T) {
		awsEnv(t)
		_, err := blob.NewS3(t.Context(), blob.S3Config{Endpoint: env.endpoint, Bucket: "slipway-test-none", AWSCredentials: true, Region: "us-east-1"})
		if !errors.Is(err, errs.ErrUnavailable) || !strings.Contains(err.Error(), "no AWS credentials found") {
			t.Errorf("NewS3 without any AWS credentials: %v, want a start-up error that says so", err)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		awsEnv(t)
		t.Setenv("AWS_ACCESS_KEY_ID", env.accessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
		s, err := blob.NewS3(t.Context(), blob.S3Config{Endpoint: env.endpoint, Bucket: "slipway-test-wrong", AWSCredentials: true, Region: "us-east-1"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(t.Context()); err == nil {
			t.Error("Ping with a wrong AWS secret succeeded")
		}
	})
}
