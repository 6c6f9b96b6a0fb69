package slot_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// noiseSource emits documents of incompressible bytes, so that the cipher
// and the store have full chunks in flight, and then fails, or blocks until
// the backup is cancelled, as the test says.
type noiseSource struct {
	docs    int           // documents emitted per collection before failing or blocking
	fail    error         // returned after docs documents; nil: block until ctx ends
	running chan struct{} // receives once per backup, when docs have been emitted
}

var errSourceFailed = errors.New("the source broke (injected)")

func (s *noiseSource) Plan(context.Context) (slot.Plan, error) {
	return slot.Plan{Collections: []archive.Collection{{DB: "leak", Name: "noise", Type: "collection"}}}, nil
}

func (s *noiseSource) Documents(ctx context.Context, _ archive.Collection, emit func([]byte) error) error {
	noise := make([]byte, 1024)
	for range s.docs {
		_, _ = rand.Read(noise)
		doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "noise", Value: bson.Binary{Data: noise}}})
		if err := emit(doc); err != nil {
			return err
		}
	}
	if s.running != nil {
		s.running <- struct{}{}
	}
	if s.fail != nil {
		return s.fail
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestFailedBackupsLeakNothing runs 20 backups that fail or are cancelled
// midway and checks that goroutines and the live heap come back to what
// they were: a long-running agent must not grow with every failed backup.
func TestFailedBackupsLeakNothing(t *testing.T) {
	ctx := context.Background()
	src := &noiseSource{docs: 4000, running: make(chan struct{}, 1)}
	s, err := slot.New(src, slot.Config{
		Store: store.Memory(), StateDir: t.TempDir(), KDF: testnode.LowKDF, Spill: archive.Spill{Dir: t.TempDir(), Threshold: 1 << 20},
		Compression: archive.NoCompression{}, Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Role().Set())

	run := func(fail error) {
		t.Helper()
		src.fail = fail
		require.NoError(t, s.Start(ctx, []byte(testnode.Password)))
		<-src.running
		if fail == nil {
			require.NoError(t, s.Cancel(ctx))
		}
		st, err := s.Wait(ctx)
		require.NoError(t, err)
		require.Equal(t, slot.StateFailed, st.State)
	}

	run(errSourceFailed) // warm up pools and the runtime before the baseline
	goroutines, heap := settle(t, 0)
	for i := range 20 {
		if i%2 == 0 {
			run(errSourceFailed)
		} else {
			run(nil)
		}
	}
	afterG, afterHeap := settle(t, goroutines)
	require.LessOrEqual(t, afterG, goroutines, "goroutines left behind by failed backups")
	// A leaked writer holds about 2 MiB of chunks: 20 of them would be 40 MiB.
	require.Less(t, afterHeap, heap+8<<20, "heap grew from %d to %d bytes over 20 failed backups", heap, afterHeap)
}

// settle collects garbage and returns the goroutine count and live heap,
// giving goroutines that have finished their work (up to a few seconds) to
// exit, until the count is at most want (want 0: one reading).
func settle(t *testing.T, want int) (int, uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		n := runtime.NumGoroutine()
		if want == 0 || n <= want || time.Now().After(deadline) {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return n, ms.HeapAlloc
		}
		runtime.Gosched()
	}
}
