package s3store_test

import (
	"testing"

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
	n := 0
	storetest.Run(t, func(t *testing.T) store.Store {
		n++
		s, err := s3store.New(srv.Config(bucket, "slot-"+string(rune('a'+n%26))+t.Name()))
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
