package s3store_test

import (
	"testing"

	"github.com/minio/minio-go/v7/pkg/encrypt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/store"
	"github.com/keepslot/keepslot/store/s3store"
	"github.com/keepslot/keepslot/store/s3store/s3test"
	"github.com/keepslot/keepslot/store/storetest"
)

func TestConformance(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := s3store.New(srv.Config(bucket, "slot/"+t.Name()))
		require.NoError(t, err)
		return s
	})
}

func TestRemoteConformance(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	storetest.RunRemote(t, func(t *testing.T) store.Remote {
		r, err := s3store.NewRemote(srv.Config(bucket, "remote/"+t.Name()))
		require.NoError(t, err)
		return r
	})
	assert.Empty(t, srv.Uploads(t, bucket), "no upload left behind")
}

// With server-side encryption asked for (SSE-S3), every request still
// works: the store passes the headers through. Whether the server encrypts
// is its own business; versitygw accepts them.
func TestConformanceSSE(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		cfg := srv.Config(bucket, "sse/"+t.Name())
		cfg.SSE = encrypt.NewSSE()
		s, err := s3store.New(cfg)
		require.NoError(t, err)
		return s
	})
}
