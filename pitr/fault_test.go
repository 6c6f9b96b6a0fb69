package pitr_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/pitr"
	"github.com/keepslot/keepslot/restore"
	"github.com/keepslot/keepslot/store"
	"github.com/keepslot/keepslot/store/s3store"
	"github.com/keepslot/keepslot/store/s3store/s3test"
)

// TestGap stops the slicer, overruns the capped oplog, and starts it
// again: the gap is recorded and reported, a target inside it is refused
// with the restorable windows listed, and targets on either side restore.
func TestGap(t *testing.T) {
	e := newEnv(t, store.MemoryRemote(), 40)
	ctx := context.Background()
	e.base(t)
	s := start(t, e.slicerConfig())
	e.writeLogged(t)
	before := target{opts: pitr.RestoreOptions{Timestamp: next(e.newest(t))}, model: e.w.Snapshot(t)}
	s.flush(t)
	s.stop(t)

	// While no slicer runs, more writes than the oplog holds.
	for range 4 {
		e.write(t)
	}
	inside := pitr.RestoreOptions{Timestamp: next(e.newest(t))}
	require.NoError(t, e.Srv.Client.Database("local").RunCommand(ctx, D{{Key: "compact", Value: "oplog.rs"}}).Err(),
		"FerretDB enforces a capped collection's bounds on compact")

	s = start(t, e.slicerConfig())
	e.writeLogged(t)
	first := s.flush(t)
	require.NotEmpty(t, first.Gap, "the slice after the gap records it")
	assert.True(t, first.Prev.Before(first.From))
	st := s.Status()
	require.Len(t, st.Gaps, 1)
	assert.Contains(t, st.Gaps[0].Reason, "rolled over")

	cov, err := pitr.Scan(ctx, e.at)
	require.NoError(t, err)
	require.Len(t, cov.Gaps, 1)
	assert.Equal(t, first.Prev, cov.Gaps[0].From)
	assert.Equal(t, first.From, cov.Gaps[0].Until)
	assert.Empty(t, cov.Gaps[0].Missing)
	require.Len(t, cov.Windows, 1, "no base backup after the gap yet")
	assert.Equal(t, first.Prev, cov.Windows[0].Until)

	_, err = e.restore(t, "in_", inside)
	require.ErrorIs(t, err, pitr.ErrNotCovered)
	assert.Equal(t, errcode.NoBackup, errcode.Of(err))
	assert.Contains(t, err.Error(), "Restorable windows: "+cov.Windows[0].String())
	assert.Contains(t, err.Error(), "rolled over")
	assert.Empty(t, e.contents(t, "in_")[e.colls[0]], "nothing is written")

	_, err = e.restore(t, "before_", before.opts)
	require.NoError(t, err)
	assert.Equal(t, before.model, e.contents(t, "before_"))

	// A base backup after the gap starts a new window.
	st2 := e.base(t)
	e.writeLogged(t)
	after := target{opts: pitr.RestoreOptions{Timestamp: next(e.newest(t))}, model: e.w.Snapshot(t)}
	s.flush(t)
	s.stop(t)
	cov, err = pitr.Scan(ctx, e.at)
	require.NoError(t, err)
	require.Len(t, cov.Windows, 2)
	assert.Equal(t, st2.Oplog.End, cov.Windows[1].From)
	rep, err := e.restore(t, "after_", after.opts)
	require.NoError(t, err)
	assert.Equal(t, st2.Export.Key, rep.Base.Key)
	assert.Equal(t, after.model, e.contents(t, "after_"))
}

// TestBucketDown stops the S3 server while the slicer runs: storing a
// slice fails, the status says why, and once the server is back the
// slicer resumes from the remote without a gap (the oplog still holds the
// writes made meanwhile), which a restore then holds.
func TestBucketDown(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config(srv.NewBucket(t), "")
	cfg.MaxRetries = 1
	remote, err := s3store.NewRemote(cfg)
	require.NoError(t, err)
	e := newEnv(t, remote, 0)
	e.base(t)
	s := start(t, e.slicerConfig())
	e.writeLogged(t)
	s.flush(t)

	srv.Kill()
	e.write(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	_, err = s.Flush(ctx)
	cancel()
	require.Error(t, err, "no slice is stored while the bucket is down")
	assert.ErrorIs(t, err, store.ErrUnreachable)
	st := s.Status()
	assert.Equal(t, errcode.Unreachable, st.Code, st.Error)

	srv.Restart(t)
	e.write(t)
	want := target{opts: pitr.RestoreOptions{Timestamp: next(e.newest(t))}, model: e.w.Snapshot(t)}
	s.flush(t)
	s.stop(t)
	assert.Empty(t, s.Status().Error, "a stored slice clears the failure")

	cov, err := pitr.Scan(context.Background(), e.at)
	require.NoError(t, err)
	assert.Empty(t, cov.Gaps)
	require.Len(t, cov.Windows, 1)
	_, err = e.restore(t, "r_", want.opts)
	require.NoError(t, err)
	assert.Equal(t, want.model, e.contents(t, "r_"))
	assertNoDuplicates(t, e, cov)
}

// TestRestartMidSlice stops the slicer while a slice is open and starts
// another: the open slice's entries are not lost, and none is stored
// twice.
func TestRestartMidSlice(t *testing.T) {
	e := newEnv(t, store.MemoryRemote(), 0)
	e.base(t)
	s := start(t, e.slicerConfig())
	e.writeLogged(t)
	s.flush(t)
	e.write(t)
	e.write(t)
	s.stop(t) // with those writes read, in an open slice

	s = start(t, e.slicerConfig())
	e.write(t)
	want := target{opts: pitr.RestoreOptions{Timestamp: next(e.newest(t))}, model: e.w.Snapshot(t)}
	s.flush(t)
	s.stop(t)
	cov, err := pitr.Scan(context.Background(), e.at)
	require.NoError(t, err)
	assert.Empty(t, cov.Gaps)
	assert.Len(t, cov.Slices, 2)
	assertNoDuplicates(t, e, cov)
	_, err = e.restore(t, "r_", want.opts)
	require.NoError(t, err)
	assert.Equal(t, want.model, e.contents(t, "r_"))
}

// assertNoDuplicates checks that the slices hold each oplog entry of the
// writer's collections once, and every one of them after the first
// slice's start.
func assertNoDuplicates(t *testing.T, e *env, cov *pitr.Coverage) {
	t.Helper()
	seen := map[bson.Timestamp]int{}
	for _, s := range cov.Slices {
		for _, en := range sliceEntries(t, e.at.Remote, s.Key) {
			seen[tsOf(en)]++
		}
	}
	cur, err := e.Srv.Client.Database("local").Collection("oplog.rs").Find(context.Background(),
		D{{Key: "ts", Value: D{{Key: "$gte", Value: cov.Slices[0].From}, {Key: "$lt", Value: cov.Until}}}, {Key: "ns", Value: D{{Key: "$in", Value: e.colls}}}})
	require.NoError(t, err)
	n := 0
	for cur.Next(context.Background()) {
		ts := tsOf(cur.Current)
		assert.Equal(t, 1, seen[ts], "entry %v is in one slice", ts)
		n++
	}
	require.NoError(t, cur.Err())
	assert.Positive(t, n)
	assert.Len(t, seen, n, "the slices hold nothing else")
}

func tsOf(e bson.Raw) bson.Timestamp {
	t, i := e.Lookup("ts").Timestamp()
	return bson.Timestamp{T: t, I: i}
}

// sliceEntries decrypts the slice under key with the password and returns
// its oplog entries, without the trailing record.
func sliceEntries(t *testing.T, remote store.Remote, key string) []bson.Raw {
	t.Helper()
	data := object(t, remote, key)
	r, err := cipher.NewReader(bytes.NewReader(data), int64(len(data)), []byte(testnode.Password), nil)
	require.NoError(t, err)
	plain, err := io.ReadAll(r)
	require.NoError(t, err)
	var out []bson.Raw
	for len(plain) > 0 {
		doc := bson.Raw(plain[:int(uint32(plain[0])|uint32(plain[1])<<8|uint32(plain[2])<<16|uint32(plain[3])<<24)])
		plain = plain[len(doc):]
		if doc.Lookup("op").StringValue() != "n" {
			out = append(out, doc)
		}
	}
	return out
}

// object returns the bytes of the object under key.
func object(t *testing.T, remote store.Remote, key string) []byte {
	t.Helper()
	o, err := remote.Open(context.Background(), key)
	require.NoError(t, err)
	defer o.Close()
	b, err := io.ReadAll(o)
	require.NoError(t, err)
	return b
}

// TestDamagedSlice checks that a restore refuses a slice that was tampered
// with (its bytes, or its metadata) or deleted, naming it, before it
// writes anything; and restores again once it is put back.
func TestDamagedSlice(t *testing.T) {
	remote := store.MemoryRemote()
	e := newEnv(t, remote, 0)
	ctx := context.Background()
	e.base(t)
	s := start(t, e.slicerConfig())
	var slices []pitr.Slice
	for range 3 {
		e.writeLogged(t)
		slices = append(slices, s.flush(t))
	}
	want := target{opts: pitr.RestoreOptions{Timestamp: slices[2].Until}, model: e.w.Snapshot(t)}
	s.stop(t)
	victim := slices[1]
	orig := object(t, remote, victim.Key)
	entry, err := remote.List(ctx, victim.Key)
	require.NoError(t, err)
	require.Len(t, entry, 1)
	put := func(data []byte, meta map[string]string) {
		t.Helper()
		_, err := remote.Put(ctx, victim.Key, bytes.NewReader(data), store.Info{Name: entry[0].Info.Name, Meta: meta})
		require.NoError(t, err)
	}
	refused := func(name string, is error) {
		t.Helper()
		_, err := e.restore(t, "x_", want.opts)
		require.ErrorIs(t, err, is, name)
		assert.Contains(t, err.Error(), victim.Key, "%s: the error names the slice", name)
		assert.Empty(t, testnode.CollectionNames(t, e.Srv, e.Srv.DB("x_app")), "%s: nothing is written", name)
	}

	flipped := bytes.Clone(orig)
	flipped[len(flipped)/2] ^= 1
	put(flipped, entry[0].Info.Meta)
	refused("a flipped byte", pitr.ErrCorruptSlice)
	_, err = e.restore(t, "x_", want.opts)
	assert.ErrorIs(t, err, restore.ErrCorrupt, "a damaged slice is a corrupt backup's error")
	assert.Equal(t, errcode.Corrupt, errcode.Of(err))

	meta := map[string]string{}
	for k, v := range entry[0].Info.Meta {
		meta[k] = v
	}
	meta["entries"] = "1"
	put(orig, meta)
	refused("metadata that the slice's own record contradicts", pitr.ErrCorruptSlice)

	require.NoError(t, remote.Delete(ctx, victim.Key))
	refused("a missing slice", pitr.ErrNotCovered)
	cov, err := pitr.Scan(ctx, e.at)
	require.NoError(t, err)
	require.Len(t, cov.Gaps, 1)
	assert.Equal(t, victim.Key, cov.Gaps[0].Missing)

	put(orig, entry[0].Info.Meta)
	_, err = e.restore(t, "r_", want.opts)
	require.NoError(t, err)
	assert.Equal(t, want.model, e.contents(t, "r_"))

	// The wrong password is the password's error, not a damaged slice's.
	opts := want.opts
	opts.Restore.Conn.Client = e.Srv.Client
	opts.Restore.Logger = slog.New(slog.DiscardHandler)
	_, err = pitr.Restore(ctx, e.at, []byte("wrong"), &opts)
	assert.ErrorIs(t, err, cipher.ErrWrongPassword)
	assert.False(t, errors.Is(err, pitr.ErrCorruptSlice))
}

// TestLateEntry logs entries into an oplog of the test's own after the
// slicer's horizon has passed their timestamps, as a loaded FerretDB may
// (it takes a write's timestamp before it logs it): one logged while its
// slice is open goes into it, in order; one logged after its slice was
// stored is a gap that the status records, not a silent loss.
func TestLateEntry(t *testing.T) {
	e := testnode.New(t)
	ctx := context.Background()
	fake := e.Srv.Client.Database(e.Srv.DB("fake"))
	require.NoError(t, fake.CreateCollection(ctx, "oplog", options.CreateCollection().SetCapped(true).SetSizeInBytes(1<<20)))
	key, err := cipher.NewKey([]byte(testnode.Password), testnode.LowKDF)
	require.NoError(t, err)
	cfg := pitr.Config{Conn: conn.Config{Client: e.Srv.Client}, Filter: e.Filter, Location: pitr.Location{Remote: store.MemoryRemote(), Node: "n"},
		Key: key, Interval: time.Hour, Poll: 20 * time.Millisecond, Settle: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	pitr.SetOplogNamespace(&cfg, fake.Name()+".oplog")
	reads := make(chan bson.Timestamp, 1) // the newest horizon read up to
	pitr.SetAfterRead(&cfg, func(h bson.Timestamp) {
		select {
		case <-reads:
		default:
		}
		reads <- h
	})

	var hello struct {
		LocalTime time.Time `bson:"localTime"`
	}
	require.NoError(t, e.Srv.Client.Database("admin").RunCommand(ctx, D{{Key: "hello", Value: 1}}).Decode(&hello))
	sec := uint32(hello.LocalTime.Unix())
	ns := e.Srv.DB("app") + ".a"
	log := func(i uint32) {
		t.Helper()
		_, err := fake.Collection("oplog").InsertOne(ctx, D{
			{Key: "ts", Value: bson.Timestamp{T: sec, I: i}}, {Key: "t", Value: int64(1)}, {Key: "v", Value: int32(2)},
			{Key: "op", Value: "i"}, {Key: "ns", Value: ns}, {Key: "wall", Value: hello.LocalTime},
			{Key: "o", Value: D{{Key: "_id", Value: int32(i)}}},
		})
		require.NoError(t, err)
	}

	s := start(t, cfg)
	log(2)
	// Until the slicer has read past the whole second of the entries.
	guard := time.After(time.Minute)
	for h := (bson.Timestamp{}); h.T <= sec; {
		select {
		case h = <-reads:
		case <-guard:
			t.Fatal("the slicer's horizon does not pass the entries' second")
		}
	}
	log(3) // late, while its slice is open
	sl := s.flush(t)
	assert.EqualValues(t, 2, sl.Entries, "the slice holds the entry logged late")
	assert.Equal(t, bson.Timestamp{T: sec, I: 2}, sl.First)
	assert.Equal(t, bson.Timestamp{T: sec, I: 3}, sl.Last)
	assert.Empty(t, s.Status().Gaps)

	log(4) // late, after its slice was stored
	s.flush(t)
	st := s.Status()
	require.Len(t, st.Gaps, 1, "an entry no slice holds is a gap")
	assert.Equal(t, bson.Timestamp{T: sec, I: 4}, st.Gaps[0].From)
	assert.Contains(t, st.Gaps[0].Reason, "logged after the slice for its time was stored")
	assert.Empty(t, st.Error)

	// The gap is recorded in the next slice stored, so that it outlives
	// the slicer: an entry of a later second makes one.
	require.NoError(t, e.Srv.Client.Database("admin").RunCommand(ctx, D{{Key: "hello", Value: 1}}).Decode(&hello))
	sec = uint32(hello.LocalTime.Unix()) + 1
	log(1)
	s.flush(t)
	s.stop(t)
	cov, err := pitr.Scan(ctx, cfg.Location)
	require.NoError(t, err)
	require.Len(t, cov.Gaps, 1, "the remote records the gap")
	assert.Equal(t, st.Gaps[0].From, cov.Gaps[0].From)
	var lost []pitr.Gap
	for _, sl := range cov.Slices {
		lost = append(lost, sl.Lost...)
	}
	require.Len(t, lost, 1)
	assert.Equal(t, st.Gaps[0].From, lost[0].From)
}
