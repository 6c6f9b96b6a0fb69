package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/internal/mongotest"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// lowKDF keeps scrypt cheap in tests.
var lowKDF = &cipher.Options{LogN: 10}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one test's node: a server, a slot, a state dir and a log.
type env struct {
	t      *testing.T
	srv    *mongotest.Server
	store  store.Store
	state  string
	logs   *syncBuffer
	filter namespace.Filter
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := mongotest.New(t)
	dir, err := store.Dir(t.TempDir())
	require.NoError(t, err)
	return &env{t: t, srv: srv, store: dir, state: t.TempDir(), logs: &syncBuffer{},
		filter: namespace.Filter{Include: []string{srv.Prefix + "*"}}}
}

// config is a test's backup: what of the node to back up and the slot's
// settings; change fields before backupper.
type config struct {
	slot.Config
	Filter               namespace.Filter
	Oplog, UsersAndRoles slot.Toggle
}

func (e *env) config() config {
	return config{
		Filter: e.filter,
		Config: slot.Config{
			Store:    e.store,
			StateDir: e.state,
			KDF:      lowKDF,
			TempDir:  e.t.TempDir(),
			Logger:   slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		},
	}
}

// source is the node's Source as cfg says.
func (e *env) source(cfg config) *backup.Source {
	return &backup.Source{Client: e.srv.Client, Filter: cfg.Filter, Oplog: cfg.Oplog, UsersAndRoles: cfg.UsersAndRoles}
}

func (e *env) backupper(cfg config) *slot.Slot {
	e.t.Helper()
	b, err := backup.New(e.source(cfg), cfg.Config)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = b.Close() })
	return b
}

// seed fills the test's databases: app.users (indexes, many types),
// app.events (capped-free options), shop.orders, and an empty collection.
// It returns every document by namespace.
func (e *env) seed(docsPerColl int) map[string][]bson.D {
	e.t.Helper()
	ctx := context.Background()
	c := e.srv.Client
	all := map[string][]bson.D{}
	insert := func(db, coll string, docs []bson.D) {
		if len(docs) > 0 {
			_, err := c.Database(e.srv.DB(db)).Collection(coll).InsertMany(ctx, docs)
			require.NoError(e.t, err)
		}
		all[e.srv.DB(db)+"."+coll] = docs
	}
	var users, events, orders []bson.D
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range docsPerColl {
		users = append(users, bson.D{
			{Key: "_id", Value: bson.NewObjectID()},
			{Key: "email", Value: fmt.Sprintf("user%05d@example.com", i)},
			{Key: "age", Value: int32(20 + i%50)},
			{Key: "score", Value: float64(i) / 3},
			{Key: "big", Value: int64(i) << 33},
			{Key: "joined", Value: bson.NewDateTimeFromTime(base.Add(time.Duration(i) * time.Hour))},
			{Key: "active", Value: i%2 == 0},
			{Key: "avatar", Value: bson.Binary{Subtype: 0, Data: []byte{byte(i), 1, 2, 3}}},
			{Key: "tags", Value: bson.A{"a", fmt.Sprint(i), bson.D{{Key: "k", Value: bson.A{int32(i)}}}}},
			{Key: "address", Value: bson.D{{Key: "city", Value: "Oslo"}, {Key: "zip", Value: fmt.Sprintf("%04d", i)}}},
			{Key: "note", Value: nil},
		})
		events = append(events, bson.D{{Key: "_id", Value: int64(i)}, {Key: "kind", Value: "login"}, {Key: "at", Value: bson.NewDateTimeFromTime(base)}})
		orders = append(orders, bson.D{{Key: "_id", Value: fmt.Sprintf("o-%d", i)}, {Key: "sku", Value: fmt.Sprintf("sku-%d", i%7)}, {Key: "qty", Value: int32(i % 5)}})
	}
	insert("app", "users", users)
	insert("app", "events", events)
	insert("shop", "orders", orders)
	require.NoError(e.t, c.Database(e.srv.DB("shop")).CreateCollection(ctx, "empty"))
	all[e.srv.DB("shop")+".empty"] = nil

	_, err := c.Database(e.srv.DB("app")).Collection("users").Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetName("email_1").SetUnique(true)},
		{Keys: bson.D{{Key: "age", Value: -1}, {Key: "score", Value: 1}}, Options: options.Index().SetName("age_-1_score_1")},
	})
	require.NoError(e.t, err)
	_, err = c.Database(e.srv.DB("shop")).Collection("orders").Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "sku", Value: 1}}, Options: options.Index().SetName("sku_1"),
	})
	require.NoError(e.t, err)
	return all
}

// wait waits for the running backup to end and returns its status.
func wait(t *testing.T, b *slot.Slot) slot.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := b.Wait(ctx)
	require.NoError(t, err)
	return st
}

// faultStore wraps a store so a test can fail or hold its writes.
type faultStore struct {
	store.Store
	failAt  int64         // fail writes past this many bytes; 0 = never
	hold    chan struct{} // if set, closed when the first write arrives, which then waits for its ctx
	holdOne sync.Once
}

func (f *faultStore) Create(ctx context.Context, name string) (store.Pending, error) {
	p, err := f.Store.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	return &faultPending{Pending: p, f: f, ctx: ctx}, nil
}

type faultPending struct {
	store.Pending
	f       *faultStore
	ctx     context.Context
	written int64
}

var errDiskFull = errors.New("no space left on device (injected)")

func (p *faultPending) Write(b []byte) (int, error) {
	if p.f.hold != nil {
		p.f.holdOne.Do(func() { close(p.f.hold) })
		<-p.ctx.Done()
		return 0, p.ctx.Err()
	}
	if p.f.failAt > 0 && p.written+int64(len(b)) > p.f.failAt {
		return 0, errDiskFull
	}
	p.written += int64(len(b))
	return p.Pending.Write(b)
}

// spaceStore reports a fixed free space.
type spaceStore struct {
	store.Store
	free int64
}

func (s spaceStore) FreeSpace(context.Context) (int64, error) { return s.free, nil }

// wrapStore decorates a Store, as an embedder's wrapper would, implementing
// nothing but Store and Unwrap.
type wrapStore struct{ store.Store }

func (w wrapStore) Unwrap() store.Store { return w.Store }

// retrieveTo retrieves b's backup into a new file dir/name, as
// backup-retrieve does, and returns its path and the backup's Info.
func retrieveTo(t *testing.T, b *slot.Slot, dir, name string) (string, store.Info) {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	require.NoError(t, err)
	info, err := b.Retrieve(context.Background(), f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return path, info
}

// backupBytes makes a backup with cfg and returns its status and the
// retrieved bytes.
func backupBytes(t *testing.T, e *env, cfg config) (slot.Status, []byte) {
	t.Helper()
	b := e.backupper(cfg)
	require.NoError(t, b.Role().Set())
	ctx := context.Background()
	require.NoError(t, b.Start(ctx, []byte(password)))
	st := wait(t, b)
	require.Equal(t, slot.StateReady, st.State, st.Error)
	var buf bytes.Buffer
	_, err := b.Retrieve(ctx, &buf)
	require.NoError(t, err)
	require.NoError(t, b.Delete(ctx))
	return st, buf.Bytes()
}

// runSlot backs up src through a new Slot with cfg, its node in the role,
// and returns the Slot (closed when the test ends) and the backup's final
// status, whether it succeeded or failed.
func runSlot(t *testing.T, src slot.Source, cfg slot.Config) (*slot.Slot, slot.Status) {
	t.Helper()
	s, err := slot.New(src, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.NoError(t, s.Role().Set())
	ctx := context.Background()
	require.NoError(t, s.Start(ctx, []byte(password)))
	st, err := s.Wait(ctx)
	require.NoError(t, err)
	return s, st
}
