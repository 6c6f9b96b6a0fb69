package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/store"
	"github.com/keepslot/keepslot/store/s3store"
	"github.com/keepslot/keepslot/store/s3store/s3test"
)

// pattern returns n bytes that vary with seed.
func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31) ^ seed ^ byte(i>>13)
	}
	return b
}

func newStore(t *testing.T, cfg s3store.Config) *s3store.Store {
	t.Helper()
	s, err := s3store.New(cfg)
	require.NoError(t, err)
	return s
}

func put(t *testing.T, s store.Store, name string, data []byte) store.Info {
	t.Helper()
	p, err := s.Create(t.Context(), name)
	require.NoError(t, err)
	_, err = p.Write(data)
	require.NoError(t, err)
	info, err := p.Commit(nil)
	require.NoError(t, err)
	return info
}

func readAll(t *testing.T, s store.Store) []byte {
	t.Helper()
	o, err := s.Open(t.Context())
	require.NoError(t, err)
	defer o.Close()
	b, err := io.ReadAll(o)
	require.NoError(t, err)
	return b
}

// Stores that share nothing but the prefix, as processes on two nodes
// would, race for the slot: the server's conditional create lets one win.
func TestConcurrentCreateAcrossStores(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config(srv.NewBucket(t), "node-1/slot")
	const n = 20
	stores := make([]*s3store.Store, n)
	for i := range stores {
		stores[i] = newStore(t, cfg)
	}
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		mu      sync.Mutex
		winners []store.Pending
		others  []error
	)
	for _, s := range stores {
		wg.Go(func() {
			<-start
			p, err := s.Create(context.Background(), "racer")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, p)
			case !errors.Is(err, store.ErrBusy) && !errors.Is(err, store.ErrSlotOccupied):
				others = append(others, err)
			}
		})
	}
	close(start)
	wg.Wait()
	require.Empty(t, others)
	require.Len(t, winners, 1, "exactly one of %d Stores may take the slot", n)
	_, err := winners[0].Write([]byte("won"))
	require.NoError(t, err)
	_, err = winners[0].Commit(nil)
	require.NoError(t, err)
	assert.Equal(t, "won", string(readAll(t, stores[n-1])))
}

// Even with the lock broken under a writer, the commit record's
// conditional create keeps a stored object from being replaced.
func TestCommitNeverReplaces(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config(srv.NewBucket(t), "slot")
	s1, s2 := newStore(t, cfg), newStore(t, cfg)
	p1, err := s1.Create(t.Context(), "first")
	require.NoError(t, err)
	_, err = p1.Write([]byte("first"))
	require.NoError(t, err)

	_, err = s2.Create(t.Context(), "second")
	require.ErrorIs(t, err, store.ErrBusy)
	assert.Contains(t, err.Error(), "BreakLock")
	holder, err := s2.LockHolder(t.Context())
	require.NoError(t, err)
	assert.Contains(t, holder, `writing "first"`)

	require.NoError(t, s2.BreakLock(t.Context()))
	put(t, s2, "second", []byte("second"))
	_, err = p1.Commit(nil)
	require.ErrorIs(t, err, store.ErrBusy, "the writer finds its lock gone")
	assert.Equal(t, "second", string(readAll(t, s1)))

	// And should a commit record appear while a writer holds the lock (a
	// writer that ignores it), the conditional create refuses to replace it.
	cfg.Prefix = "slot-2"
	s3 := newStore(t, cfg)
	p3, err := s3.Create(t.Context(), "third")
	require.NoError(t, err)
	rec := []byte("someone else's record")
	_, err = srv.Client(t).PutObject(t.Context(), cfg.Bucket, "slot-2/info.json", bytes.NewReader(rec), int64(len(rec)), "", "", minio.PutObjectOptions{})
	require.NoError(t, err)
	_, err = p3.Commit(nil)
	require.ErrorIs(t, err, store.ErrSlotOccupied)
}

// The server dies in the middle of an upload. The write fails, the slot
// stays empty, and once the server is back the next write succeeds and the
// abandoned upload and lock are gone.
func TestServerKilledMidUpload(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	cfg := srv.Config(bucket, "slot")
	cfg.MaxRetries = 1
	s := newStore(t, cfg)

	p, err := s.Create(t.Context(), "interrupted")
	require.NoError(t, err)
	_, err = p.Write(pattern(1, 3*s3store.MinPartSize))
	require.NoError(t, err)
	require.NotEmpty(t, srv.Uploads(t, bucket), "the multipart upload has begun")

	srv.Kill()
	var werr error
	for range 10 { // the part uploads fail in the background: more writes see it
		if _, werr = p.Write(pattern(2, s3store.MinPartSize)); werr != nil {
			break
		}
	}
	if werr == nil {
		_, werr = p.Commit(nil)
	}
	require.ErrorIs(t, werr, s3store.ErrUnreachable)
	p.Abort() // cannot reach the server either

	srv.Restart(t)
	_, err = s.Stat(t.Context())
	require.ErrorIs(t, err, store.ErrEmpty, "no object after the failed upload")

	data := pattern(3, 2*s3store.MinPartSize+17)
	info := put(t, s, "next", data)
	assert.Equal(t, int64(len(data)), info.Size)
	assert.True(t, bytes.Equal(data, readAll(t, s)))
	assert.Empty(t, srv.Uploads(t, bucket), "no orphaned upload")
	assert.ElementsMatch(t, []string{"slot/info.json", "slot/" + objectOf(t, srv, bucket)}, srv.Keys(t, bucket), "nothing but the object and its record")
}

func objectOf(t *testing.T, srv *s3test.Server, bucket string) string {
	for _, k := range srv.Keys(t, bucket) {
		if strings.HasPrefix(k, "slot/object-") {
			return strings.TrimPrefix(k, "slot/")
		}
	}
	t.Fatal("no data object")
	return ""
}

// A writer that dies (its node lost power) leaves its lock and upload;
// BreakLock clears both.
func TestWriterDiedBreakLock(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	cfg := srv.Config(bucket, "slot")
	dead := newStore(t, cfg)
	p, err := dead.Create(context.Background(), "abandoned")
	require.NoError(t, err)
	_, err = p.Write(pattern(4, 2*s3store.MinPartSize))
	require.NoError(t, err)
	require.NotEmpty(t, srv.Uploads(t, bucket))
	// The writer is never heard of again.

	s := newStore(t, cfg)
	_, err = s.Create(t.Context(), "next")
	require.ErrorIs(t, err, store.ErrBusy)
	require.NoError(t, s.BreakLock(t.Context()))
	assert.Empty(t, srv.Uploads(t, bucket), "BreakLock aborts the upload")
	put(t, s, "next", []byte("next"))
	_, err = s.LockHolder(t.Context())
	assert.ErrorIs(t, err, store.ErrEmpty, "no lock once committed")
}

func TestWrongCredentials(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config(srv.NewBucket(t), "slot")
	cfg.SecretKey = "not-the-secret-0123456789"
	s := newStore(t, cfg)
	_, err := s.Create(t.Context(), "x")
	require.ErrorIs(t, err, s3store.ErrUnauthorized)
	require.ErrorIs(t, err, store.ErrUnauthorized)
	assert.Equal(t, errcode.Unauthorized, errcode.Of(err), "keepslotd answers 502, keepslotctl exits 7")
	assert.Contains(t, err.Error(), "AWS_SECRET_ACCESS_KEY", "the error says what to check")
	assert.NotContains(t, err.Error(), cfg.SecretKey)
	_, err = s.Stat(t.Context())
	require.ErrorIs(t, err, s3store.ErrUnauthorized)
	require.ErrorIs(t, s.Check(t.Context()), s3store.ErrUnauthorized)

	cfg.AccessKey = "nobody"
	_, err = newStore(t, cfg).Stat(t.Context())
	require.ErrorIs(t, err, s3store.ErrUnauthorized)
}

func TestCredentialsFromEnvironment(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config(srv.NewBucket(t), "slot")
	t.Setenv("AWS_ACCESS_KEY_ID", cfg.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", cfg.SecretKey)
	cfg.AccessKey, cfg.SecretKey = "", ""
	s := newStore(t, cfg)
	put(t, s, "env", []byte("from the environment"))
	assert.Equal(t, "from the environment", string(readAll(t, s)))
}

func TestBucketMissing(t *testing.T) {
	srv := s3test.Start(t)
	s := newStore(t, srv.Config("no-such-bucket", "slot"))
	_, err := s.Create(t.Context(), "x")
	require.ErrorIs(t, err, s3store.ErrNoBucket)
	assert.Contains(t, err.Error(), "create it")
	require.ErrorIs(t, s.Check(t.Context()), s3store.ErrNoBucket)
}

// A server that accepts connections and never answers.
func TestNetworkTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	s := newStore(t, s3store.Config{
		Endpoint: l.Addr().String(), Insecure: true, Bucket: "bkt",
		AccessKey: "a", SecretKey: "s", RequestTimeout: 100 * time.Millisecond, MaxRetries: 1,
	})
	_, err = s.Create(t.Context(), "x")
	require.ErrorIs(t, err, s3store.ErrUnreachable)
	require.ErrorIs(t, err, store.ErrUnreachable)
	assert.Equal(t, errcode.Unreachable, errcode.Of(err))

	// And a server that is not there at all.
	addr := l.Addr().String()
	l.Close()
	s = newStore(t, s3store.Config{Endpoint: addr, Insecure: true, Bucket: "bkt", AccessKey: "a", SecretKey: "s", MaxRetries: 1})
	_, err = s.Stat(t.Context())
	require.ErrorIs(t, err, s3store.ErrUnreachable)
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []s3store.Config{
		{Bucket: "b"},
		{Endpoint: "https://s3.example.com", Bucket: "b"},
		{Endpoint: "s3.example.com"},
		{Endpoint: "s3.example.com", Bucket: "b", PartSize: 1 << 20},
	} {
		_, err := s3store.New(cfg)
		assert.ErrorIs(t, err, s3store.ErrConfig, "%+v", cfg)
	}
	cfg := s3store.Config{Endpoint: "s3.example.com", Bucket: "b", AccessKey: "AKIA", SecretKey: "very-secret"}
	assert.NotContains(t, cfg.String(), "very-secret")
}

// A damaged commit record is reported as store.ErrCorrupt, and Delete
// recovers the slot.
func TestCorruptCommitRecord(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	s := newStore(t, srv.Config(bucket, "slot"))
	put(t, s, "good", []byte("good"))
	bad := []byte(`{"version":1,"object":"../../etc/passwd"}`)
	_, err := srv.Client(t).PutObject(t.Context(), bucket, "slot/info.json", bytes.NewReader(bad), int64(len(bad)), "", "", minio.PutObjectOptions{})
	require.NoError(t, err)
	_, err = s.Stat(t.Context())
	require.ErrorIs(t, err, store.ErrCorrupt)
	_, err = s.Open(t.Context())
	require.ErrorIs(t, err, store.ErrCorrupt)
	_, err = s.Create(t.Context(), "x")
	require.ErrorIs(t, err, store.ErrCorrupt)
	require.NoError(t, s.Delete(t.Context()))
	assert.Empty(t, srv.Keys(t, bucket), "Delete removes the record and the data")
	put(t, s, "again", []byte("again"))
}

// fakeClock is a clock a test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// A writer that dies leaves a lock nobody renews: once another Store has
// seen it unrenewed for the lease, it breaks it, and the dead writer's
// upload with it. The dead writer, were it to come back, cannot commit.
func TestStaleLockBroken(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	cfg := srv.Config(bucket, "slot")
	dead := newStore(t, cfg)
	p, err := dead.Create(context.Background(), "abandoned")
	require.NoError(t, err)
	_, err = p.Write(pattern(5, 2*s3store.MinPartSize))
	require.NoError(t, err)
	require.NotEmpty(t, srv.Uploads(t, bucket))

	s := newStore(t, cfg)
	clock := &fakeClock{t: time.Now()}
	s3store.SetClock(s, clock.now)
	_, err = s.Create(t.Context(), "next")
	require.ErrorIs(t, err, store.ErrBusy, "the first sight of the lock starts the count")
	clock.add(s3store.DefaultLockLease - time.Second)
	_, err = s.Create(t.Context(), "next")
	require.ErrorIs(t, err, store.ErrBusy, "within the lease")
	clock.add(time.Second)
	put(t, s, "next", []byte("next"))
	assert.Empty(t, srv.Uploads(t, bucket), "the dead writer's upload is aborted")

	_, err = p.Commit(nil)
	require.Error(t, err, "the dead writer's upload is gone")
	assert.Equal(t, "next", string(readAll(t, s)))
}

// A writer that renews its lock keeps it, however long it takes.
func TestRenewedLockKept(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config(srv.NewBucket(t), "slot")
	w := newStore(t, cfg)
	p, err := w.Create(t.Context(), "slow")
	require.NoError(t, err)
	_, err = p.Write([]byte("slow"))
	require.NoError(t, err)

	s := newStore(t, cfg)
	clock := &fakeClock{t: time.Now()}
	s3store.SetClock(s, clock.now)
	for range 5 {
		_, err = s.Create(t.Context(), "other")
		require.ErrorIs(t, err, store.ErrBusy)
		clock.add(s3store.DefaultLockLease)
		require.NoError(t, s3store.RenewLock(w))
	}
	_, err = s.Create(t.Context(), "other")
	require.ErrorIs(t, err, store.ErrBusy)
	_, err = p.Commit(nil)
	require.NoError(t, err)
	assert.Equal(t, "slow", string(readAll(t, s)))
}

// With a negative lease, a lock never expires.
func TestLockLeaseNever(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config(srv.NewBucket(t), "slot")
	cfg.LockLease = -1
	w := newStore(t, cfg)
	_, err := w.Create(context.Background(), "held")
	require.NoError(t, err)
	s := newStore(t, cfg)
	clock := &fakeClock{t: time.Now()}
	s3store.SetClock(s, clock.now)
	for range 3 {
		_, err = s.Create(t.Context(), "other")
		require.ErrorIs(t, err, store.ErrBusy)
		clock.add(24 * time.Hour)
	}
}

// A writer whose lock was broken finds out when it renews or commits, and
// leaves the new holder's lock alone.
func TestBrokenLockLost(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config(srv.NewBucket(t), "slot")
	w := newStore(t, cfg)
	p, err := w.Create(t.Context(), "slow")
	require.NoError(t, err)
	_, err = p.Write([]byte("slow"))
	require.NoError(t, err)

	s := newStore(t, cfg)
	clock := &fakeClock{t: time.Now()}
	s3store.SetClock(s, clock.now)
	_, err = s.Create(t.Context(), "other")
	require.ErrorIs(t, err, store.ErrBusy)
	clock.add(s3store.DefaultLockLease)
	p2, err := s.Create(t.Context(), "other")
	require.NoError(t, err, "the unrenewed lock is broken")

	require.ErrorIs(t, s3store.RenewLock(w), store.ErrBusy, "the renewal finds the lock taken")
	_, err = p.Commit(nil)
	require.ErrorIs(t, err, store.ErrBusy)
	holder, err := s.LockHolder(t.Context())
	require.NoError(t, err, "the loser's abort leaves the new lock")
	assert.Contains(t, holder, `"other"`)

	_, err = p2.Write([]byte("other"))
	require.NoError(t, err)
	_, err = p2.Commit(nil)
	require.NoError(t, err)
	assert.Equal(t, "other", string(readAll(t, w)))
}
