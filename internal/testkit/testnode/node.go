// Package testnode is the test kit of the backup, restore and slot
// packages: a node to back up (a server from [mongotest], a slot's store,
// state directory and log), the data to seed it with, and helpers to back
// it up, restore a backup and compare what was restored. Backups crafted
// from documents and oplog entries given in memory ([CraftedBackup]) and a
// [Synthetic] source test a restore or a slot without a backup of a server.
//
// It is a test kit, imported by tests only (and by nothing that ships).
package testnode

import (
	"bytes"
	"context"
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

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/internal/testkit/mongotest"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// Password is the password of every test backup.
const Password = "correct horse battery staple"

// LowKDF keeps scrypt cheap in tests.
var LowKDF = &cipher.Options{LogN: 10}

// SyncBuffer is a log sink safe for concurrent writers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Env is one test's node: a server, a slot's store, a state dir and a log.
type Env struct {
	T      testing.TB        // the test the node belongs to
	Srv    *mongotest.Server // the node's server; nil for a node of [NewLocal]
	Store  store.Store       // the slot's store, a directory of the test's
	State  string            // the slot's state directory
	Logs   *SyncBuffer       // the slot's JSON log, at debug level
	Filter namespace.Filter  // the test's databases on Srv
}

// New returns a node with a server of its own (see [mongotest.New]).
func New(t testing.TB) *Env {
	t.Helper()
	srv := mongotest.New(t)
	e := newEnv(t)
	e.Srv, e.Filter = srv, namespace.Filter{Include: []string{srv.Prefix + "*"}}
	return e
}

// NewLocal returns a node without a server, for a slot over a fake Source:
// only [Env.Config] and the fields but Srv and Filter are of use.
func NewLocal(t testing.TB) *Env {
	t.Helper()
	return newEnv(t)
}

func newEnv(t testing.TB) *Env {
	t.Helper()
	dir, err := store.Dir(t.TempDir())
	require.NoError(t, err)
	return &Env{T: t, Store: dir, State: t.TempDir(), Logs: &SyncBuffer{}}
}

// Config is a test's backup: what of the node to back up and the slot's
// settings; change fields before [Env.Backupper].
type Config struct {
	slot.Config
	Filter               namespace.Filter // the [backup.Source]'s Filter
	Oplog, UsersAndRoles backup.Toggle    // the [backup.Source]'s toggles
}

// Config returns the node's default backup: its store, state dir and log,
// a new temporary dir, and the test's databases.
func (e *Env) Config() Config {
	return Config{
		Filter: e.Filter,
		Config: slot.Config{
			Store:    e.Store,
			StateDir: e.State,
			KDF:      LowKDF,
			Spill:    archive.Spill{Dir: e.T.TempDir()},
			Logger:   slog.New(slog.NewJSONHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		},
	}
}

// Source returns the node's [backup.Source] as cfg says.
func (e *Env) Source(cfg Config) *backup.Source {
	return &backup.Source{Conn: conn.Config{Client: e.Srv.Client}, Filter: cfg.Filter, Oplog: cfg.Oplog, UsersAndRoles: cfg.UsersAndRoles}
}

// Backupper returns the node's slot from [backup.New], closed when the test
// ends.
func (e *Env) Backupper(cfg Config) *slot.Slot {
	e.T.Helper()
	b, err := backup.New(e.Source(cfg), cfg.Config)
	require.NoError(e.T, err)
	e.T.Cleanup(func() { _ = b.Close() })
	return b
}

// Seed fills the test's databases with the documents of [SeedDocs]:
// app.users (with indexes email_1 and age_-1_score_1), app.events,
// shop.orders (with index sku_1), and the empty shop.empty. It returns
// every document by namespace.
func (e *Env) Seed(docsPerColl int) map[string][]bson.D {
	e.T.Helper()
	ctx := context.Background()
	c := e.Srv.Client
	all := map[string][]bson.D{}
	docs := SeedDocs(docsPerColl)
	for _, ns := range seedOrder {
		db, coll := ns[0], ns[1]
		d := docs[db+"."+coll]
		if len(d) > 0 {
			_, err := c.Database(e.Srv.DB(db)).Collection(coll).InsertMany(ctx, d)
			require.NoError(e.T, err)
		}
		all[e.Srv.DB(db)+"."+coll] = d
	}
	require.NoError(e.T, c.Database(e.Srv.DB("shop")).CreateCollection(ctx, "empty"))
	all[e.Srv.DB("shop")+".empty"] = nil

	_, err := c.Database(e.Srv.DB("app")).Collection("users").Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetName("email_1").SetUnique(true)},
		{Keys: bson.D{{Key: "age", Value: -1}, {Key: "score", Value: 1}}, Options: options.Index().SetName("age_-1_score_1")},
	})
	require.NoError(e.T, err)
	_, err = c.Database(e.Srv.DB("shop")).Collection("orders").Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "sku", Value: 1}}, Options: options.Index().SetName("sku_1"),
	})
	require.NoError(e.T, err)
	return all
}

// seedOrder is the order in which Seed inserts the collections of SeedDocs
// that hold documents.
var seedOrder = [][2]string{{"app", "users"}, {"app", "events"}, {"shop", "orders"}}

// SeedDocs returns the documents of [Env.Seed], docsPerColl in each of
// app.users (many types), app.events and shop.orders, and the empty
// shop.empty, by namespace; the ObjectIDs are new on each call.
func SeedDocs(docsPerColl int) Docs {
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
	return Docs{"app.users": users, "app.events": events, "shop.orders": orders, "shop.empty": nil}
}

// Count returns the number of documents in db.coll.
func (e *Env) Count(db, coll string) int64 {
	e.T.Helper()
	n, err := e.Srv.Client.Database(db).Collection(coll).CountDocuments(context.Background(), bson.D{})
	require.NoError(e.T, err)
	return n
}

// Wait waits for b's running backup to end and returns its status.
func Wait(t testing.TB, b *slot.Slot) slot.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := b.Wait(ctx)
	require.NoError(t, err)
	return st
}

// RetrieveTo retrieves b's backup into a new file dir/name, as
// backup-retrieve does, and returns its path and the backup's Info.
func RetrieveTo(t testing.TB, b *slot.Slot, dir, name string) (string, store.Info) {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	require.NoError(t, err)
	info, err := b.Retrieve(context.Background(), f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return path, info
}

// BackupBytes makes a backup of e with cfg, deletes it from the slot, and
// returns its status and the retrieved bytes.
func BackupBytes(t testing.TB, e *Env, cfg Config) (slot.Status, []byte) {
	t.Helper()
	b := e.Backupper(cfg)
	require.NoError(t, b.Role().Set())
	ctx := context.Background()
	require.NoError(t, b.Start(ctx, []byte(Password)))
	st := Wait(t, b)
	require.Equal(t, slot.StateReady, st.State, st.Error)
	var buf bytes.Buffer
	_, err := b.Retrieve(ctx, &buf)
	require.NoError(t, err)
	require.NoError(t, b.Delete(ctx))
	return st, buf.Bytes()
}

// RunSlot backs up src through a new [slot.Slot] with cfg, its node in the
// role, and returns the Slot (closed when the test ends) and the backup's
// final status, whether it succeeded or failed.
func RunSlot(t testing.TB, src slot.Source, cfg slot.Config) (*slot.Slot, slot.Status) {
	t.Helper()
	s, err := slot.New(src, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.NoError(t, s.Role().Set())
	ctx := context.Background()
	require.NoError(t, s.Start(ctx, []byte(Password)))
	st, err := s.Wait(ctx)
	require.NoError(t, err)
	return s, st
}
