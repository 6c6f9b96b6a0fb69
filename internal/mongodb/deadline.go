package mongodb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/keepslot/keepslot/conn"
)

// Every request that backup and restore make to the server goes through
// Ask, Next, CloseCursor or AskLong, so that none waits forever on a server
// that stopped answering: the driver has no socket timeout, and a server
// that keeps its connections open but answers nothing (frozen, or stuck
// inside, as FerretDB v1 can be on its SQLite pool) would hold a request
// without a deadline for good.

// OperationTimeout returns d, or conn.DefaultOperationTimeout when d is not
// positive.
func OperationTimeout(d time.Duration) time.Duration {
	if d <= 0 {
		return conn.DefaultOperationTimeout
	}
	return d
}

// Ask makes one request, op, giving the server d (0:
// conn.DefaultOperationTimeout) to answer it. When it does not, the error wraps
// ErrUnreachable and says so, with the driver's error in the chain; an
// error of ctx itself (the caller's cancellation or deadline) is returned
// as op gave it.
func Ask(ctx context.Context, d time.Duration, op func(context.Context) error) error {
	d = OperationTimeout(d)
	octx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	err := op(octx)
	if err == nil || ctx.Err() != nil || past(ctx) {
		return err
	}
	if IsReplyTooLarge(err) {
		return Classify(err)
	}
	// The driver's socket deadline is octx's, and may pass a moment before
	// octx reports it.
	if octx.Err() != nil || mongo.IsTimeout(err) && past(octx) {
		return noAnswer(d, err)
	}
	if mongo.IsTimeout(err) { // the driver's own, sooner: server selection's, a closed pool's
		return Classify(err)
	}
	return err
}

// past reports whether ctx has a deadline that has passed.
func past(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// noAnswer is the error of a request the server did not answer within d.
func noAnswer(d time.Duration, err error) error { return &noAnswerError{d: d, err: err} }

// noAnswerError is ErrUnreachable for a request that got no answer within
// d, the operation timeout; err is the request's own error.
type noAnswerError struct {
	d   time.Duration
	err error
}

func (e *noAnswerError) Error() string {
	return fmt.Sprintf("%v: the server did not answer within %s (the operation timeout; raise it for a server that is only slow): %v", ErrUnreachable, e.d, e.err)
}

func (e *noAnswerError) Unwrap() []error { return []error{ErrUnreachable, e.err} }

// Probe tells apart, for an error of Ask of a request that got no answer
// within the operation timeout, a server that is down from one that is
// only slow: it pings the server, giving it the same time to answer. When
// it answers, the error wraps ErrSlow instead of ErrUnreachable, with the
// request's own error in the chain. Any other error is returned as it is.
func Probe(ctx context.Context, client *mongo.Client, err error) error {
	var na *noAnswerError
	if !errors.As(err, &na) || ctx.Err() != nil {
		return err
	}
	if Ask(ctx, na.d, func(ctx context.Context) error { return client.Ping(ctx, readpref.Primary()) }) != nil {
		return err
	}
	return fmt.Errorf("%w: one request got no answer within %s, the operation timeout, while the server answers a ping: %w", ErrSlow, na.d, na.err)
}

// Next advances cur as cur.Next does, giving the server d to answer when
// the cursor needs another batch from it; false and a nil error is the
// cursor's end.
func Next(ctx context.Context, d time.Duration, cur *mongo.Cursor) (bool, error) {
	if cur.RemainingBatchLength() > 0 {
		return cur.Next(ctx), nil // from the batch in hand, without a request
	}
	var ok bool
	err := Ask(ctx, d, func(ctx context.Context) error {
		ok = cur.Next(ctx)
		return cur.Err()
	})
	return ok, err
}

// CloseCursor closes cur, giving the server d to answer, even once ctx is
// done. After a batch that got no answer it does not wait for one to the
// close either: it frees the cursor's resources in the driver and leaves
// the idle cursor to the server to end.
func CloseCursor(ctx context.Context, d time.Duration, cur *mongo.Cursor) {
	if err := cur.Err(); err != nil && (errors.Is(err, context.DeadlineExceeded) || mongo.IsTimeout(err)) {
		done, cancel := context.WithCancel(context.Background())
		cancel()
		_ = cur.Close(done)
		return
	}
	_ = Ask(context.WithoutCancel(ctx), d, cur.Close)
}

// AskLong makes a request, op, that may take longer than d, such as an
// index build: it runs as long as the server answers a ping within d every
// d (0: conn.DefaultOperationTimeout). When one gets no answer, op is cancelled
// and the error wraps ErrUnreachable.
func AskLong(ctx context.Context, client *mongo.Client, d time.Duration, op func(context.Context) error) error {
	d = OperationTimeout(d)
	octx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(d)
		defer tick.Stop()
		for {
			select {
			case <-octx.Done():
				return
			case <-tick.C:
			}
			err := Ask(octx, d, func(ctx context.Context) error { return client.Ping(ctx, readpref.Primary()) })
			if errors.Is(err, ErrUnreachable) {
				cancel(err)
				return
			}
		}
	}()
	err := op(octx)
	cause := context.Cause(octx)
	cancel(nil) // ends the pings
	wg.Wait()
	if err != nil && ctx.Err() == nil && errors.Is(cause, ErrUnreachable) {
		return fmt.Errorf("%w (%w)", cause, err)
	}
	return err
}
