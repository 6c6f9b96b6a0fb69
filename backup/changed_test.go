package backup_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// TestSourceChangedWhileRead drops the collection a backup reads, or kills
// its cursor, once the cursor's first batch is used up and before it asks
// for the next: the backup fails with ErrSourceChanged, naming the
// collection and the documents read, rather than storing a ready backup
// with the collection cut short (or failing as an internal error).
func TestSourceChangedWhileRead(t *testing.T) {
	for _, tc := range []struct {
		name string
		act  func(t *testing.T, e *testnode.Env, c archive.Collection, cursorID int64)
		says string
	}{
		{
			name: "dropped",
			act: func(t *testing.T, e *testnode.Env, c archive.Collection, _ int64) {
				assert.NoError(t, e.Srv.Client.Database(c.DB).Collection(c.Name).Drop(context.Background()))
			},
			says: "was dropped or replaced while it was read",
		},
		{
			name: "dropped and created again",
			act: func(t *testing.T, e *testnode.Env, c archive.Collection, _ int64) {
				coll := e.Srv.Client.Database(c.DB).Collection(c.Name)
				assert.NoError(t, coll.Drop(context.Background()))
				_, err := coll.InsertOne(context.Background(), D{{Key: "_id", Value: "new"}})
				assert.NoError(t, err)
			},
			says: "was dropped or replaced while it was read",
		},
		{
			name: "cursor killed",
			act: func(t *testing.T, e *testnode.Env, c archive.Collection, cursorID int64) {
				res := e.Srv.Client.Database(c.DB).RunCommand(context.Background(),
					D{{Key: "killCursors", Value: c.Name}, {Key: "cursors", Value: bson.A{cursorID}}})
				assert.NoError(t, res.Err())
			},
			says: "the server ended its cursor",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testnode.New(t)
			insertDocs(t, e, "app", "a", 500)
			src := &backup.Source{Conn: conn.Config{Client: e.Srv.Client}, Filter: e.Filter, Oplog: backup.ToggleOff}
			var mu sync.Mutex
			acted := 0
			backup.SetBeforeGetMore(src, func(c archive.Collection, cursorID int64) {
				mu.Lock()
				defer mu.Unlock()
				if acted++; acted == 1 {
					tc.act(t, e, c, cursorID)
				}
			})
			_, st := testnode.RunSlot(t, src, e.Config().Config)
			mu.Lock()
			assert.NotZero(t, acted, "the hook ran")
			mu.Unlock()
			require.Equal(t, slot.StateFailed, st.State, "a backup of a collection changed mid-read must not be ready")
			assert.Equal(t, errcode.SourceChanged, st.Code, st.Error)
			assert.Contains(t, st.Error, e.Srv.DB("app")+".a")
			assert.Contains(t, st.Error, tc.says)
			assert.Contains(t, st.Error, "(101 documents read)")
			assert.Contains(t, st.Error, "run the backup again")
			_, err := e.Store.Stat(context.Background())
			assert.ErrorIs(t, err, store.ErrEmpty, "the slot is left empty")
		})
	}
}

// TestSourceDroppedCursorEnds drops a collection that fits in its cursor's
// first batch once its first document is read: the cursor ends as if the
// read were whole, as FerretDB's can end after a part of a collection
// dropped meanwhile, and the backup fails with ErrSourceChanged rather than
// being ready.
func TestSourceDroppedCursorEnds(t *testing.T) {
	e := testnode.New(t)
	insertDocs(t, e, "app", "a", 50)
	dd := &testnode.DuringDump{
		Source: &backup.Source{Conn: conn.Config{Client: e.Srv.Client}, Filter: e.Filter, Oplog: backup.ToggleOff},
		During: func(c archive.Collection) error {
			return e.Srv.Client.Database(c.DB).Collection(c.Name).Drop(context.Background())
		},
	}
	_, st := testnode.RunSlot(t, dd, e.Config().Config)
	require.Equal(t, slot.StateFailed, st.State, "a backup of a collection dropped mid-read must not be ready")
	assert.Equal(t, errcode.SourceChanged, st.Code, st.Error)
	assert.Contains(t, st.Error, "collection "+e.Srv.DB("app")+".a was dropped or replaced while it was read (50 documents read)")
}

// TestDocumentTooLargeToRestore backs up a collection that holds a
// document FerretDB accepts but a restore cannot read (above
// archive.MaxDocumentSize): the backup fails with ErrDocumentTooLarge,
// naming the namespace and the document's _id, rather than store a ready
// backup that every restore refuses.
func TestDocumentTooLargeToRestore(t *testing.T) {
	e := testnode.New(t)
	insertDocs(t, e, "app", "a", 3)
	big := D{{Key: "_id", Value: "big"}, {Key: "pad", Value: strings.Repeat("x", archive.MaxDocumentSize)}}
	raw, err := bson.Marshal(big)
	require.NoError(t, err)
	require.Greater(t, len(raw), archive.MaxDocumentSize)
	_, err = e.Srv.Client.Database(e.Srv.DB("app")).Collection("a").InsertOne(context.Background(), big)
	if err != nil {
		t.Skipf("the server refuses a document of %d bytes, as MongoDB does: %v", len(raw), err)
	}
	src := &backup.Source{Conn: conn.Config{Client: e.Srv.Client}, Filter: e.Filter, Oplog: backup.ToggleOff}
	_, st := testnode.RunSlot(t, src, e.Config().Config)
	require.Equal(t, slot.StateFailed, st.State, "a ready backup must restore")
	assert.Equal(t, errcode.Invalid, st.Code, st.Error)
	assert.Contains(t, st.Error, ": a document is too large to be restored: ")
	assert.Contains(t, st.Error, fmt.Sprintf(`the document of %s.a with _id "big" is %d bytes, above the %d`, e.Srv.DB("app"), len(raw), archive.MaxDocumentSize))
}
