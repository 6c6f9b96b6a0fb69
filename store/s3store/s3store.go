// Package s3store keeps keepslot's backups in an S3-compatible object store
// (AWS S3, MinIO, Ceph, Wasabi, versitygw...), through minio-go.
//
// Two kinds of store are kept in a bucket:
//
//   - [New] returns a [Store], a [store.Store]: the single slot, kept under
//     Config.Prefix, so that the node's backup lives off the node;
//   - [NewRemote] returns a [Remote], a [store.Remote]: many objects by key
//     under Config.Prefix, where a Backupper exports copies of its backups
//     and where retention prunes them.
//
// Uploads are streamed as multipart uploads with two buffers of
// Config.PartSize bytes (16 MiB by default), so memory does not grow with
// the object; a failed or cancelled upload is aborted on the server, and
// what an interrupted process left behind is removed by the next write.
//
// # The slot's layout and guarantee
//
// Under the prefix P the slot is three keys: P+"lock", held by the one write
// under way; P+"object-<random>", the bytes; P+"info.json", the commit
// record naming the bytes, with the object's name, size, MD5, SHA-256 (also
// as the metadata x-amz-meta-keepslot-md5 and -sha256), creation time and
// metadata. The object exists exactly when the commit record does.
//
// The single-slot rule rests on conditional writes: the lock and the commit
// record are created with If-None-Match: *, and the lock is renewed with
// If-Match on its ETag, which the server applies atomically (AWS S3 since
// 2024, MinIO, versitygw; the tests run on versitygw). Two writers,
// in one process or on two nodes, cannot both hold the lock, and a commit
// never replaces a stored object. On a server that ignores If-None-Match the
// rule does not hold; keepslot cannot detect that.
//
// A writer renews its lock every third of Config.LockLease (10 minutes by
// default). A writer that dies without Commit or Abort (the node lost
// power) leaves a lock nobody renews: a Store that sees it unrenewed on two
// calls at least the lease apart breaks it, aborts its upload and takes the
// slot; [Store.BreakLock] does so at once. A writer cut off from the server
// for longer than the lease may lose its lock that way: it finds out when it
// next renews, and at the latest when it renews just before writing its
// commit record, and fails with store.ErrBusy; and a commit record is never
// replaced. A writer that merely lost the server for a while removes
// its lock and aborts its upload itself, on its next call.
//
// Unlike [store.Dir], an Object opened from the slot cannot be read after
// the stored object is deleted: S3 keeps no deleted bytes for open readers.
//
// # Credentials
//
// Config.AccessKey and Config.SecretKey, or, when they are empty, the
// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)
// and the shared credentials file (~/.aws/credentials, AWS_PROFILE). The
// secret key never appears in logs, errors or status: Config's LogValue and
// String leave it out.
package s3store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/store"
)

var (
	// ErrUnauthorized is returned when the server refuses the credentials or
	// the access. Check the access key and the secret key (AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY or Config) and the key's rights on the bucket.
	// It matches store.ErrUnauthorized too.
	ErrUnauthorized = errcode.Sub(store.ErrUnauthorized, "s3store: the server refused the credentials or the access; check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the key's rights on the bucket")

	// ErrNoBucket is returned when the bucket does not exist. Create it, or
	// fix Config.Bucket.
	ErrNoBucket = errcode.New(errcode.Invalid, "s3store: the bucket does not exist; create it or fix the bucket name")

	// ErrUnreachable is returned when the server cannot be reached or does
	// not answer in time. Check Config.Endpoint, the network and the server.
	// It matches store.ErrUnreachable too.
	ErrUnreachable = errcode.Sub(store.ErrUnreachable, "s3store: the server cannot be reached; check the endpoint, the network and the server")

	// ErrConfig is returned by New for a configuration it cannot use.
	ErrConfig = errcode.New(errcode.Invalid, "s3store: invalid configuration")
)

// DefaultLockLease is the lease of the slot's lock when Config.LockLease is
// 0.
const DefaultLockLease = 10 * time.Minute

// Part sizes: S3 wants at least 5 MiB in every part but the last, and at
// most 10,000 parts (so 16 MiB parts allow objects up to 156 GiB).
const (
	DefaultPartSize = 16 << 20
	MinPartSize     = 5 << 20
	MaxPartSize     = 5 << 30
	maxParts        = 10000
)

// Config says where the store is and how to reach it.
type Config struct {
	// Endpoint is the server's host and port, e.g. "s3.amazonaws.com" or
	// "127.0.0.1:7070", without a scheme.
	Endpoint string

	// Insecure talks plain HTTP instead of HTTPS. For a server on the same
	// host or network only: the traffic is signed but readable.
	Insecure bool

	// Region is the bucket's region; empty means AWS_REGION, and if that is
	// empty too the client asks the server.
	Region string

	// Bucket holds the slot and the exported copies. It must exist.
	Bucket string

	// Prefix is prepended to every key, e.g. "keepslot/node-1/slot/" for a
	// Store or "keepslot/" for a Remote; a "/" is added if it lacks one.
	// Give each Store a prefix of its own, and no Remote the prefix of a
	// Store or a prefix above it.
	Prefix string

	// AccessKey, SecretKey and SessionToken are the credentials. When
	// AccessKey is empty they come from the environment (AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) or the shared credentials
	// file (~/.aws/credentials).
	AccessKey    string
	SecretKey    string
	SessionToken string

	// PartSize is the size of one part of a multipart upload, between
	// MinPartSize and MaxPartSize; 0 means DefaultPartSize. An upload holds
	// two parts in memory.
	PartSize int64

	// SSE, if set, asks the server to encrypt what it stores, e.g.
	// encrypt.NewSSE() (SSE-S3) or encrypt.NewSSEKMS(keyID, nil). With SSE-C
	// (encrypt.NewSSEC) the same key is needed to read.
	SSE encrypt.ServerSide

	// RequestTimeout bounds how long the client waits for the server's answer
	// to one request (after sending it); 0 means 2 minutes.
	RequestTimeout time.Duration

	// LockLease is how long the slot's lock may go without renewal before
	// another writer may break it: a writer renews its lock every third of
	// it, and a Store that sees the same lock, unrenewed, on two calls at
	// least LockLease apart removes it (and its upload) and takes the slot.
	// 0 means DefaultLockLease; a negative lease never expires, and then
	// only BreakLock frees a slot whose writer died.
	LockLease time.Duration

	// MaxRetries is how many times a failed request is tried; 0 means
	// minio-go's default (10), 1 means no retry.
	MaxRetries int

	// Transport, if set, carries the requests (tests, proxies, custom TLS).
	// RequestTimeout does not apply to it.
	Transport http.RoundTripper
}

// LogValue implements slog.LogValuer: the configuration without secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("endpoint", c.Endpoint),
		slog.String("bucket", c.Bucket),
		slog.String("prefix", c.Prefix),
		slog.Bool("insecure", c.Insecure),
		slog.Bool("access_key_set", c.AccessKey != ""),
	)
}

// String describes the configuration without secrets.
func (c Config) String() string {
	scheme := "https"
	if c.Insecure {
		scheme = "http"
	}
	return fmt.Sprintf("%s://%s/%s/%s", scheme, c.Endpoint, c.Bucket, c.Prefix)
}

// client is what a Store and a Remote share: the connection and the
// upload settings.
type client struct {
	core     minio.Core
	bucket   string
	prefix   string
	partSize int64
	sse      encrypt.ServerSide
}

// newClient checks cfg and makes its client.
func newClient(cfg Config) (*client, error) {
	if cfg.Endpoint == "" || strings.Contains(cfg.Endpoint, "://") {
		return nil, fmt.Errorf("%w: the endpoint %q must be a host[:port] without a scheme", ErrConfig, cfg.Endpoint)
	}
	if cfg.Bucket == "" {
		return nil, fmt.Errorf("%w: the bucket name is empty", ErrConfig)
	}
	if cfg.Region == "" {
		cfg.Region = os.Getenv("AWS_REGION")
	}
	ps := cfg.PartSize
	if ps == 0 {
		ps = DefaultPartSize
	}
	if ps < MinPartSize || ps > MaxPartSize {
		return nil, fmt.Errorf("%w: the part size %d is outside [%d, %d]", ErrConfig, ps, MinPartSize, MaxPartSize)
	}
	prefix := cfg.Prefix
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{},
		})
	}
	tr := cfg.Transport
	if tr == nil {
		timeout := cfg.RequestTimeout
		if timeout == 0 {
			timeout = 2 * time.Minute
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		t.ResponseHeaderTimeout = timeout
		t.DisableCompression = true
		tr = t
	}
	c, err := minio.NewCore(cfg.Endpoint, &minio.Options{
		Creds:      creds,
		Secure:     !cfg.Insecure,
		Region:     cfg.Region,
		Transport:  tr,
		MaxRetries: cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return &client{core: *c, bucket: cfg.Bucket, prefix: prefix, partSize: ps, sse: cfg.SSE}, nil
}

// Check asks the server whether the bucket exists and the credentials are
// accepted, and fails with ErrUnauthorized, ErrNoBucket or ErrUnreachable
// when not.
func (s *client) Check(ctx context.Context) error {
	ok, err := s.core.BucketExists(ctx, s.bucket)
	if err != nil {
		return s.wrap("checking the bucket", err)
	}
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoBucket, s.bucket)
	}
	return nil
}

// wrap classifies err, from a request made to do what, into this package's
// sentinels, keeping err in the chain.
func (s *client) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("s3store: %s: %w", what, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// The caller's deadline or the transport's timeout: no answer in
		// time either way. The chain keeps context.DeadlineExceeded.
		return fmt.Errorf("%w (%s): %w", ErrUnreachable, what, err)
	}
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "AllAccessDisabled", "AccountProblem",
		"XAdminUserNotFound": // versitygw, for an unknown access key
		return fmt.Errorf("%w (%s %s): %w", ErrUnauthorized, what, s.bucket, err)
	case "NoSuchBucket":
		return fmt.Errorf("%w (%s %s): %w", ErrNoBucket, what, s.bucket, err)
	case "NoSuchKey", "NoSuchUpload":
		return fmt.Errorf("%w (%s): %w", store.ErrNotFound, what, err)
	case "":
		if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized {
			return fmt.Errorf("%w (%s %s): %w", ErrUnauthorized, what, s.bucket, err)
		}
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, errors.ErrUnsupported) || isTransport(err) {
		return fmt.Errorf("%w (%s): %w", ErrUnreachable, what, err)
	}
	return fmt.Errorf("s3store: %s: %w", what, err)
}

// isTransport reports whether err came from the HTTP transport rather than
// from an answer of the server.
func isTransport(err error) bool {
	resp := minio.ToErrorResponse(err)
	if resp.Code != "" || resp.StatusCode != 0 {
		return false
	}
	msg := err.Error()
	for _, s := range []string{"connection refused", "connection reset", "EOF", "timeout", "no such host", "broken pipe"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// isPrecondition reports whether err is the server's refusal of a
// conditional write: the key exists, or another conditional write to it is
// under way.
func isPrecondition(err error) bool {
	resp := minio.ToErrorResponse(err)
	return resp.StatusCode == http.StatusPreconditionFailed || resp.StatusCode == http.StatusConflict ||
		resp.Code == "PreconditionFailed" || resp.Code == "ConditionalRequestConflict"
}

// isNotFound reports whether err says the key or the upload does not exist.
func isNotFound(err error) bool {
	resp := minio.ToErrorResponse(err)
	return resp.Code == "NoSuchKey" || resp.Code == "NoSuchUpload" ||
		(resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket")
}

// cleanupCtx is the context of requests that clean up after a failed or
// cancelled operation: not cancelled with it, but bounded.
func cleanupCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
}

func (s *client) getSSE() encrypt.ServerSide {
	if s.sse != nil && s.sse.Type() == encrypt.SSEC {
		return s.sse
	}
	return nil
}
