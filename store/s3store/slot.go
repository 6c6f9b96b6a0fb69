package s3store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/keepslot/keepslot/store"
)

// Keys of the slot, under the Store's prefix.
const (
	lockKey      = "lock"
	infoKey      = "info.json"
	objectPrefix = "object-"
	maxInfoSize  = store.MaxNameLen + 2*store.MaxMetaSize + 64<<10
)

// Metadata keys of the commit record and of exported objects (sent as
// x-amz-meta-keepslot-*).
const (
	metaMD5    = "Keepslot-Md5"
	metaSHA256 = "Keepslot-Sha256"
	metaName   = "Keepslot-Name"
)

// Store is a store.Store kept in an S3 bucket under a prefix; see the
// package documentation for its layout and guarantee. It is safe for
// concurrent use, and several Stores, in one process or on several nodes,
// may share a prefix: the lock lets one of them write at a time.
type Store struct {
	*client
	id    string // this Store's identity, written in the lock it takes
	lease time.Duration
	now   func() time.Time // the clock of lease observations; tests set it

	mu       sync.Mutex
	writing  bool      // a write of this Store holds the lock
	held     lockBody  // the lock it holds, while writing...
	heldETag string    // ...as the server has it
	lost     bool      // another writer broke the lock this Store held
	leftover []upload  // uploads this Store could not abort, to retry
	leftLock bool      // this Store holds the lock after a failed release
	seenETag string    // the ETag of another writer's lock, last seen...
	seenAt   time.Time // ...first at this time
}

var _ store.Store = (*Store)(nil)

// New returns the slot cfg describes. It does not contact the server; call
// Check for that.
func New(cfg Config) (*Store, error) {
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	var id [12]byte
	rand.Read(id[:])
	lease := cfg.LockLease
	if lease == 0 {
		lease = DefaultLockLease
	}
	return &Store{client: c, id: hex.EncodeToString(id[:]), lease: lease, now: time.Now}, nil
}

// lockBody is the content of the lock object: who holds it, for people.
type lockBody struct {
	Owner   string    `json:"owner"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Name    string    `json:"name,omitempty"`
	Started time.Time `json:"started"`
	Renewed int       `json:"renewed,omitempty"` // renewals so far: each changes the ETag
}

// lock takes the slot's lock for a write of name (or a Delete, name "").
// It fails with store.ErrBusy when another writer holds it.
func (s *Store) lock(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writing {
		return store.ErrBusy
	}
	if err := s.retryLeftoversLocked(ctx); err != nil {
		return err
	}
	host, _ := os.Hostname()
	body := lockBody{Owner: s.id, Host: host, PID: os.Getpid(), Name: name, Started: time.Now().UTC()}
	etag, err := s.putLock(ctx, body, "*")
	if isPrecondition(err) && s.staleLocked(ctx) {
		// The holder stopped renewing: break its lock, abort its upload,
		// and try once more (another Store may be doing the same).
		if err := s.BreakLock(ctx); err != nil {
			return err
		}
		etag, err = s.putLock(ctx, body, "*")
	}
	if isPrecondition(err) {
		return fmt.Errorf("%w (the lock %s is held; if its writer died, it can be broken once it goes %s without renewal, or BreakLock removes it)", store.ErrBusy, s.prefix+lockKey, s.lease)
	}
	if err != nil {
		return s.wrap("taking the slot's lock", err)
	}
	s.writing, s.held, s.heldETag, s.lost = true, body, etag, false
	return nil
}

// putLock writes the lock object: if there is none when match is "*",
// else if it has the ETag match. It returns the new ETag.
func (s *Store) putLock(ctx context.Context, body lockBody, match string) (string, error) {
	b, _ := json.Marshal(body)
	opts := minio.PutObjectOptions{ContentType: "application/json"}
	if match == "*" {
		opts.SetMatchETagExcept("*")
	} else {
		opts.SetMatchETag(match)
	}
	info, err := s.core.PutObject(ctx, s.bucket, s.prefix+lockKey, bytes.NewReader(b), int64(len(b)), "", "", opts)
	return info.ETag, err
}

// staleLocked reports whether the lock another writer holds has gone
// unrenewed (its ETag unchanged) for the lease, as this Store has seen it.
// The first sight of a lock starts the count. s.mu is held.
func (s *Store) staleLocked(ctx context.Context) bool {
	if s.lease < 0 {
		return false
	}
	oi, err := s.core.Client.StatObject(ctx, s.bucket, s.prefix+lockKey, minio.StatObjectOptions{})
	if err != nil {
		return false
	}
	now := s.now()
	if oi.ETag != s.seenETag {
		s.seenETag, s.seenAt = oi.ETag, now
		return false
	}
	if now.Sub(s.seenAt) < s.lease {
		return false
	}
	s.seenETag = ""
	return true
}

// renewLock rewrites the lock this Store holds, so that others see it
// renewed.
func (s *Store) renewLock(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.writing {
		return nil
	}
	s.held.Renewed++
	etag, err := s.putLock(ctx, s.held, s.heldETag)
	if isPrecondition(err) || isNotFound(err) {
		s.lost = true
		return errLockLost
	}
	if err != nil {
		return s.wrap("renewing the slot's lock", err)
	}
	s.heldETag = etag
	return nil
}

// errLockLost says that another writer broke this write's lock.
var errLockLost = fmt.Errorf("%w: another writer broke this write's lock (it went unrenewed for the lease) and may be writing", store.ErrBusy)

// releaseLocked removes the lock this Store holds, unless another writer
// has broken and taken it. s.mu is held.
func (s *Store) releaseLocked(ctx context.Context) error {
	if s.lost {
		return nil
	}
	oi, err := s.core.Client.StatObject(ctx, s.bucket, s.prefix+lockKey, minio.StatObjectOptions{})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if oi.ETag != s.heldETag {
		s.lost = true
		return nil
	}
	err = s.core.RemoveObject(ctx, s.bucket, s.prefix+lockKey, minio.RemoveObjectOptions{})
	if isNotFound(err) {
		return nil
	}
	return err
}

// renew renews the lock every third of the lease until stop is closed.
func (s *Store) renew(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTicker(s.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			_ = s.renewLock(ctx) // a failed renewal is retried at the next tick
		}
	}
}

// unlock releases the lock. If the server cannot be told, the Store
// remembers that it holds the lock and releases it on its next call.
func (s *Store) unlock(ctx context.Context) error {
	ctx, cancel := cleanupCtx(ctx)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writing = false
	if err := s.releaseLocked(ctx); err != nil {
		s.leftLock = true
		return s.wrap("releasing the slot's lock", err)
	}
	return nil
}

// retryLeftoversLocked aborts the uploads this Store could not abort before
// and releases a lock it could not release. s.mu is held.
func (s *Store) retryLeftoversLocked(ctx context.Context) error {
	for len(s.leftover) > 0 {
		u := s.leftover[0]
		err := s.core.AbortMultipartUpload(ctx, s.bucket, u.key, u.id)
		if err != nil && !isNotFound(err) {
			return s.wrap("aborting an upload left by a failed write", err)
		}
		s.leftover = s.leftover[1:]
	}
	if s.leftLock {
		if err := s.releaseLocked(ctx); err != nil {
			return s.wrap("releasing the lock left by a failed write", err)
		}
		s.leftLock = false
	}
	return nil
}

// BreakLock removes the slot's lock whoever holds it, and aborts every
// upload under the prefix. It is for a writer that died without releasing
// the lock (its node lost power): call it only when no writer is running,
// or two writes may go on at once.
func (s *Store) BreakLock(ctx context.Context) error {
	err := s.core.RemoveObject(ctx, s.bucket, s.prefix+lockKey, minio.RemoveObjectOptions{})
	if err != nil && !isNotFound(err) {
		return s.wrap("removing the slot's lock", err)
	}
	return s.abortUploads(ctx, "")
}

// LockHolder describes the lock's holder, or fails with store.ErrEmpty
// when nobody holds it.
func (s *Store) LockHolder(ctx context.Context) (string, error) {
	b, err := s.get(ctx, s.prefix+lockKey, 4096)
	if errors.Is(err, store.ErrNotFound) {
		return "", store.ErrEmpty
	}
	if err != nil {
		return "", err
	}
	var l lockBody
	if err := json.Unmarshal(b, &l); err != nil {
		return "", fmt.Errorf("%w: the lock does not decode: %w", store.ErrCorrupt, err)
	}
	return fmt.Sprintf("%s (pid %d) writing %q since %s", l.Host, l.PID, l.Name, l.Started.Format(time.RFC3339)), nil
}

// abortUploads aborts the multipart uploads under the prefix, except keep.
func (s *Store) abortUploads(ctx context.Context, keep string) error {
	var errs []error
	for u := range s.listUploads(ctx, s.prefix, &errs) {
		if u.id == keep {
			continue
		}
		if err := s.core.AbortMultipartUpload(ctx, s.bucket, u.key, u.id); err != nil && !isNotFound(err) {
			errs = append(errs, s.wrap("aborting an abandoned upload", err))
		}
	}
	return errors.Join(errs...)
}

// listUploads yields the multipart uploads under prefix.
func (c *client) listUploads(ctx context.Context, prefix string, errs *[]error) func(func(upload) bool) {
	return func(yield func(upload) bool) {
		keyMarker, idMarker := "", ""
		for {
			res, err := c.core.ListMultipartUploads(ctx, c.bucket, prefix, keyMarker, idMarker, "", 1000)
			if err != nil {
				*errs = append(*errs, c.wrap("listing uploads", err))
				return
			}
			for _, u := range res.Uploads {
				if !yield(upload{key: u.Key, id: u.UploadID}) {
					return
				}
			}
			if !res.IsTruncated {
				return
			}
			keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
		}
	}
}

// tidy removes what abandoned writes left: uploads and data objects. The
// caller holds the lock and the slot has no commit record, so no data
// object is in use.
func (s *Store) tidy(ctx context.Context) error {
	if err := s.abortUploads(ctx, ""); err != nil {
		return err
	}
	for o := range s.core.Client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + objectPrefix}) {
		if o.Err != nil {
			return s.wrap("listing the slot", o.Err)
		}
		if err := s.core.RemoveObject(ctx, s.bucket, o.Key, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
			return s.wrap("removing "+o.Key+", left by an abandoned write", err)
		}
	}
	return nil
}

// get reads the small object key, failing with ErrNotFound if there is
// none and with store.ErrCorrupt if it is longer than limit.
func (c *client) get(ctx context.Context, key string, limit int64) ([]byte, error) {
	rc, _, _, err := c.core.GetObject(ctx, c.bucket, key, minio.GetObjectOptions{ServerSideEncryption: c.getSSE()})
	if err != nil {
		return nil, c.wrap("reading "+key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, c.wrap("reading "+key, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is longer than %d bytes", store.ErrCorrupt, key, limit)
	}
	return b, nil
}

// readInfo reads the commit record, failing with store.ErrEmpty when
// there is none and with store.ErrCorrupt when it cannot be trusted.
func (s *Store) readInfo(ctx context.Context) (object string, info store.Info, err error) {
	b, err := s.get(ctx, s.prefix+infoKey, maxInfoSize)
	if errors.Is(err, store.ErrNotFound) {
		return "", store.Info{}, store.ErrEmpty
	}
	if err != nil {
		return "", store.Info{}, err
	}
	return store.ParseCommitRecord(b)
}

// Create implements store.Store. It takes the lock (store.ErrBusy if
// another writer holds it) and fails with store.ErrSlotOccupied if an
// object is stored.
func (s *Store) Create(ctx context.Context, name string) (store.Pending, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3store: create %q: %w", name, err)
	}
	if err := store.CheckName(name); err != nil {
		return nil, err
	}
	// A cheap check first, so that a full slot does not cost a lock.
	switch _, _, err := s.readInfo(ctx); {
	case err == nil:
		return nil, store.ErrSlotOccupied
	case !errors.Is(err, store.ErrEmpty):
		return nil, err
	}
	if err := s.lock(ctx, name); err != nil {
		return nil, err
	}
	// Again under the lock: a writer may have committed and released it
	// since the first check.
	fail := func(err error) (store.Pending, error) {
		return nil, errors.Join(err, s.unlock(ctx))
	}
	switch _, _, err := s.readInfo(ctx); {
	case err == nil:
		return fail(store.ErrSlotOccupied)
	case !errors.Is(err, store.ErrEmpty):
		return fail(err)
	}
	if err := s.tidy(ctx); err != nil {
		return fail(err)
	}
	var id [16]byte
	rand.Read(id[:])
	object := objectPrefix + hex.EncodeToString(id[:])
	be := &backend{s: s, ctx: ctx, object: object, stopRenew: make(chan struct{})}
	be.up = s.newUploader(ctx, s.prefix+object, minio.PutObjectOptions{})
	if s.lease > 0 {
		be.renewing.Go(func() { s.renew(ctx, be.stopRenew) })
	}
	return store.NewPending(ctx, name, be), nil
}

// backend is the store.Backend of a write to a Store.
type backend struct {
	s         *Store
	ctx       context.Context
	object    string
	up        *uploader
	done      bool // the data object exists on the server
	stopRenew chan struct{}
	renewing  sync.WaitGroup
}

// stopRenewing ends the lock's renewal, before the lock is released.
func (b *backend) stopRenewing() {
	select {
	case <-b.stopRenew:
	default:
		close(b.stopRenew)
	}
	b.renewing.Wait()
}

func (b *backend) Append(p []byte) error { return b.up.write(p) }

func (b *backend) Commit(info store.Info) error {
	s := b.s
	if _, err := b.up.finish(); err != nil {
		return err
	}
	b.done = true
	// Renewing the lock just before the commit record proves that this
	// write still holds it: a writer that lost it (it went unrenewed for
	// the lease and was broken) stops here.
	if err := s.renewLock(b.ctx); err != nil {
		return err
	}
	body, err := store.MarshalCommitRecord(b.object, info)
	if err != nil {
		return fmt.Errorf("encoding the commit record: %w", err)
	}
	opts := minio.PutObjectOptions{
		ContentType:          "application/json",
		UserMetadata:         map[string]string{metaMD5: info.MD5, metaSHA256: info.SHA256},
		ServerSideEncryption: s.sse,
	}
	opts.SetMatchETagExcept("*")
	_, err = s.core.PutObject(b.ctx, s.bucket, s.prefix+infoKey, bytes.NewReader(body), int64(len(body)), "", "", opts)
	if isPrecondition(err) {
		// Only a broken lock lets this happen.
		return fmt.Errorf("%w: another writer committed while this one held the lock (was the lock broken?)", store.ErrSlotOccupied)
	}
	if err != nil {
		return s.wrap("writing the commit record", err)
	}
	b.done = false // the commit record owns the data object now
	b.stopRenewing()
	// The object is stored: if the lock cannot be released now, the Store
	// releases it on its next call (unlock remembers it).
	_ = s.unlock(b.ctx)
	return nil
}

func (b *backend) Abort() error {
	s := b.s
	b.stopRenewing()
	left, err := b.up.abort()
	var errs []error
	if err != nil {
		errs = append(errs, err)
		s.mu.Lock()
		s.leftover = append(s.leftover, *left)
		s.mu.Unlock()
	}
	if b.done {
		ctx, cancel := cleanupCtx(b.ctx)
		err := s.core.RemoveObject(ctx, s.bucket, s.prefix+b.object, minio.RemoveObjectOptions{})
		cancel()
		if err != nil && !isNotFound(err) {
			errs = append(errs, s.wrap("removing the uncommitted object", err))
			// tidy removes it on the next write.
		}
	}
	if err := s.unlock(b.ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context) (store.Info, error) {
	if err := ctx.Err(); err != nil {
		return store.Info{}, fmt.Errorf("s3store: stat: %w", err)
	}
	_, info, err := s.readInfo(ctx)
	return info, err
}

// Open implements store.Store. The Object reads with ranged GETs; it cannot
// be read once the stored object is deleted.
func (s *Store) Open(ctx context.Context) (store.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3store: open: %w", err)
	}
	object, info, err := s.readInfo(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.openKey(ctx, s.prefix+object, info)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: the object %s named by the commit record is missing", store.ErrCorrupt, s.prefix+object)
	}
	return o, err
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3store: delete: %w", err)
	}
	if err := s.lock(ctx, ""); err != nil {
		return err
	}
	err := func() error {
		_, _, err := s.readInfo(ctx)
		if errors.Is(err, store.ErrEmpty) {
			if err := s.tidy(ctx); err != nil {
				return err
			}
			return store.ErrEmpty
		}
		if err != nil && !errors.Is(err, store.ErrCorrupt) {
			return err
		}
		// A damaged commit record is deleted too: that is how to recover.
		if err := s.core.RemoveObject(ctx, s.bucket, s.prefix+infoKey, minio.RemoveObjectOptions{}); err != nil {
			return s.wrap("deleting the commit record", err)
		}
		// Nothing refers to the data object now: tidy removes it.
		return s.tidy(ctx)
	}()
	return errors.Join(err, s.unlock(ctx))
}
