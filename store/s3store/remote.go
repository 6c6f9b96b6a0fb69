package s3store

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/keepslot/keepslot/store"
)

// Remote is a store.Remote: many objects by key under Config.Prefix in a
// bucket. Each object carries its name, creation time, size, MD5, SHA-256
// and metadata as S3 user metadata (x-amz-meta-keepslot-*), so List and
// Open need no other record. It is safe for concurrent use.
type Remote struct {
	*client
}

var _ store.Remote = (*Remote)(nil)

// NewRemote returns the remote cfg describes. It does not contact the
// server; call Check for that.
func NewRemote(cfg Config) (*Remote, error) {
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Remote{client: c}, nil
}

// More metadata keys of exported objects.
const (
	metaCreated = "Keepslot-Created"
	metaSize    = "Keepslot-Size"
	metaMeta    = "Keepslot-Meta"
	// maxMetaHeader bounds the encoded metadata: S3 allows 2 KiB of user
	// metadata in all.
	maxMetaHeader = 1536
)

var (
	md5RE    = regexp.MustCompile(`^[0-9a-f]{32}$`)
	sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Put implements store.Remote. An object larger than one part (Config.
// PartSize) needs want's Size, MD5 and SHA256: they are recorded when the
// upload begins. Put streams r as a multipart upload with
// bounded memory, checks each part's MD5 on the server (Content-MD5) and
// the object's ETag, compares what it read with want, and then reads the
// object's metadata back. If anything differs, it removes the object.
func (r *Remote) Put(ctx context.Context, key string, src io.Reader, want store.Info) (store.Info, error) {
	if err := store.CheckKey(key); err != nil {
		return store.Info{}, err
	}
	if want.Created.IsZero() {
		want.Created = time.Now().UTC()
	}
	meta, err := putMeta(want)
	if err != nil {
		return store.Info{}, err
	}
	full := r.prefix + key
	up := r.newUploader(ctx, full, minio.PutObjectOptions{UserMetadata: meta})
	if want.MD5 == "" || want.SHA256 == "" {
		// The metadata of a multipart upload is fixed when it begins; the
		// hashes of an object sent in one request can be added at its end.
		up.single = fmt.Errorf("%w: an object larger than one part (%d bytes) needs its size, MD5 and SHA-256 given to Put", store.ErrInvalid, r.partSize)
	}
	got, err := copyUp(ctx, up, src, full, want)
	if err != nil {
		up.abort()
		return store.Info{}, err
	}
	if msg := mismatch(want, got); msg != "" {
		up.abort()
		return store.Info{}, fmt.Errorf("%w: %s read for %s: %s", store.ErrMismatch, "what was", full, msg)
	}
	meta[metaMD5], meta[metaSHA256], meta[metaSize] = got.MD5, got.SHA256, strconv.FormatInt(got.Size, 10)
	if _, err := up.finish(); err != nil {
		up.abort()
		if errors.Is(err, store.ErrMismatch) {
			r.remove(ctx, full)
		}
		return store.Info{}, err
	}
	// Read back what the server says it holds.
	e, err := r.stat(ctx, key)
	if err == nil {
		if msg := mismatch(got, e.Info); msg != "" {
			err = fmt.Errorf("%w: %s as stored: %s", store.ErrMismatch, full, msg)
		}
	}
	if err != nil {
		r.remove(ctx, full)
		return store.Info{}, err
	}
	return e.Info, nil
}

// putMeta is the user metadata Put records for want: its name, creation
// time and Meta, and the hashes and size it gives, which must be known
// before the upload begins (they are checked at its end).
func putMeta(want store.Info) (map[string]string, error) {
	metaJSON, err := json.Marshal(want.Meta)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", store.ErrInvalid, err)
	}
	meta := map[string]string{
		metaName:    url.QueryEscape(want.Name),
		metaCreated: want.Created.UTC().Format(time.RFC3339Nano),
		metaMeta:    base64.RawURLEncoding.EncodeToString(metaJSON),
	}
	if len(meta[metaMeta]) > maxMetaHeader {
		return nil, fmt.Errorf("%w: the metadata is %d bytes encoded, more than S3 keeps (%d)", store.ErrInvalid, len(meta[metaMeta]), maxMetaHeader)
	}
	if want.MD5 != "" {
		meta[metaMD5] = want.MD5
	}
	if want.SHA256 != "" {
		meta[metaSHA256] = want.SHA256
	}
	if want.Size > 0 || want.MD5 != "" {
		meta[metaSize] = strconv.FormatInt(want.Size, 10)
	}
	return meta, nil
}

// copyUp copies src into up, hashing it, and returns what it read as an
// Info with want's name, creation time and Meta.
func copyUp(ctx context.Context, up *uploader, src io.Reader, full string, want store.Info) (store.Info, error) {
	m, h := md5.New(), sha256.New()
	var n int64
	buf := make([]byte, 1<<20)
	for {
		k, rerr := src.Read(buf)
		if k > 0 {
			m.Write(buf[:k])
			h.Write(buf[:k])
			n += int64(k)
			if err := up.write(buf[:k]); err != nil {
				return store.Info{}, err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return store.Info{}, fmt.Errorf("s3store: reading what to upload to %s: %w", full, rerr)
		}
		if err := ctx.Err(); err != nil {
			return store.Info{}, fmt.Errorf("s3store: upload to %s: %w", full, err)
		}
	}
	return store.Info{
		Name: want.Name, Size: n, MD5: hexSum(m), SHA256: hexSum(h),
		Created: want.Created.UTC().Round(0), Meta: want.Meta,
	}, nil
}

// mismatch describes how got differs from what want gives, or is "".
func mismatch(want, got store.Info) string {
	switch {
	case (want.Size > 0 || want.MD5 != "") && want.Size != got.Size:
		return fmt.Sprintf("%d bytes, want %d", got.Size, want.Size)
	case want.MD5 != "" && want.MD5 != got.MD5:
		return fmt.Sprintf("MD5 %s, want %s", got.MD5, want.MD5)
	case want.SHA256 != "" && want.SHA256 != got.SHA256:
		return fmt.Sprintf("SHA-256 %s, want %s", got.SHA256, want.SHA256)
	}
	return ""
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

func (r *Remote) remove(ctx context.Context, full string) {
	ctx, cancel := cleanupCtx(ctx)
	defer cancel()
	r.core.RemoveObject(ctx, r.bucket, full, minio.RemoveObjectOptions{})
}

// stat reads the Info of key from its metadata.
func (r *Remote) stat(ctx context.Context, key string) (store.Entry, error) {
	oi, err := r.core.Client.StatObject(ctx, r.bucket, r.prefix+key, minio.StatObjectOptions{ServerSideEncryption: r.getSSE()})
	if err != nil {
		return store.Entry{}, r.wrap("reading the metadata of "+r.prefix+key, err)
	}
	return store.Entry{Key: key, Info: infoFromObject(oi)}, nil
}

// infoFromObject reads what Put recorded in oi's metadata. An object that
// Put did not write has its size and modification time and no hashes.
func infoFromObject(oi minio.ObjectInfo) store.Info {
	md := func(k string) string {
		if v, ok := oi.UserMetadata[k]; ok {
			return v
		}
		return oi.Metadata.Get("X-Amz-Meta-" + k)
	}
	info := store.Info{Size: oi.Size, Created: oi.LastModified.UTC(), Meta: map[string]string{}}
	info.Name = oi.Key[strings.LastIndex(oi.Key, "/")+1:]
	if v, err := url.QueryUnescape(md(metaName)); err == nil && v != "" {
		info.Name = v
	}
	if t, err := time.Parse(time.RFC3339Nano, md(metaCreated)); err == nil {
		info.Created = t.UTC()
	}
	if v := md(metaMD5); md5RE.MatchString(v) {
		info.MD5 = v
	}
	if v := md(metaSHA256); sha256RE.MatchString(v) {
		info.SHA256 = v
	}
	if b, err := base64.RawURLEncoding.DecodeString(md(metaMeta)); err == nil && len(b) > 0 {
		var m map[string]string
		if json.Unmarshal(b, &m) == nil && m != nil {
			info.Meta = m
		}
	}
	// A recorded size that differs from the object's leaves it unverified.
	if v := md(metaSize); v != "" && v != strconv.FormatInt(oi.Size, 10) {
		info.MD5, info.SHA256 = "", ""
	}
	return info
}

// List implements store.Remote.
func (r *Remote) List(ctx context.Context, prefix string) ([]store.Entry, error) {
	var out []store.Entry
	for o := range r.core.Client.ListObjects(ctx, r.bucket, minio.ListObjectsOptions{Prefix: r.prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, r.wrap("listing "+r.prefix+prefix, o.Err)
		}
		e, err := r.stat(ctx, strings.TrimPrefix(o.Key, r.prefix))
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Open implements store.Remote.
func (r *Remote) Open(ctx context.Context, key string) (store.Object, error) {
	if err := store.CheckKey(key); err != nil {
		return nil, err
	}
	e, err := r.stat(ctx, key)
	if err != nil {
		return nil, err
	}
	return r.openKey(ctx, r.prefix+key, e.Info)
}

// Delete implements store.Remote.
func (r *Remote) Delete(ctx context.Context, key string) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	if _, err := r.stat(ctx, key); err != nil {
		return err
	}
	if err := r.core.RemoveObject(ctx, r.bucket, r.prefix+key, minio.RemoveObjectOptions{}); err != nil {
		return r.wrap("deleting "+r.prefix+key, err)
	}
	return nil
}
