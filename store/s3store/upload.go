package s3store

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"github.com/minio/minio-go/v7"

	"github.com/keepslot/keepslot/store"
)

// uploader streams an object to one key. Bytes fill a part buffer; a full
// buffer goes to a goroutine that uploads it as the next part of a multipart
// upload while the writer fills the other buffer. So an upload holds at most
// two parts in memory. An object smaller than one part is sent in one
// PutObject when it is finished, and never starts a multipart upload.
//
// Every part carries its Content-MD5, which the server checks, and finish
// compares the server's ETag of the whole object with the one the parts'
// MD5s give, when the server's ETag has that form.
type uploader struct {
	c    *client
	ctx  context.Context // of the part uploads; cancel stops them
	stop context.CancelFunc
	key  string
	opts minio.PutObjectOptions

	buf    []byte      // the part being filled
	spare  chan []byte // buffers the goroutine is done with
	made   int         // buffers allocated, at most 2
	jobs   chan job
	single error // if set, the object must fit in one part: why
	closed bool  // jobs is closed
	wg     sync.WaitGroup
	id     string // the multipart upload's ID, once started
	next   int    // number of the next part to send

	mu    sync.Mutex
	parts []minio.CompletePart
	md5s  [][]byte // of each part, by number-1
	err   error    // the first failure of a part upload
}

type job struct {
	n int
	b []byte
}

func (c *client) newUploader(ctx context.Context, key string, opts minio.PutObjectOptions) *uploader {
	if opts.ContentType == "" {
		opts.ContentType = "application/octet-stream"
	}
	opts.ServerSideEncryption = c.sse
	uctx, stop := context.WithCancel(ctx)
	return &uploader{c: c, ctx: uctx, stop: stop, key: key, opts: opts, spare: make(chan []byte, 2), next: 1}
}

// uploadID is the multipart upload's ID, or "" if none was started.
func (u *uploader) uploadID() string { return u.id }

func (u *uploader) failed() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

// write accepts p; it fails when a part upload has failed.
func (u *uploader) write(p []byte) error {
	ps := int(u.c.partSize)
	for len(p) > 0 {
		if u.buf == nil {
			u.buf = u.getBuf()
		}
		k := min(len(p), ps-len(u.buf))
		if len(u.buf)+k > cap(u.buf) {
			// Small objects stay small; a second part means a big one.
			b := make([]byte, len(u.buf), ps)
			copy(b, u.buf)
			u.buf = b
		}
		u.buf = append(u.buf, p[:k]...)
		p = p[k:]
		if len(u.buf) == ps {
			if err := u.send(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (u *uploader) getBuf() []byte {
	if u.made < 2 {
		select {
		case b := <-u.spare:
			return b[:0]
		default:
		}
		u.made++
		return make([]byte, 0, min(u.c.partSize, 1<<20))
	}
	return (<-u.spare)[:0]
}

// send hands the full buffer to the part uploader, starting the multipart
// upload first if this is the first part.
func (u *uploader) send() error {
	if err := u.failed(); err != nil {
		return err
	}
	if u.id == "" {
		if u.single != nil {
			return u.single
		}
		id, err := u.c.core.NewMultipartUpload(u.ctx, u.c.bucket, u.key, u.opts)
		if err != nil {
			return u.c.wrap("starting the upload of "+u.key, err)
		}
		u.id = id
		u.jobs = make(chan job, 1)
		u.wg.Go(u.run)
	}
	if u.next > maxParts {
		return fmt.Errorf("%w: the object needs more than %d parts of %d bytes; raise Config.PartSize", ErrConfig, maxParts, u.c.partSize)
	}
	u.jobs <- job{n: u.next, b: u.buf}
	u.next++
	u.buf = nil
	return nil
}

// run uploads the parts it is given, in order, until jobs is closed.
func (u *uploader) run() {
	for j := range u.jobs {
		if u.failed() == nil {
			sum := md5.Sum(j.b)
			part, err := u.c.core.PutObjectPart(u.ctx, u.c.bucket, u.key, u.id, j.n,
				bytes.NewReader(j.b), int64(len(j.b)), minio.PutObjectPartOptions{
					Md5Base64:            base64.StdEncoding.EncodeToString(sum[:]),
					SSE:                  u.c.getSSE(),
					DisableContentSha256: true,
				})
			u.mu.Lock()
			if err != nil {
				u.err = u.c.wrap(fmt.Sprintf("uploading part %d of %s", j.n, u.key), err)
			} else {
				u.parts = append(u.parts, minio.CompletePart{PartNumber: j.n, ETag: part.ETag})
				u.md5s = append(u.md5s, sum[:])
			}
			u.mu.Unlock()
		}
		u.spare <- j.b
	}
}

// finish uploads what is left and completes the object.
func (u *uploader) finish() (minio.UploadInfo, error) {
	if u.id == "" {
		b := u.buf
		sum := md5.Sum(b)
		info, err := u.c.core.PutObject(u.ctx, u.c.bucket, u.key, bytes.NewReader(b), int64(len(b)),
			base64.StdEncoding.EncodeToString(sum[:]), "", u.opts)
		u.buf = nil
		if err != nil {
			return info, u.c.wrap("uploading "+u.key, err)
		}
		if etag := strings.Trim(info.ETag, `"`); u.etagIsMD5() && isMD5Hex(etag) && etag != hex.EncodeToString(sum[:]) {
			return info, fmt.Errorf("%w: the server's ETag of %s is %s, the bytes sent have MD5 %x", store.ErrMismatch, u.key, etag, sum)
		}
		return info, nil
	}
	if len(u.buf) > 0 {
		if err := u.send(); err != nil {
			return minio.UploadInfo{}, err
		}
	}
	u.closed = true
	close(u.jobs)
	u.wg.Wait()
	if err := u.failed(); err != nil {
		return minio.UploadInfo{}, err
	}
	info, err := u.c.core.CompleteMultipartUpload(u.ctx, u.c.bucket, u.key, u.id, u.parts, u.opts)
	if err != nil {
		return info, u.c.wrap("completing the upload of "+u.key, err)
	}
	u.id = ""
	h := md5.New()
	for _, m := range u.md5s {
		h.Write(m)
	}
	want := fmt.Sprintf("%x-%d", h.Sum(nil), len(u.md5s))
	if etag := strings.Trim(info.ETag, `"`); u.etagIsMD5() && strings.Contains(etag, "-") && etag != want {
		return info, fmt.Errorf("%w: the server's ETag of %s is %s, the parts sent give %s", store.ErrMismatch, u.key, etag, want)
	}
	return info, nil
}

// abort stops the part uploads and aborts the multipart upload on the
// server. It returns the upload it could not abort, if any.
func (u *uploader) abort() (left *upload, err error) {
	u.stop()
	if u.jobs != nil && !u.closed {
		u.closed = true
		close(u.jobs)
	}
	u.wg.Wait()
	u.buf = nil
	if u.id == "" {
		return nil, nil
	}
	ctx, cancel := cleanupCtx(u.ctx)
	defer cancel()
	if err := u.c.core.AbortMultipartUpload(ctx, u.c.bucket, u.key, u.id); err != nil && !isNotFound(err) {
		return &upload{key: u.key, id: u.id}, u.c.wrap("aborting the upload of "+u.key, err)
	}
	u.id = ""
	return nil, nil
}

// etagIsMD5 reports whether the server's ETags can be expected to be MD5s
// (of the object, or of its parts' MD5s): not with server-side encryption,
// where AWS makes them otherwise. Each part's Content-MD5 is checked anyway.
func (u *uploader) etagIsMD5() bool { return u.c.sse == nil }

func isMD5Hex(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// upload names a multipart upload.
type upload struct{ key, id string }
