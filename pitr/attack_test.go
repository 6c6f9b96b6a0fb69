package pitr_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/oplog"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/pitr"
	"github.com/keepslot/keepslot/store"
	"github.com/keepslot/keepslot/store/s3store"
	"github.com/keepslot/keepslot/store/s3store/s3test"
)

// copyObject copies the object at from to to on remote, metadata and all,
// as anyone who may write the bucket can.
func copyObject(t *testing.T, remote store.Remote, from, to string) {
	t.Helper()
	listed, err := remote.List(context.Background(), from)
	require.NoError(t, err)
	require.Len(t, listed, 1)
	_, err = remote.Put(context.Background(), to, bytes.NewReader(object(t, remote, from)),
		store.Info{Name: to[strings.LastIndex(to, "/")+1:], Meta: listed[0].Info.Meta})
	require.NoError(t, err)
}

// refusedKeys are the keys a restore's report says it refused.
func refusedKeys(rep *pitr.Report) []string {
	var out []string
	if rep != nil {
		for _, r := range rep.Refused {
			out = append(out, r.Key)
		}
	}
	return out
}

// TestForeignObjects has two nodes that share a password export to one
// bucket, and copies node B's newest slice and newest base backup into
// node A's prefix: a restore of A refuses both, naming them, and restores
// A's own writes; without A's own slice it refuses the restore, writing
// nothing, rather than restore B's writes.
func TestForeignObjects(t *testing.T) {
	srv := s3test.Start(t)
	remote, err := s3store.NewRemote(srv.Config(srv.NewBucket(t), ""))
	require.NoError(t, err)
	ctx := context.Background()
	a := newEnv(t, remote, 0)
	b := newEnv(t, remote, 0)
	b.at.Node = "n2"

	b.base(t)
	sb := start(t, b.slicerConfig())
	a.nextSecond(t, b.newest(t)) // the servers count their timestamps apart: a second apart, they order
	aBase := a.base(t)
	sa := start(t, a.slicerConfig())
	a.write(t)
	a1 := sa.flush(t)
	b.write(t)
	b.nextSecond(t, aBase.Oplog.End) // backups are named by their start, to the second: B's is not named as A's
	bBase := b.base(t)
	a.nextSecond(t, bBase.Oplog.End)
	a.write(t)
	want := target{opts: pitr.RestoreOptions{Timestamp: next(a.newest(t))}, model: a.w.Snapshot(t)}
	a2 := sa.flush(t)
	b.nextSecond(t, a.newest(t))
	b.write(t)
	b1 := sb.flush(t)
	sa.stop(t)
	sb.stop(t)
	require.True(t, a2.Until.Before(b1.Until) && b1.From.Before(a1.From), "B's slice spans A's: the plan would take it")

	plantedSlice := "keepslot/n1/oplog/" + b1.Key[strings.LastIndex(b1.Key, "/")+1:]
	copyObject(t, remote, b1.Key, plantedSlice)
	plantedBase := "keepslot/n1/" + bBase.Export.Key[strings.LastIndex(bBase.Export.Key, "/")+1:]
	copyObject(t, remote, bBase.Export.Key, plantedBase)

	rep, err := a.restore(t, "r_", want.opts)
	require.NoError(t, err)
	assert.Equal(t, want.model, a.contents(t, "r_"), "A's writes, not B's")
	assert.ElementsMatch(t, []string{plantedBase, plantedSlice}, refusedKeys(rep))
	for _, r := range rep.Refused {
		assert.Contains(t, r.Error, `"n2"`, "the refusal names the node that wrote it")
	}
	assert.NotEqual(t, plantedBase, rep.Base.Key)
	for _, s := range rep.Slices {
		assert.Equal(t, "n1", s.Node)
	}

	// Without A's last slice, B's would be the only one to reach the
	// target: the restore is refused, naming it, and writes nothing.
	require.NoError(t, remote.Delete(ctx, a2.Key))
	_, err = a.restore(t, "x_", want.opts)
	require.ErrorIs(t, err, pitr.ErrForeign)
	assert.Equal(t, errcode.Corrupt, errcode.Of(err))
	assert.Contains(t, err.Error(), plantedSlice)
	assert.Contains(t, err.Error(), `written by the node "n2"`)
	assert.Empty(t, testnode.CollectionNames(t, a.Srv, a.Srv.DB("x_app")), "nothing is written")
}

// TestUnauthenticatedResume plants, after a node's last slice, an 11-byte
// object whose name and metadata claim the span from there to 90 s in
// the future, and a copy of the last slice renamed to a longer span: a
// restarted slicer ignores both, reports them, and resumes after the
// authentic slice; a restore plans on the authentic slices; and metadata
// whose first and last entries differ from the slice's is refused.
func TestUnauthenticatedResume(t *testing.T) {
	remote := store.MemoryRemote()
	e := newEnv(t, remote, 0)
	ctx := context.Background()
	e.base(t)
	s := start(t, e.slicerConfig())
	e.writeLogged(t)
	s1 := s.flush(t)
	s.stop(t)

	future := bson.Timestamp{T: uint32(time.Now().Add(90 * time.Second).Unix())}
	planted := "keepslot/n1/oplog/" + keyTS(s1.Until) + "-" + keyTS(future) + ".bson"
	_, err := remote.Put(ctx, planted, strings.NewReader("not a slice"), store.Info{Name: planted, Meta: map[string]string{
		"kind": "oplog-slice/1", "from": oplog.FormatTS(s1.Until), "until": oplog.FormatTS(future), "prev": oplog.FormatTS(s1.Until), "entries": "0"}})
	require.NoError(t, err)
	listed, err := remote.List(ctx, s1.Key)
	require.NoError(t, err)
	meta := map[string]string{}
	for k, v := range listed[0].Info.Meta {
		meta[k] = v
	}
	longer := bson.Timestamp{T: s1.Until.T + 30}
	meta["until"] = oplog.FormatTS(longer)
	renamed := "keepslot/n1/oplog/" + keyTS(s1.From) + "-" + keyTS(longer) + ".bson"
	_, err = remote.Put(ctx, renamed, bytes.NewReader(object(t, remote, s1.Key)), store.Info{Name: renamed, Meta: meta})
	require.NoError(t, err)

	s = start(t, e.slicerConfig())
	e.write(t)
	want := target{opts: pitr.RestoreOptions{Timestamp: next(e.newest(t))}, model: e.w.Snapshot(t)}
	s2 := s.flush(t)
	assert.Equal(t, s1.Until, s2.From, "it resumes after the authentic slice")
	assert.NotEmpty(t, s2.Key)
	assert.NotZero(t, s2.Entries, "the writes after the restart are in it")
	assert.Equal(t, s1.Until, s2.Prev)
	st := s.Status()
	assert.Empty(t, st.Error)
	assert.Empty(t, st.Gaps)
	var ignored []string
	for _, i := range st.Ignored {
		ignored = append(ignored, i.Key)
	}
	assert.ElementsMatch(t, []string{planted, renamed}, ignored)
	s.stop(t)

	rep, err := e.restore(t, "r_", want.opts)
	require.NoError(t, err)
	assert.Equal(t, want.model, e.contents(t, "r_"))
	require.Len(t, rep.Slices, 2)
	assert.Equal(t, []string{s1.Key, s2.Key}, []string{rep.Slices[0].Key, rep.Slices[1].Key})
	assert.ElementsMatch(t, []string{planted, renamed}, refusedKeys(rep))

	// Metadata that misstates the slice's first entry.
	listed, err = remote.List(ctx, s2.Key)
	require.NoError(t, err)
	meta = map[string]string{}
	for k, v := range listed[0].Info.Meta {
		meta[k] = v
	}
	meta["first"] = oplog.FormatTS(s2.From)
	require.NotEqual(t, s2.First, s2.From)
	_, err = remote.Put(ctx, s2.Key, bytes.NewReader(object(t, remote, s2.Key)), store.Info{Name: listed[0].Info.Name, Meta: meta})
	require.NoError(t, err)
	_, err = e.restore(t, "x_", want.opts)
	require.ErrorIs(t, err, pitr.ErrCorruptSlice)
	assert.Contains(t, err.Error(), s2.Key)
	assert.Contains(t, err.Error(), "its entries run from "+oplog.FormatTS(s2.First))
	assert.Empty(t, testnode.CollectionNames(t, e.Srv, e.Srv.DB("x_app")), "nothing is written")
}

// TestOversizeEntry writes a document that FerretDB takes though it is
// larger than MongoDB allows: its oplog entry is too large for a restore
// to read, so the slicer records it as a gap, in the status and in the
// next slice, rather than store a slice that every restore refuses. A
// restore up to before it restores; one past it says it is not covered.
func TestOversizeEntry(t *testing.T) {
	e := newEnv(t, store.MemoryRemote(), 0)
	ctx := context.Background()
	e.base(t)
	cfg := e.slicerConfig()
	cfg.MaxSize = 64 << 20
	s := start(t, cfg)
	e.write(t)
	before := target{opts: pitr.RestoreOptions{Timestamp: next(e.newest(t))}, model: e.w.Snapshot(t)}

	big := e.Srv.Client.Database(e.Srv.DB("app")).Collection("a")
	half := strings.Repeat("x", 8_400_000)
	_, err := big.InsertOne(ctx, D{{Key: "_id", Value: "big"}, {Key: "a", Value: half}})
	require.NoError(t, err)
	_, err = big.UpdateOne(ctx, D{{Key: "_id", Value: "big"}}, D{{Key: "$set", Value: D{{Key: "b", Value: half}}}})
	require.NoError(t, err)
	huge := e.newest(t)
	e.write(t)
	after := pitr.RestoreOptions{Timestamp: next(e.newest(t))}
	sl := s.flush(t)
	s.stop(t)

	require.Len(t, sl.Lost, 1, "the slice records the entry it does not hold")
	assert.Equal(t, huge, sl.Lost[0].From)
	st := s.Status()
	require.Len(t, st.Gaps, 1)
	assert.Contains(t, st.Gaps[0].Reason, "more than the 16793600 a restore reads")
	cov, err := pitr.Scan(ctx, e.at)
	require.NoError(t, err)
	require.Len(t, cov.Gaps, 1, "the gap outlives the slicer")
	assert.Equal(t, huge, cov.Gaps[0].From)
	require.Len(t, cov.Windows, 1)
	assert.Equal(t, huge, cov.Windows[0].Until, "the window ends at the lost entry")

	_, err = e.restore(t, "x_", after)
	require.ErrorIs(t, err, pitr.ErrNotCovered)
	assert.Equal(t, errcode.NoBackup, errcode.Of(err))
	assert.Contains(t, err.Error(), oplog.FormatTS(huge))
	assert.Contains(t, err.Error(), "a restore reads")
	assert.Empty(t, testnode.CollectionNames(t, e.Srv, e.Srv.DB("x_app")), "nothing is written")

	_, err = e.restore(t, "r_", before.opts)
	require.NoError(t, err)
	assert.Equal(t, before.model, e.contents(t, "r_"))
}

// keyTS formats ts as a slice's key does.
func keyTS(ts bson.Timestamp) string { return fmt.Sprintf("%010d.%010d", ts.T, ts.I) }

// TestServerFrozen freezes the server while the slicer reads the oplog:
// once its OperationTimeout passes, the status and a flush say the server
// is unreachable, and once it answers again the slicer goes on.
func TestServerFrozen(t *testing.T) {
	e := newEnv(t, store.MemoryRemote(), 0)
	if !e.Srv.Embedded {
		t.Skip("needs the embedded server, which a test can freeze") // covered by the embedded default in CI
	}
	e.base(t)
	cfg := e.slicerConfig()
	cfg.Conn.OperationTimeout = 2 * time.Second
	s := start(t, cfg)
	e.writeLogged(t)
	s.flush(t)

	freeze, thaw := e.Srv.Freezer(t)
	defer thaw()
	freeze()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // far past OperationTimeout
	_, err := s.Flush(ctx)
	cancel()
	require.Error(t, err)
	assert.Equal(t, errcode.Unreachable, errcode.Of(err), err.Error())
	assert.Contains(t, err.Error(), "did not answer within 2s")
	assert.True(t, strings.HasPrefix(err.Error(), "pitr: "), "the slicer's failure names the package: %v", err)
	st := s.Status()
	assert.Equal(t, errcode.Unreachable, st.Code)
	assert.Contains(t, st.Error, "did not answer within 2s")
	assert.True(t, strings.HasPrefix(st.Error, "pitr: "), st.Error)

	thaw()
	e.write(t)
	want := target{opts: pitr.RestoreOptions{Timestamp: next(e.newest(t))}, model: e.w.Snapshot(t)}
	s.flush(t)
	s.stop(t)
	assert.Empty(t, s.Status().Error, "a stored slice clears the failure")
	_, err = e.restore(t, "r_", want.opts)
	require.NoError(t, err)
	assert.Equal(t, want.model, e.contents(t, "r_"))
}
