package backup_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/restore"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

func TestFullCycle(t *testing.T) {
	e := testnode.New(t)
	want := e.Seed(60)
	ctx := context.Background()

	var progress []archive.Progress
	var mu sync.Mutex
	cfg := e.Config()
	cfg.Progress = func(p archive.Progress) { mu.Lock(); progress = append(progress, p); mu.Unlock() }
	b := e.Backupper(cfg)
	require.NoError(t, b.Role().Set())

	st, err := b.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, slot.StateNone, st.State)
	assert.JSONEq(t, `{"message":"No backup found"}`, string(st.ApplianceJSON()))

	require.NoError(t, b.Start(ctx, []byte(testnode.Password)))
	st = testnode.Wait(t, b)
	require.Equal(t, slot.StateReady, st.State, st.Error)
	assert.Regexp(t, regexp.MustCompile(`^backup-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ\.tar\.gz$`), st.Name)
	assert.Len(t, st.MD5, 32)
	assert.Len(t, st.SHA256, 64)
	assert.False(t, st.Started.IsZero())
	assert.False(t, st.Finished.Before(st.Started))
	var appliance struct {
		Message   string            `json:"message"`
		Arguments map[string]string `json:"arguments"`
	}
	require.NoError(t, json.Unmarshal(st.ApplianceJSON(), &appliance))
	assert.Equal(t, "Backup found", appliance.Message)
	assert.Equal(t, map[string]string{"name": st.Name, "md5": st.MD5}, appliance.Arguments)

	mu.Lock()
	require.NotEmpty(t, progress)
	last := progress[len(progress)-1]
	mu.Unlock()
	assert.Equal(t, 4, last.NamespacesTotal)
	assert.Equal(t, 4, last.NamespacesDone)
	assert.EqualValues(t, 180, last.Documents)

	// Retrieve to a file, as backup-retrieve does, and check the md5.
	path, info := testnode.RetrieveTo(t, b, t.TempDir(), "backup-retrieve.tar.gz.enc")
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	sum := md5.Sum(raw)
	assert.Equal(t, st.MD5, hex.EncodeToString(sum[:]))
	assert.Equal(t, info.Size, int64(len(raw)))

	// Resume from an offset, as a ranged download does: the tail matches.
	obj, err := b.Open(ctx)
	require.NoError(t, err)
	tail, err := io.ReadAll(io.NewSectionReader(obj, 100, obj.Info().Size-100))
	require.NoError(t, err)
	require.NoError(t, obj.Close())
	assert.Equal(t, raw[100:], tail)

	// Restore into renamed namespaces and compare every document.
	file, err := os.Open(path)
	require.NoError(t, err)
	defer file.Close()
	rep, err := restore.Run(ctx, file, info.Size, []byte(testnode.Password), &restore.Options{
		Conn:    conn.Config{Client: e.Srv.Client},
		Renames: []namespace.Rename{{From: e.Srv.Prefix + "*.*", To: e.Srv.Prefix + "r_*.*"}},
	})
	require.NoError(t, err)
	assert.EqualValues(t, 180, rep.Documents)
	assert.Equal(t, 3, rep.Indexes)
	require.Len(t, rep.Namespaces, 4)
	for ns, docs := range want {
		to := strings.Replace(ns, e.Srv.Prefix, e.Srv.Prefix+"r_", 1)
		db, coll, _ := strings.Cut(to, ".")
		cur, err := e.Srv.Client.Database(db).Collection(coll).Find(ctx, bson.D{})
		require.NoError(t, err)
		var got []bson.D
		require.NoError(t, cur.All(ctx, &got))
		assert.ElementsMatch(t, testnode.Canonical(t, docs), testnode.Canonical(t, got), ns)
	}
	names := indexNames(t, e, e.Srv.DB("r_app"), "users")
	assert.ElementsMatch(t, []string{"_id_", "email_1", "age_-1_score_1"}, names)
	assert.ElementsMatch(t, []string{"_id_", "sku_1"}, indexNames(t, e, e.Srv.DB("r_shop"), "orders"))

	require.NoError(t, b.Delete(ctx))
	st, err = b.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, slot.StateNone, st.State)
	assert.ErrorIs(t, b.Delete(ctx), store.ErrEmpty)
	_, err = b.Retrieve(ctx, io.Discard)
	assert.ErrorIs(t, err, store.ErrEmpty)

	assert.NotContains(t, e.Logs.String(), testnode.Password)
}

func indexNames(t *testing.T, e *testnode.Env, db, coll string) []string {
	cur, err := e.Srv.Client.Database(db).Collection(coll).Indexes().List(context.Background())
	require.NoError(t, err)
	var idx []struct {
		Name string `bson:"name"`
	}
	require.NoError(t, cur.All(context.Background(), &idx))
	var names []string
	for _, ix := range idx {
		names = append(names, ix.Name)
	}
	return names
}

func TestStartRefusals(t *testing.T) {
	e := testnode.New(t)
	e.Seed(5)
	ctx := context.Background()
	b := e.Backupper(e.Config())

	// The order of the checks: password before role.
	assert.ErrorIs(t, b.Start(ctx, nil), cipher.ErrEmptyPassword)
	err := b.Start(ctx, []byte(testnode.Password))
	require.ErrorIs(t, err, slot.ErrNotBackupNode)
	assert.Contains(t, err.Error(), "set-as-backup")

	require.NoError(t, b.Role().Set())
	ok, err := b.Role().IsBackup()
	require.NoError(t, err)
	assert.True(t, ok)

	require.NoError(t, b.Start(ctx, []byte(testnode.Password)))
	require.Equal(t, slot.StateReady, testnode.Wait(t, b).State)
	err = b.Start(ctx, []byte(testnode.Password))
	require.ErrorIs(t, err, store.ErrSlotOccupied)
	assert.Contains(t, err.Error(), "delete it first")

	require.NoError(t, b.Role().Unset())
	assert.ErrorIs(t, b.Start(ctx, []byte(testnode.Password)), slot.ErrNotBackupNode)
}

func TestStartInsufficientSpace(t *testing.T) {
	e := testnode.New(t)
	e.Seed(20)
	cfg := e.Config()
	cfg.Store = spaceStore{Store: store.Memory(), free: 10}
	b := e.Backupper(cfg)
	require.NoError(t, b.Role().Set())

	err := b.Start(context.Background(), []byte(testnode.Password))
	require.ErrorIs(t, err, slot.ErrInsufficientSpace)
	var se *slot.SpaceError
	require.ErrorAs(t, err, &se)
	assert.EqualValues(t, 10, se.Free)
	assert.Equal(t, 2*se.Data, se.Need)
	assert.Positive(t, se.Data)
	assert.Contains(t, err.Error(), "10 B")

	// Nothing was left behind: the slot is free and nothing runs.
	st, err := b.Status(context.Background())
	require.NoError(t, err)
	assert.Equal(t, slot.StateNone, st.State)
}

// The data size that the free-disk rule doubles is at least the size of the
// documents: dbStats' dataSize on MongoDB, listDatabases' sizeOnDisk on
// FerretDB (whose dbStats counts every document).
func TestPlanDataSizeCoversDocuments(t *testing.T) {
	e := testnode.New(t)
	var bsonBytes int64
	for _, docs := range e.Seed(200) {
		for _, d := range docs {
			b, err := bson.Marshal(d)
			require.NoError(t, err)
			bsonBytes += int64(len(b))
		}
	}
	src := &backup.Source{Conn: conn.Config{Client: e.Srv.Client}, Filter: e.Filter}
	p, err := src.Plan(context.Background())
	require.NoError(t, err)
	assert.GreaterOrEqual(t, p.DataSize, bsonBytes)
	assert.Len(t, p.Collections, 4)
}

// The free-disk rule holds through wrappers that implement Unwrap.
func TestStartInsufficientSpaceWrapped(t *testing.T) {
	e := testnode.New(t)
	e.Seed(20)
	cfg := e.Config()
	cfg.Store = wrapStore{wrapStore{spaceStore{Store: store.Memory(), free: 10}}}
	b := e.Backupper(cfg)
	require.NoError(t, b.Role().Set())

	err := b.Start(context.Background(), []byte(testnode.Password))
	require.ErrorIs(t, err, slot.ErrInsufficientSpace)
	var se *slot.SpaceError
	require.ErrorAs(t, err, &se)
	assert.EqualValues(t, 10, se.Free)
}

func TestStartUnreachable(t *testing.T) {
	e := testnode.New(t)
	if !e.Srv.Embedded {
		t.Skip("needs the embedded server, which a test can stop") // covered by the embedded default in CI
	}
	b := e.Backupper(e.Config())
	require.NoError(t, b.Role().Set())
	e.Srv.Stop()
	ctx := context.Background()
	err := b.Start(ctx, []byte(testnode.Password))
	require.ErrorIs(t, err, backup.ErrUnreachable)
	assert.Equal(t, errcode.Unreachable, errcode.Of(err))
	assert.True(t, strings.HasPrefix(err.Error(), "slot: plan the backup: backup: ping the server: the MongoDB server cannot be reached"),
		"slot's words, then backup's, then the sentinel: %v", err)
	var se mongo.ServerError
	var ne net.Error
	assert.True(t, errors.As(err, &se) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded),
		"the driver's error stays in the chain: %v", err)
	st, err := b.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, slot.StateNone, st.State)
}

func TestConcurrentStartsGiveOneBackup(t *testing.T) {
	e := testnode.New(t)
	e.Seed(10)
	b := e.Backupper(e.Config())
	require.NoError(t, b.Role().Set())

	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.Start(context.Background(), []byte(testnode.Password))
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
			continue
		}
		assert.True(t, errors.Is(err, slot.ErrInProgress) || errors.Is(err, store.ErrSlotOccupied), err)
	}
	assert.Equal(t, 1, wins)
	assert.Equal(t, slot.StateReady, testnode.Wait(t, b).State)
}

func TestStoreFailsMidway(t *testing.T) {
	e := testnode.New(t)
	e.Seed(200)
	cfg := e.Config()
	faulty := &faultStore{Store: e.Store, failAt: 2048}
	cfg.Store = faulty
	b := e.Backupper(cfg)
	require.NoError(t, b.Role().Set())
	ctx := context.Background()

	require.NoError(t, b.Start(ctx, []byte(testnode.Password)))
	st := testnode.Wait(t, b)
	require.Equal(t, slot.StateFailed, st.State)
	assert.Contains(t, st.Error, "no space left on device")
	assert.Equal(t, errcode.Internal, st.Code)
	assert.Contains(t, st.Message(), "Backup failed: ")
	_, err := e.Store.Stat(ctx)
	assert.ErrorIs(t, err, store.ErrEmpty)
	assertNoStrayFiles(t, cfg.Spill.Dir)

	faulty.failAt = 0
	require.NoError(t, b.Start(ctx, []byte(testnode.Password)))
	assert.Equal(t, slot.StateReady, testnode.Wait(t, b).State)
}

func TestServerStopsMidway(t *testing.T) {
	e := testnode.New(t)
	if !e.Srv.Embedded {
		t.Skip("needs the embedded server, which a test can stop") // covered by the embedded default in CI
	}
	e.Seed(50)
	cfg := e.Config()
	cfg.Parallel = 1
	var once sync.Once
	cfg.Progress = func(p archive.Progress) {
		if p.NamespacesDone >= 1 {
			once.Do(e.Srv.Stop) // one collection written, three to go
		}
	}
	b := e.Backupper(cfg)
	require.NoError(t, b.Role().Set())
	ctx := context.Background()

	require.NoError(t, b.Start(ctx, []byte(testnode.Password)))
	st := testnode.Wait(t, b)
	require.Equal(t, slot.StateFailed, st.State)
	assert.NotEmpty(t, st.Error)
	_, err := e.Store.Stat(ctx)
	assert.ErrorIs(t, err, store.ErrEmpty)
	assertNoStrayFiles(t, cfg.Spill.Dir)
}

// heldBackup starts a backup whose first write to the slot blocks until
// the backup is cancelled, and returns once it blocks.
func heldBackup(t *testing.T, e *testnode.Env) (*slot.Slot, *faultStore) {
	t.Helper()
	e.Seed(20)
	cfg := e.Config()
	held := &faultStore{Store: e.Store, hold: make(chan struct{})}
	cfg.Store = held
	b := e.Backupper(cfg)
	require.NoError(t, b.Role().Set())
	require.NoError(t, b.Start(context.Background(), []byte(testnode.Password)))
	<-held.hold // the backup is writing
	return b, held
}

func TestCancel(t *testing.T) {
	e := testnode.New(t)
	b, held := heldBackup(t, e)
	ctx := context.Background()
	st, err := b.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, slot.StateInProgress, st.State)
	assert.JSONEq(t, `{"message":"Backup in progress"}`, string(st.ApplianceJSON()))
	assert.ErrorIs(t, b.Start(ctx, []byte(testnode.Password)), slot.ErrInProgress)
	assert.ErrorIs(t, b.Delete(ctx), slot.ErrInProgress)

	require.NoError(t, b.Cancel(ctx))
	st, err = b.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, slot.StateFailed, st.State)
	assert.Contains(t, st.Error, "cancelled")
	assert.Equal(t, errcode.Cancelled, st.Code)
	_, err = e.Store.Stat(ctx)
	assert.ErrorIs(t, err, store.ErrEmpty)

	held.hold = nil
	require.NoError(t, b.Start(ctx, []byte(testnode.Password)))
	assert.Equal(t, slot.StateReady, testnode.Wait(t, b).State)
}

func TestRestartReportsInterrupted(t *testing.T) {
	e := testnode.New(t)
	first, _ := heldBackup(t, e)
	ctx := context.Background()

	// A new process over the same state: the running backup was interrupted.
	cfg2 := e.Config()
	second := e.Backupper(cfg2)
	st, err := second.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, slot.StateFailed, st.State)
	assert.Contains(t, st.Error, "interrupted")
	assert.Equal(t, errcode.Interrupted, st.Code)
	assert.Contains(t, st.Message(), "Backup failed: slot: interrupted")

	require.NoError(t, first.Cancel(ctx)) // the old "process" goes away
	require.NoError(t, second.Start(ctx, []byte(testnode.Password)))
	st = testnode.Wait(t, second)
	assert.Equal(t, slot.StateReady, st.State)

	// And a third one finds the stored backup.
	third := e.Backupper(e.Config())
	st3, err := third.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, slot.StateReady, st3.State)
	assert.Equal(t, st.MD5, st3.MD5)
}

func TestPasswordNeverLeaks(t *testing.T) {
	e := testnode.New(t)
	e.Seed(10)
	b := e.Backupper(e.Config())
	require.NoError(t, b.Role().Set())
	ctx := context.Background()
	require.NoError(t, b.Start(ctx, []byte(testnode.Password)))
	st := testnode.Wait(t, b)
	require.Equal(t, slot.StateReady, st.State)

	statusJSON, err := json.Marshal(st)
	require.NoError(t, err)
	errs := []error{b.Start(ctx, []byte(testnode.Password))}
	path, info := testnode.RetrieveTo(t, b, t.TempDir(), "b.enc")
	file, err := os.Open(path)
	require.NoError(t, err)
	defer file.Close()
	_, err = restore.Run(ctx, file, info.Size, []byte("not "+testnode.Password), &restore.Options{Conn: conn.Config{Client: e.Srv.Client}})
	require.ErrorIs(t, err, cipher.ErrWrongPassword)
	errs = append(errs, err)

	for _, s := range append([]string{e.Logs.String(), string(statusJSON)}, errStrings(errs)...) {
		assert.NotContains(t, s, testnode.Password)
		assert.NotContains(t, s, "battery")
	}
}

func errStrings(errs []error) []string {
	var out []string
	for _, err := range errs {
		if err != nil {
			out = append(out, err.Error())
		}
	}
	return out
}

func assertNoStrayFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "temp dir %s", dir)
}
