package blob

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/slipway-ml/slipway/internal/errs"
)

// S3Config says where an S3Store keeps its objects.
type S3Config struct {
	// Endpoint is the URL of the S3 API, e.g. http://127.0.0.1:9000; the
	// scheme (http or https) decides TLS. No path: buckets are addressed
	// by the client.
	Endpoint  string
	Bucket    string
	AccessKey string
	SecretKey string
	// AWSCredentials finds credentials as the AWS SDKs do, instead of
	// AccessKey and SecretKey: the AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
	// and AWS_SESSION_TOKEN variables; the shared files (~/.aws/credentials
	// and config, AWS_PROFILE); then a role: the pod's web identity (EKS
	// IRSA: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN), the container's
	// (ECS) or the instance's (EC2 metadata). Temporary credentials are
	// refreshed before they expire.
	AWSCredentials bool
	// Region is sent with requests and used to create the bucket; ""
	// lets the client ask the server.
	Region string
	// InsecureSkipVerify turns TLS certificate verification off, for
	// development endpoints with self-signed certificates.
	InsecureSkipVerify bool
	// CreateBucket creates the bucket when it does not exist.
	CreateBucket bool
}

// S3Store keeps objects in an S3-compatible bucket (MinIO, AWS S3, ...).
//
// Put streams with minio-go: an object of known size up to s3PartSize goes
// in a single PUT without buffering; a larger one, or one of unknown size
// (PutOptions.Size -1), goes in a multipart upload of s3PartSize parts,
// two in flight at a time (two buffers: make bench measured 0.72 of a
// direct PutObject's throughput with one, 0.96 with two). Memory is
// therefore bounded per concurrent Put, whatever the object's size: two
// 16 MiB part buffers plus the client's own few MiB. An object of unknown size can be up to 10,000 parts (156 GiB). A failed
// multipart upload is aborted; if even the abort fails (the backend went
// away), the parts stay invisible but use space until the bucket's
// AbortIncompleteMultipartUpload lifecycle rule removes them.
//
// The SHA-256 is stored as x-amz-meta-sha256 only when the caller declares
// it (PutOptions.SHA256): metadata goes before the body, and re-writing the
// object after the upload to add a digest computed on the way would copy it
// a second time. Put returns the computed digest either way.
//
// Before uploading, Put checks that the key does not clash with existing
// keys as a path prefix (see the package documentation): one HEAD per
// parent of the key and one LIST.
type S3Store struct {
	client *minio.Client
	bucket string
}

var _ Store = (*S3Store)(nil)

const (
	// s3PartSize is the part size of multipart uploads, and the largest
	// object of known size sent in a single PUT.
	s3PartSize = 16 << 20
	// s3MetaSHA256 is the header of the user metadata holding the digest.
	s3MetaSHA256 = "X-Amz-Meta-Sha256"
)

// NewS3 returns a store for the bucket of cfg. It talks to the server only
// when cfg.CreateBucket is set; otherwise an unreachable server shows up in
// Ping and in the first requests, so Slipway can start while the object
// store is still coming up.
func NewS3(ctx context.Context, cfg S3Config) (*S3Store, error) {
	var fe errs.FieldErrors
	u, err := parseEndpoint(cfg.Endpoint)
	if err != nil {
		fe.Add("endpoint", "%s", err)
	}
	if err := s3utils.CheckValidBucketNameStrict(cfg.Bucket); err != nil {
		fe.Add("bucket", "must be a valid S3 bucket name (3-63 characters of a-z, 0-9, '.' and '-'): %s", err)
	}
	switch {
	case cfg.AWSCredentials && (cfg.AccessKey != "" || cfg.SecretKey != ""):
		fe.Add("access_key", "AWS credentials come from the AWS environment, files or role: set no keys with them")
	case (cfg.AccessKey == "") != (cfg.SecretKey == ""):
		fe.Add("secret_key", "the access key and the secret key go together: set both, or neither for anonymous access")
	}
	if err := fe.Err(); err != nil {
		return nil, fmt.Errorf("blob: S3 store: %w", err)
	}

	secure := u.Scheme == "https"
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("blob: S3 store: %w", err)
	}
	if secure && cfg.InsecureSkipVerify {
		tr.TLSClientConfig.InsecureSkipVerify = true
	}
	creds := credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	if cfg.AWSCredentials {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{},
			&credentials.IAM{Region: cfg.Region}, // web identity, ECS, then EC2
		})
		// The chain falls back to anonymous requests when it finds
		// nothing, and S3 would then answer every request with Access
		// Denied: say what is missing at start instead.
		v, _ := creds.GetWithContext(&credentials.CredContext{Client: &http.Client{Transport: tr}, Context: ctx})
		if v.AccessKeyID == "" {
			return nil, fmt.Errorf("blob: S3 store: %w: no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, name a profile of the shared files with AWS_PROFILE, or run with a role (EKS web identity, ECS task role, EC2 instance profile)", errs.ErrUnavailable)
		}
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:     creds,
		Secure:    secure,
		Transport: tr,
		Region:    cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("blob: S3 store: %w", err)
	}
	s := &S3Store{client: client, bucket: cfg.Bucket}
	if cfg.CreateBucket {
		if err := s.ensureBucket(ctx, cfg.Region); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// parseEndpoint checks that endpoint is an http(s) URL with a host and
// nothing else.
func parseEndpoint(endpoint string) (*url.URL, error) {
	const rule = "must be an http:// or https:// URL with a host and no path, e.g. http://127.0.0.1:9000"
	u, err := url.Parse(endpoint)
	switch {
	case endpoint == "":
		return nil, errors.New("is required: " + rule)
	case err != nil:
		return nil, errors.New(rule)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("has scheme %q: %s", u.Scheme, rule)
	case u.Host == "" || u.Hostname() == "":
		return nil, errors.New("has no host: " + rule)
	case u.User != nil:
		return nil, errors.New("must not contain credentials: set the access and secret keys")
	case u.Path != "" && u.Path != "/" || u.RawPath != "":
		return nil, fmt.Errorf("has path %q: %s", u.Path, rule)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, errors.New("must not have a query or a fragment: " + rule)
	}
	return u, nil
}

// ensureBucket creates the bucket unless it exists. Another process
// creating it at the same time is fine.
func (s *S3Store) ensureBucket(ctx context.Context, region string) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("blob: bucket %q: %w", s.bucket, mapS3Err(err))
	}
	if ok {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	if err == nil {
		return nil
	}
	switch s3Code(err) {
	case minio.BucketAlreadyOwnedByYou:
		return nil
	case minio.BucketAlreadyExists:
		// Ours if we can see it; someone else's otherwise.
		if ok, _ := s.client.BucketExists(ctx, s.bucket); ok {
			return nil
		}
	}
	return fmt.Errorf("blob: create bucket %q: %w", s.bucket, mapS3Err(err))
}

// Put implements Store.
func (s *S3Store) Put(ctx context.Context, key string, r io.Reader, opts PutOptions) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, opErr("put", key, err)
	}
	opts, err := opts.normalize()
	if err != nil {
		return Info{}, opErr("put", key, err)
	}
	if err := ctx.Err(); err != nil {
		return Info{}, opErr("put", key, err)
	}
	if err := s.checkClash(ctx, key); err != nil {
		return Info{}, opErr("put", key, err)
	}
	d := newDigestReader(ctx, r, opts)
	if opts.Size == 0 {
		// The client need not read an empty body at all: check now that
		// the stream is empty and matches the declared digest.
		if _, err := d.Read(nil); err != io.EOF {
			return Info{}, opErr("put", key, err)
		}
	}
	po := minio.PutObjectOptions{
		ContentType:           opts.ContentType,
		PartSize:              s3PartSize,
		NumThreads:            2,
		ConcurrentStreamParts: true,
	}
	if opts.SHA256 != "" {
		po.UserMetadata = map[string]string{"Sha256": opts.SHA256}
	}
	up, err := s.client.PutObject(ctx, s.bucket, key, d, opts.Size, po)
	if d.err != nil {
		// The stream failed its checks, or the reader or the context
		// failed: that is the cause, whatever the client made of it.
		if err == nil {
			s.undo(ctx, key) // the client completed the upload nevertheless
		}
		return Info{}, opErr("put", key, d.err)
	}
	if err != nil {
		return Info{}, opErr("put", key, mapS3Err(err))
	}
	if err := d.done(); err != nil {
		s.undo(ctx, key)
		return Info{}, opErr("put", key, err)
	}
	mod := up.LastModified
	if mod.IsZero() {
		mod = time.Now() // a single PUT's response has no Last-Modified
	}
	return Info{Key: key, Size: d.n, SHA256: d.sum, ContentType: opts.ContentType, ModTime: mod}, nil
}

// undo removes an object that a failed Put wrote, best effort.
func (s *S3Store) undo(ctx context.Context, key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
}

// checkClash refuses a key that is a path prefix of existing keys or has
// an existing key as a path prefix, as FSStore does.
func (s *S3Store) checkClash(ctx context.Context, key string) error {
	for i := range len(key) {
		if key[i] != '/' {
			continue
		}
		_, err := s.client.StatObject(ctx, s.bucket, key[:i], minio.StatObjectOptions{})
		if err == nil {
			return errKeyClash
		}
		if s3Code(err) != minio.NoSuchKey {
			return mapS3Err(err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for oi := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: key + "/", Recursive: true, MaxKeys: 1}) {
		if oi.Err != nil {
			return mapS3Err(oi.Err)
		}
		return errKeyClash
	}
	return nil
}

// Get implements Store.
func (s *S3Store) Get(ctx context.Context, key string, rng *Range) (io.ReadCloser, Info, error) {
	if err := ValidateKey(key); err != nil {
		return nil, Info{}, opErr("get", key, err)
	}
	if err := rng.check(); err != nil {
		return nil, Info{}, opErr("get", key, err)
	}
	var o minio.GetObjectOptions
	if rng != nil {
		o.Set("Range", rng.header())
	}
	// Core.GetObject sends the request now (Client.GetObject is lazy) and
	// returns the headers, whose Content-Range has the object's size.
	body, oi, h, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, key, o)
	if err != nil {
		return nil, Info{}, opErr("get", key, mapS3Err(err))
	}
	info := s3Info(key, oi)
	if rng != nil {
		size, ok := contentRangeSize(h.Get("Content-Range"))
		if !ok {
			body.Close()
			return nil, Info{}, opErr("get", key, fmt.Errorf("the server ignored the range (Content-Range %q)", h.Get("Content-Range")))
		}
		info.Size = size
	}
	return body, info, nil
}

// contentRangeSize returns the complete length of a "bytes a-b/size"
// Content-Range.
func contentRangeSize(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	_, size, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(size, 10, 64)
	return n, err == nil && n >= 0
}

// Stat implements Store.
func (s *S3Store) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, opErr("stat", key, err)
	}
	oi, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, opErr("stat", key, mapS3Err(err))
	}
	return s3Info(key, oi), nil
}

func s3Info(key string, oi minio.ObjectInfo) Info {
	info := Info{Key: key, Size: oi.Size, ContentType: oi.ContentType, ModTime: oi.LastModified}
	if sum := oi.Metadata.Get(s3MetaSHA256); isHexDigest(sum) {
		info.SHA256 = sum
	}
	if info.ContentType == "" {
		info.ContentType = DefaultContentType
	}
	return info
}

// Delete implements Store.
func (s *S3Store) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return opErr("delete", key, err)
	}
	err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
	if err != nil && s3Code(err) != minio.NoSuchKey {
		return opErr("delete", key, mapS3Err(err))
	}
	return nil
}

// List implements Store.
func (s *S3Store) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := ValidatePrefix(prefix); err != nil {
		return opErr("list", prefix, err)
	}
	// MinIO refuses a prefix ending in a "." or ".." segment: list from
	// the segment's start and filter.
	listPrefix := prefix
	if last := prefix[strings.LastIndexByte(prefix, '/')+1:]; last == "." || last == ".." {
		listPrefix = prefix[:len(prefix)-len(last)]
	}
	// Cancelling stops the listing's goroutine when fn stops early.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for oi := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: listPrefix, Recursive: true}) {
		if oi.Err != nil {
			return opErr("list", prefix, mapS3Err(oi.Err))
		}
		if !strings.HasPrefix(oi.Key, prefix) || ValidateKey(oi.Key) != nil {
			continue // not written by this store
		}
		if err := fn(Info{Key: oi.Key, Size: oi.Size, ModTime: oi.LastModified}); err != nil {
			return err
		}
	}
	return nil
}

// Ping implements Store: the bucket must exist and be reachable.
func (s *S3Store) Ping(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("blob ping: bucket %q: %w", s.bucket, mapS3Err(err))
	}
	if !ok {
		return fmt.Errorf("blob ping: bucket %q does not exist: %w", s.bucket, errs.ErrUnavailable)
	}
	return nil
}

// s3Code returns the S3 error code of err, or "".
func s3Code(err error) string {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return er.Code
	}
	return ""
}

// mapS3Err wraps the sentinel of package errs that matches err, keeping
// err in the chain.
func mapS3Err(err error) error {
	if errors.Is(err, context.Canceled) {
		return err // the caller gave up; nothing is wrong with the store
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", errs.ErrUnavailable, err)
	}
	if ne := net.Error(nil); errors.As(err, &ne) {
		return fmt.Errorf("%w: %w", errs.ErrUnavailable, err)
	}
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return err
	}
	switch er.Code {
	case minio.NoSuchKey:
		return errs.ErrNotFound
	case minio.InvalidRange:
		return fmt.Errorf("%w: %s", ErrUnsatisfiableRange, er.Message)
	case minio.NoSuchBucket:
		return fmt.Errorf("%w: %w", errs.ErrUnavailable, err)
	case "SlowDown", "ServiceUnavailable", "XMinioServerNotInitialized", "RequestTimeout":
		return fmt.Errorf("%w: %w", errs.ErrUnavailable, err)
	}
	if er.StatusCode == http.StatusServiceUnavailable {
		return fmt.Errorf("%w: %w", errs.ErrUnavailable, err)
	}
	return err
}

// AbortStaleUploads aborts the unfinished multipart uploads under prefix
// that began before cutoff: the parts a crash in the middle of a large Put
// leaves, invisible to List and billed all the same. It returns how many
// it aborted.
func (s *S3Store) AbortStaleUploads(ctx context.Context, prefix string, cutoff time.Time) (int, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return 0, err
	}
	n := 0
	// MinIO lists unfinished uploads by exact key only, not by a partial
	// prefix: list them all and filter here (S3 and MinIO alike).
	for up := range s.client.ListIncompleteUploads(ctx, s.bucket, "", true) {
		if up.Err != nil {
			return n, mapS3Err(up.Err)
		}
		if !strings.HasPrefix(up.Key, prefix) || up.Initiated.After(cutoff) {
			continue
		}
		if err := s.client.RemoveIncompleteUpload(ctx, s.bucket, up.Key); err != nil {
			return n, mapS3Err(err)
		}
		n++
	}
	return n, nil
}

// PresignPut returns a URL that accepts a PUT of key for ttl, straight to
// the bucket, and the headers the PUT must carry. The URL is signed with
// x-amz-checksum-sha256 of sha256Hex: the store refuses any body whose
// SHA-256 differs, so the URL can never put other bytes under key, not
// even after the artifact is finalized.
func (s *S3Store) PresignPut(ctx context.Context, key, sha256Hex string, ttl time.Duration) (string, http.Header, error) {
	if err := ValidateKey(key); err != nil {
		return "", nil, opErr("presign", key, err)
	}
	sum, err := hex.DecodeString(sha256Hex)
	if err != nil || len(sum) != sha256.Size {
		return "", nil, opErr("presign", key, errs.Invalid("sha256", "must be a hex SHA-256"))
	}
	h := http.Header{}
	h.Set("X-Amz-Checksum-Sha256", base64.StdEncoding.EncodeToString(sum))
	u, err := s.client.PresignHeader(ctx, http.MethodPut, s.bucket, key, ttl, nil, h)
	if err != nil {
		return "", nil, opErr("presign", key, mapS3Err(err))
	}
	return u.String(), h, nil
}

// PresignGet returns a URL that serves key for ttl, straight from the bucket.
func (s *S3Store) PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", opErr("presign", key, err)
	}
	u, err := s.client.PresignedGetObject(ctx, s.bucket, key, ttl, nil)
	if err != nil {
		return "", opErr("presign", key, mapS3Err(err))
	}
	return u.String(), nil
}
