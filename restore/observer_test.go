package restore_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/internal/testkit/mongotest"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/restore"
)

// observer records what a restore tells it.
type observer struct {
	t        *testing.T
	srv      *mongotest.Server
	refuse   error
	targets  []string
	docs     map[string]int
	atReplay []string // the target's contents when Restored is called
}

func (o *observer) Namespace(ctx context.Context, c archive.Collection, to string) (func([]byte), error) {
	if o.refuse != nil {
		return nil, o.refuse
	}
	o.targets = append(o.targets, c.Namespace()+">"+to)
	return func(doc []byte) { o.docs[to]++ }, nil
}

func (o *observer) Restored(ctx context.Context) error {
	for _, t := range o.targets {
		_, to, _ := strings.Cut(t, ">")
		o.atReplay = append(o.atReplay, testnode.Contents(o.t, o.srv, to)...)
	}
	return nil
}

// TestObserver checks that an Observer sees every namespace and document
// read, and the collections restored before the oplog replays; and that a
// namespace it refuses is not written.
func TestObserver(t *testing.T) {
	srv := mongotest.New(t)
	ns := srv.DB("obs") + ".c"
	to := srv.DB("obs_to") + ".c"
	data := testnode.CraftedBackup(t, map[string][]bson.D{ns: {testnode.ID(1), testnode.ID(2)}},
		[]bson.D{testnode.Del(ns, 2)}, archive.TarFormat{})
	renames := namespace.Renames{{From: ns, To: to}}

	o := &observer{t: t, srv: srv, docs: map[string]int{}}
	rep, err := testnode.RestoreBytes(t, data, restore.Options{Conn: conn.Config{Client: srv.Client}, Renames: renames, Observer: o})
	require.NoError(t, err)
	assert.Equal(t, []string{ns + ">" + to}, o.targets)
	assert.Equal(t, map[string]int{to: 2}, o.docs)
	assert.Equal(t, testnode.DocsOf(t, testnode.ID(1), testnode.ID(2)), o.atReplay, "Restored comes before the replay")
	assert.EqualValues(t, 1, rep.Oplog.Deletes)
	assert.Equal(t, testnode.DocsOf(t, testnode.ID(1)), testnode.Contents(t, srv, to))

	no := errors.New("refused")
	_, err = testnode.RestoreBytes(t, data, restore.Options{Conn: conn.Config{Client: srv.Client}, Renames: namespace.Renames{{From: ns, To: srv.DB("obs_no") + ".c"}},
		Observer: &observer{t: t, srv: srv, refuse: no}})
	assert.ErrorIs(t, err, no)
	assert.Empty(t, testnode.CollectionNames(t, srv, srv.DB("obs_no")))
}
