package mongodb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/testkit/mongotest"
)

// TestReplyTooLarge checks that the driver's refusal of an answer above
// maxMessageSizeBytes, which comes as a connection error, is classified
// as ErrReplyTooLarge, not as a server that cannot be reached: by Ask, by
// Classify, and on a real getMore of FerretDB's larger than 48 MB.
func TestReplyTooLarge(t *testing.T) {
	// The driver's error as it comes out of a cursor: its connection
	// error around its unexported sentinel, of this text.
	driverErr := fmt.Errorf("getMore: %w", topology.ConnectionError{ConnectionID: "c1", Wrapped: errors.New("length of read message too large")})
	for name, err := range map[string]error{
		"Ask":      Ask(context.Background(), time.Minute, func(context.Context) error { return driverErr }),
		"Classify": Classify(driverErr),
	} {
		require.ErrorIs(t, err, ErrReplyTooLarge, name)
		assert.NotErrorIs(t, err, ErrUnreachable, name)
		assert.ErrorIs(t, err, driverErr, name)
		assert.Equal(t, errcode.Internal, errcode.Of(err), name)
		assert.ErrorContains(t, err, "does not bound a batch to 16 MiB", name)
	}

	srv := mongotest.New(t)
	if !srv.Embedded {
		t.Skip("a mongod bounds its batches to 16 MiB") // covered by the embedded default in CI
	}
	ctx := context.Background()
	coll := srv.Client.Database(srv.DB("big")).Collection("c")
	pad := strings.Repeat("x", 13<<20)
	for i := range 4 {
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprint(i)}, {Key: "pad", Value: pad}})
		require.NoError(t, err)
	}
	cur, err := coll.Find(ctx, bson.D{})
	if err == nil {
		defer cur.Close(ctx)
		for cur.Next(ctx) {
		}
		err = cur.Err()
	}
	err = Classify(err)
	require.Error(t, err, "the server sent its 52 MB in answers under the limit: nothing to classify")
	assert.ErrorIs(t, err, ErrReplyTooLarge)
	assert.NotErrorIs(t, err, ErrUnreachable)
}

// TestProbe checks that Probe turns a request that got no answer within
// the operation timeout into ErrSlow when the server answers a ping, and
// leaves any other error as it is.
func TestProbe(t *testing.T) {
	srv := mongotest.New(t)
	ctx := context.Background()
	unanswered := func(ctx context.Context) error {
		<-ctx.Done()
		return fmt.Errorf("bulk write: %w", ctx.Err())
	}
	timedOut := Ask(ctx, 20*time.Millisecond, unanswered)
	require.ErrorIs(t, timedOut, ErrUnreachable)

	err := Probe(ctx, srv.Client, timedOut)
	require.ErrorIs(t, err, ErrSlow)
	assert.NotErrorIs(t, err, ErrUnreachable)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "the request's own error is in the chain")
	assert.Equal(t, errcode.Cancelled, errcode.Of(err))
	assert.ErrorContains(t, err, "got no answer within 20ms, the operation timeout, while the server answers a ping")
	assert.ErrorContains(t, err, "raise the operation timeout")

	other := fmt.Errorf("insert: %w", ErrUnreachable) // not a request's timeout: a failed connection
	assert.Equal(t, other, Probe(ctx, srv.Client, other))
	assert.NoError(t, Probe(ctx, srv.Client, nil))
}
