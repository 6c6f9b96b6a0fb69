package slot

import (
	"context"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/store"
)

// docsSource is a Source of one collection of n documents of 512
// incompressible bytes.
type docsSource struct{ n int }

func (s docsSource) Plan(context.Context) (Plan, error) {
	return Plan{Collections: []archive.Collection{{DB: "app", Name: "c", Type: "collection"}}}, nil
}

func (s docsSource) Documents(_ context.Context, _ archive.Collection, emit func([]byte) error) error {
	rng := rand.New(rand.NewPCG(1, 2))
	pad := make([]byte, 512)
	for i := range s.n {
		for j := range pad {
			pad[j] = byte(rng.Uint32())
		}
		doc, err := bson.Marshal(bson.D{{Key: "_id", Value: i}, {Key: "pad", Value: pad}})
		if err != nil {
			return err
		}
		if err := emit(doc); err != nil {
			return err
		}
	}
	return nil
}

// disk is a filesystem that fills up: from fill on, every new file fails
// for want of space, but for those that fit in the room of a reserve file
// that existed then and has been removed since.
type disk struct {
	reserve string
	full    atomic.Bool
	held    atomic.Bool // the reserve existed when the disk filled
}

func (d *disk) fill() {
	_, err := os.Stat(d.reserve)
	d.held.Store(err == nil)
	d.full.Store(true)
}

// writer is writeFile on d.
func (d *disk) writer() func(string, []byte) error {
	write := writeFile
	return func(name string, data []byte) error {
		if d.full.Load() {
			_, err := os.Stat(d.reserve)
			if freed := d.held.Load() && err != nil; !freed {
				return &fs.PathError{Op: "write", Path: name, Err: syscall.ENOSPC}
			}
		}
		return write(name, data)
	}
}

// fillingStore is a store on d: once its backup has written past room
// bytes, d is full.
type fillingStore struct {
	store.Store
	room int64
	disk *disk
}

func (f fillingStore) Create(ctx context.Context, name string) (store.Pending, error) {
	p, err := f.Store.Create(ctx, name)
	return &fillingPending{Pending: p, f: f}, err
}

type fillingPending struct {
	store.Pending
	f       fillingStore
	written int64
}

func (p *fillingPending) Write(b []byte) (int, error) {
	if p.written+int64(len(b)) > p.f.room {
		p.f.disk.fill()
		return 0, &fs.PathError{Op: "write", Path: "/slot/backup.tar.gz.tmp", Err: syscall.ENOSPC}
	}
	p.written += int64(len(b))
	return p.Pending.Write(b)
}

// TestDiskFullIsInsufficientSpace fills the disk during a backup: the
// backup fails as insufficient space (not internal), its outcome is saved
// in the room it held although the disk is full, and a new process over
// the same state reports that cause, not "interrupted".
func TestDiskFullIsInsufficientSpace(t *testing.T) {
	dir := t.TempDir()
	statePath := filepath.Join(dir, DefaultStateFile)
	d := &disk{reserve: reservePath(statePath)}
	write := writeFile
	writeFile = d.writer()
	t.Cleanup(func() { writeFile = write })

	cfg := Config{
		Store:    fillingStore{Store: store.Memory(), room: 16 << 10, disk: d},
		StateDir: dir,
		KDF:      &cipher.Options{LogN: 10},
		Logger:   slog.New(slog.DiscardHandler),
	}
	s, err := New(docsSource{n: 2000}, cfg)
	require.NoError(t, err)
	require.NoError(t, s.Role().Set())
	ctx := context.Background()
	require.NoError(t, s.Start(ctx, []byte("pw")))
	st, err := s.Wait(ctx)
	require.NoError(t, err)
	require.True(t, d.full.Load(), "the disk filled up")
	assert.Equal(t, StateFailed, st.State)
	assert.Equal(t, errcode.InsufficientSpace, st.Code)
	assert.Contains(t, st.Error, "no space left on device")
	assert.Contains(t, st.Error, "not enough free disk space")
	assert.NoFileExists(t, reservePath(statePath), "the room is given back")
	require.NoError(t, s.Close())

	again, err := New(docsSource{}, cfg)
	require.NoError(t, err)
	st, err = again.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, StateFailed, st.State)
	assert.Equal(t, errcode.InsufficientSpace, st.Code, "the saved cause, not interrupted: %s", st.Error)
}

// TestStartNeedsRoomForItsState: a state directory on a full disk refuses
// the backup at Start, as insufficient space.
func TestStartNeedsRoomForItsState(t *testing.T) {
	dir := t.TempDir()
	write := writeFile
	writeFile = func(name string, _ []byte) error {
		return &fs.PathError{Op: "write", Path: name, Err: syscall.ENOSPC}
	}
	t.Cleanup(func() { writeFile = write })
	s, err := New(docsSource{n: 1}, Config{Store: store.Memory(), StateDir: dir, KDF: &cipher.Options{LogN: 10}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.NoError(t, NewRole(dir).Set())
	err = s.Start(context.Background(), []byte("pw"))
	require.ErrorIs(t, err, ErrInsufficientSpace)
	assert.Equal(t, errcode.InsufficientSpace, errcode.Of(err))
	st, err := s.Status(context.Background())
	require.NoError(t, err)
	assert.Equal(t, StateNone, st.State, "nothing started")
}
