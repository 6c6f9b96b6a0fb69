package mongodb

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"

	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/internal/testkit/mongotest"
)

// TestAsk checks what Ask returns for a request that is answered, that
// fails, that gets no answer, and that the caller cancels. No server is
// needed: a request that gets no answer is one that waits for its context.
func TestAsk(t *testing.T) {
	unanswered := func(ctx context.Context) error {
		<-ctx.Done()
		return fmt.Errorf("read: %w", ctx.Err())
	}
	require.NoError(t, Ask(context.Background(), time.Millisecond, func(context.Context) error { return nil }))

	refused := mongo.CommandError{Code: 26, Name: "NamespaceNotFound"}
	err := Ask(context.Background(), time.Millisecond, func(context.Context) error { return refused })
	assert.Equal(t, refused, err, "a failure of the server's is left as it is")

	guard, stop := context.WithTimeout(context.Background(), 30*time.Second) // ends the test if Ask sets no deadline
	defer stop()
	err = Ask(guard, 10*time.Millisecond, unanswered)
	require.ErrorIs(t, err, ErrUnreachable)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "the request's own error is in the chain")
	assert.ErrorContains(t, err, "did not answer within 10ms")
	assert.ErrorContains(t, err, "raise it for a server that is only slow")

	// A timeout of the driver's own before the deadline: no server
	// answers, but not for d.
	early := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	err = Ask(context.Background(), time.Hour, func(context.Context) error { return early })
	require.ErrorIs(t, err, ErrUnreachable)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.NotContains(t, err.Error(), "did not answer within", "it was not the operation timeout")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = Ask(ctx, time.Hour, unanswered)
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, ErrUnreachable, "the caller's cancellation is not the server's silence")

	// The caller's deadline passed, and the request's socket saw it before
	// the caller's context did: the caller's own, too.
	err = Ask(staleDeadline{context.Background()}, time.Hour, func(context.Context) error { return early })
	assert.Equal(t, early, err)

	assert.Equal(t, conn.DefaultOperationTimeout, OperationTimeout(0))
	assert.Equal(t, time.Second, OperationTimeout(time.Second))
}

// staleDeadline is a context whose deadline has passed but which does not
// report it yet, as a context's timer may lag a socket's deadline.
type staleDeadline struct{ context.Context }

func (staleDeadline) Deadline() (time.Time, bool) { return time.Now().Add(-time.Second), true }

// TestClassifyLeavesClassified checks that an error classified already,
// such as Ask's, is not wrapped again: neither in the other sentinel nor
// in the same one twice.
func TestClassifyLeavesClassified(t *testing.T) {
	unanswered := noAnswer(time.Second, context.DeadlineExceeded)
	err := Classify(fmt.Errorf("read app.a: %w", unanswered))
	assert.ErrorIs(t, err, ErrUnreachable)
	assert.Equal(t, 1, strings.Count(err.Error(), ErrUnreachable.Error()), err.Error())

	refused := Classify(driver.Error{Code: 18, Message: "Authentication failed."})
	err = Classify(fmt.Errorf("merge users and roles: %w", refused))
	assert.ErrorIs(t, err, ErrUnauthorized)
	assert.NotErrorIs(t, err, ErrUnreachable)
}

// TestAskLong runs a request longer than the timeout, as an index build
// may be, which goes on while the server answers pings, and then one that
// the server, frozen, stops answering, which fails with ErrUnreachable.
func TestAskLong(t *testing.T) {
	srv := mongotest.New(t)
	if !srv.Embedded {
		t.Skip("needs the embedded server, which a test can freeze") // covered by the embedded default in CI
	}
	pings := make(chan struct{}, 1)
	monitor := &event.CommandMonitor{Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
		if e.CommandName == "ping" {
			select {
			case pings <- struct{}{}:
			default:
			}
		}
	}}
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI).SetMonitor(monitor))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	const timeout = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a guard
	defer cancel()

	err = AskLong(ctx, client, timeout, func(ctx context.Context) error {
		for range 2 { // answered pings, one per timeout: the request outlives two
			select {
			case <-pings:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	require.NoError(t, err, "a request that outlives the timeout goes on while the server answers")

	freeze, _ := srv.Freezer(t)
	freeze()
	err = AskLong(ctx, client, timeout, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	assert.ErrorIs(t, err, ErrUnreachable)
	assert.ErrorContains(t, err, "did not answer within 2s")
	assert.NoError(t, ctx.Err(), "the guard did not expire")
}
