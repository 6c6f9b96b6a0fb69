package s3store_test

import (
	"context"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/store"
	"github.com/keepslot/keepslot/store/s3store"
	"github.com/keepslot/keepslot/store/s3store/s3test"
)

// Cancelled, aborted and failed writes leave no goroutine behind (the
// part uploader ends with its write) and no upload on the server.
func TestNoLeakOnFailedWrites(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	cfg := srv.Config(bucket, "slot")
	cfg.Transport = tr
	s := newStore(t, cfg)
	data := pattern(9, 2*s3store.MinPartSize+1)

	settle := func() int {
		tr.CloseIdleConnections()
		runtime.GC()
		return runtime.NumGoroutine()
	}
	base := settle()
	for i := range 10 {
		ctx, cancel := context.WithCancel(t.Context())
		p, err := s.Create(ctx, "leak")
		require.NoError(t, err)
		_, err = p.Write(data)
		require.NoError(t, err)
		switch i % 3 {
		case 0:
			cancel()
			_, err = p.Commit(nil)
			require.ErrorIs(t, err, context.Canceled)
		case 1:
			require.NoError(t, p.Abort())
		case 2:
			_, err = p.Commit(nil)
			require.NoError(t, err)
			require.NoError(t, s.Delete(t.Context()))
		}
		cancel()
	}
	require.Empty(t, srv.Uploads(t, bucket))
	_, err := s.Stat(t.Context())
	require.ErrorIs(t, err, store.ErrEmpty)
	// Goroutines of closed connections end shortly after CloseIdleConnections.
	deadline := time.Now().Add(10 * time.Second)
	for n := settle(); n > base; n = settle() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
	}
}
