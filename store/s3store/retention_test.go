package s3store_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/store"
	"github.com/keepslot/keepslot/store/s3store"
	"github.com/keepslot/keepslot/store/s3store/s3test"
)

// Retention against a real server: the policy reads the creation times
// and hashes Put recorded, and deletes what it drops.
func TestRetentionOnServer(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	r, err := s3store.NewRemote(srv.Config(bucket, "keepslot"))
	require.NoError(t, err)
	ctx := context.Background()
	day := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	for i := range 6 {
		data := []byte(fmt.Sprintf("backup %d", i))
		_, err := r.Put(ctx, fmt.Sprintf("node-1/b%d.enc", i), bytes.NewReader(data),
			store.Info{Name: fmt.Sprintf("b%d.enc", i), Created: day.AddDate(0, 0, i)})
		require.NoError(t, err)
	}
	_, err = r.Put(ctx, "node-2/other.enc", bytes.NewReader([]byte("x")), store.Info{Name: "other.enc", Created: day})
	require.NoError(t, err)
	// The newest object was not written by Put: it is not verified.
	_, err = srv.Client(t).PutObject(ctx, bucket, "keepslot/node-1/stray.enc", bytes.NewReader([]byte("stray")), 5, "", "", minio.PutObjectOptions{})
	require.NoError(t, err)

	res, err := store.Prune(ctx, r, "node-1/", store.Retention{Last: 1, DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"node-1/stray.enc", "node-1/b5.enc"}, res.Keep, "the newest, and the newest verified")
	assert.Equal(t, []string{"node-1/b4.enc", "node-1/b3.enc", "node-1/b2.enc", "node-1/b1.enc", "node-1/b0.enc"}, res.Delete)
	assert.Len(t, srv.Keys(t, bucket), 8, "a dry run deletes nothing")

	res, err = store.Prune(ctx, r, "node-1/", store.Retention{Last: 1})
	require.NoError(t, err)
	assert.Len(t, res.Delete, 5)
	assert.ElementsMatch(t, []string{"keepslot/node-1/stray.enc", "keepslot/node-1/b5.enc", "keepslot/node-2/other.enc"}, srv.Keys(t, bucket))
}
