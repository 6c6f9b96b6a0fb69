package restore_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/internal/testkit/mongotest"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/restore"
)

type (
	D = bson.D
	A = bson.A
)

// Short names for the kit's oplog entry builders, which the tables below
// use on every line.
var (
	id, ins, upd, del, cmd, diff = testnode.ID, testnode.Ins, testnode.Upd, testnode.Del, testnode.Cmd, testnode.Diff
	txn, txnCmd, entryTS         = testnode.Txn, testnode.TxnCmd, testnode.EntryTS
)

// TestReplayEntries replays crafted oplog entries of every kind against the
// server and checks the documents they leave.
func TestReplayEntries(t *testing.T) {
	srv := mongotest.New(t)
	ctx := context.Background()
	var zero bson.Timestamp
	for i, tc := range []struct {
		name  string
		docs  func(db string) map[string][]D
		oplog func(db string) []D
		opts  func(db string) restore.Options
		check func(t *testing.T, db string, rep *restore.Report)
	}{
		{
			name: "inserts are upserts",
			docs: func(db string) map[string][]D {
				return map[string][]D{db + ".c": {{{Key: "_id", Value: 1}, {Key: "a", Value: 1}}}}
			},
			oplog: func(db string) []D {
				return []D{ins(db+".c", D{{Key: "_id", Value: 1}, {Key: "a", Value: 2}}), ins(db+".c", D{{Key: "_id", Value: 2}, {Key: "a", Value: 1}})}
			},
			check: func(t *testing.T, db string, rep *restore.Report) {
				assert.Equal(t, testnode.DocsOf(t, D{{Key: "_id", Value: 1}, {Key: "a", Value: 2}}, D{{Key: "_id", Value: 2}, {Key: "a", Value: 1}}), testnode.Contents(t, srv, db+".c"))
				assert.EqualValues(t, 2, rep.Oplog.Inserts)
			},
		},
		{
			name: "update operators, FerretDB's whole document and replacement",
			docs: func(db string) map[string][]D {
				return map[string][]D{db + ".c": {
					{{Key: "_id", Value: 1}, {Key: "a", Value: 1}, {Key: "b", Value: 1}},
					{{Key: "_id", Value: 2}, {Key: "a", Value: 1}, {Key: "b", Value: 1}},
					{{Key: "_id", Value: 3}, {Key: "a", Value: 1}},
				}}
			},
			oplog: func(db string) []D {
				return []D{
					upd(db+".c", 1, D{{Key: "$v", Value: 1}, {Key: "$set", Value: D{{Key: "a", Value: 5}}}, {Key: "$unset", Value: D{{Key: "b", Value: true}}}}),
					upd(db+".c", 2, D{{Key: "$v", Value: 1}, {Key: "$set", Value: D{{Key: "_id", Value: 2}, {Key: "a", Value: 7}}}}),
					upd(db+".c", 3, D{{Key: "_id", Value: 3}, {Key: "z", Value: "new"}}),
				}
			},
			check: func(t *testing.T, db string, rep *restore.Report) {
				assert.Equal(t, testnode.DocsOf(t,
					D{{Key: "_id", Value: 1}, {Key: "a", Value: 5}},
					D{{Key: "_id", Value: 2}, {Key: "a", Value: 7}},
					D{{Key: "_id", Value: 3}, {Key: "z", Value: "new"}},
				), testnode.Contents(t, srv, db+".c"))
				assert.EqualValues(t, 3, rep.Oplog.Updates)
			},
		},
		{
			name: "v2 diffs of fields and arrays",
			docs: func(db string) map[string][]D {
				return map[string][]D{db + ".c": {
					{{Key: "_id", Value: 1}, {Key: "a", Value: 1}, {Key: "b", Value: D{{Key: "c", Value: 1}, {Key: "d", Value: 2}}}, {Key: "e", Value: "x"}},
					{{Key: "_id", Value: 2}, {Key: "arr", Value: A{1, 2, 3, 4}}, {Key: "objs", Value: A{D{{Key: "x", Value: 1}}, D{{Key: "x", Value: 2}}}}},
				}}
			},
			oplog: func(db string) []D {
				return []D{
					upd(db+".c", 1, diff(D{
						{Key: "d", Value: D{{Key: "e", Value: false}}},
						{Key: "u", Value: D{{Key: "a", Value: 2}}},
						{Key: "i", Value: D{{Key: "f", Value: 3}}},
						{Key: "sb", Value: D{{Key: "u", Value: D{{Key: "c", Value: 5}}}, {Key: "d", Value: D{{Key: "d", Value: false}}}}},
					})),
					upd(db+".c", 2, diff(D{
						{Key: "sarr", Value: D{{Key: "a", Value: true}, {Key: "l", Value: 2}, {Key: "u1", Value: 9}}},
						{Key: "sobjs", Value: D{{Key: "a", Value: true}, {Key: "s1", Value: D{{Key: "u", Value: D{{Key: "x", Value: 7}}}}}, {Key: "u2", Value: D{{Key: "x", Value: 3}}}}},
					})),
				}
			},
			check: func(t *testing.T, db string, rep *restore.Report) {
				assert.Equal(t, testnode.DocsOf(t,
					D{{Key: "_id", Value: 1}, {Key: "a", Value: 2}, {Key: "b", Value: D{{Key: "c", Value: 5}}}, {Key: "f", Value: 3}},
					D{{Key: "_id", Value: 2}, {Key: "arr", Value: A{1, 9}}, {Key: "objs", Value: A{D{{Key: "x", Value: 1}}, D{{Key: "x", Value: 7}}, D{{Key: "x", Value: 3}}}}},
				), testnode.Contents(t, srv, db+".c"))
			},
		},
		{
			name: "replayed onto a later state: missing documents, conflicts",
			docs: func(db string) map[string][]D {
				return map[string][]D{db + ".c": {{{Key: "_id", Value: 1}, {Key: "a", Value: 5}}}}
			},
			oplog: func(db string) []D {
				return []D{
					upd(db+".c", 9, diff(D{{Key: "u", Value: D{{Key: "gone", Value: true}}}})), // deleted later
					upd(db+".c", 1, diff(D{{Key: "sa", Value: D{{Key: "u", Value: D{{Key: "x", Value: 1}}}}}})),
					del(db+".c", 9),
					del(db+".c", 42), // never there
					upd(db+".c", 1, D{{Key: "$v", Value: 1}, {Key: "$set", Value: D{{Key: "a", Value: D{{Key: "x", Value: 2}}}}}}),
				}
			},
			check: func(t *testing.T, db string, rep *restore.Report) {
				assert.Equal(t, testnode.DocsOf(t, D{{Key: "_id", Value: 1}, {Key: "a", Value: D{{Key: "x", Value: 2}}}}), testnode.Contents(t, srv, db+".c"))
				assert.EqualValues(t, 1, rep.Oplog.Conflicts, "a.x cannot be set while a is a number")
			},
		},
		{
			name: "collection and index commands",
			docs: func(db string) map[string][]D {
				return map[string][]D{db + ".c": {{{Key: "_id", Value: 1}}}, db + ".old": {{{Key: "_id", Value: 1}}}}
			},
			oplog: func(db string) []D {
				return []D{
					cmd(db, D{{Key: "create", Value: "n"}, {Key: "idIndex", Value: D{{Key: "v", Value: 2}, {Key: "key", Value: id(1)}, {Key: "name", Value: "_id_"}}}}),
					cmd(db, D{{Key: "create", Value: "n"}}), // exists: replayed again
					cmd(db, D{{Key: "createIndexes", Value: "n"}, {Key: "v", Value: 2}, {Key: "key", Value: D{{Key: "k", Value: 1}}}, {Key: "name", Value: "k_1"}}),
					ins(db+".n", D{{Key: "_id", Value: 1}, {Key: "k", Value: "x"}}),
					cmd(db, D{{Key: "commitIndexBuild", Value: "n"}, {Key: "indexes", Value: A{D{{Key: "v", Value: 2}, {Key: "key", Value: D{{Key: "j", Value: -1}}}, {Key: "name", Value: "j_-1"}}}}}),
					cmd(db, D{{Key: "dropIndexes", Value: "n"}, {Key: "index", Value: "k_1"}}),
					cmd(db, D{{Key: "dropIndexes", Value: "n"}, {Key: "index", Value: "k_1"}}), // gone: replayed again
					cmd(db, D{{Key: "drop", Value: "old"}}),
					cmd(db, D{{Key: "collMod", Value: "c"}, {Key: "validator", Value: D{}}}),
					cmd(db, D{{Key: "someFutureCommand", Value: "c"}}),
				}
			},
			check: func(t *testing.T, db string, rep *restore.Report) {
				assert.Equal(t, []string{"c", "n"}, testnode.CollectionNames(t, srv, db))
				assert.Equal(t, []string{"_id_", "j_-1"}, testnode.IndexList(t, srv, db+".n"))
				assert.Equal(t, testnode.DocsOf(t, D{{Key: "_id", Value: 1}, {Key: "k", Value: "x"}}), testnode.Contents(t, srv, db+".n"))
				assert.Contains(t, strings.Join(rep.Notes, "\n"), "1 someFutureCommand commands were not replayed")
				assert.EqualValues(t, 9, rep.Oplog.Commands+rep.Oplog.Skipped, "every command is applied or skipped")
			},
		},
		{
			name: "renameCollection and dropDatabase",
			docs: func(db string) map[string][]D {
				return map[string][]D{db + ".a": {{{Key: "_id", Value: 1}}}, db + ".b": {{{Key: "_id", Value: 2}}}, db + "x.other": {{{Key: "_id", Value: 3}}}}
			},
			oplog: func(db string) []D {
				return []D{
					cmd(db, D{{Key: "renameCollection", Value: db + ".a"}, {Key: "to", Value: db + ".a2"}, {Key: "dropTarget", Value: false}}),
					ins(db+".a2", D{{Key: "_id", Value: 10}}),
					cmd(db, D{{Key: "renameCollection", Value: db + ".a"}, {Key: "to", Value: db + ".a2"}, {Key: "dropTarget", Value: false}}), // replayed again
					cmd(db+"x", D{{Key: "dropDatabase", Value: 1}}),
					ins(db+"x.other", D{{Key: "_id", Value: 4}}),
				}
			},
			check: func(t *testing.T, db string, rep *restore.Report) {
				assert.Equal(t, []string{"a2", "b"}, testnode.CollectionNames(t, srv, db))
				assert.Equal(t, testnode.DocsOf(t, id(1), id(10)), testnode.Contents(t, srv, db+".a2"))
				assert.Equal(t, testnode.DocsOf(t, id(4)), testnode.Contents(t, srv, db+"x.other"), "dropped, then written again")
			},
		},
		{
			name: "applyOps and transactions",
			docs: func(db string) map[string][]D { return map[string][]D{db + ".c": {{{Key: "_id", Value: 0}}}} },
			oplog: func(db string) []D {
				c := db + ".c"
				return []D{
					cmd("admin", D{{Key: "applyOps", Value: A{ins(c, id(1)), upd(c, 1, D{{Key: "$set", Value: D{{Key: "x", Value: 1}}}}), del(c, 0)}}}), // 0
					txn(1, zero, A{ins(c, id(2))}),                                                                              // 1: committed in one entry
					txn(2, zero, A{ins(c, id(3))}, bson.E{Key: "partialTxn", Value: true}),                                      // 2
					txn(2, entryTS(2), A{ins(c, id(4))}, bson.E{Key: "partialTxn", Value: true}),                                // 3
					txn(2, entryTS(3), A{ins(c, id(5))}, bson.E{Key: "count", Value: int64(3)}),                                 // 4: commits 3, 4, 5
					txn(3, zero, A{ins(c, id(6))}, bson.E{Key: "prepare", Value: true}),                                         // 5
					txn(4, zero, A{ins(c, id(7))}, bson.E{Key: "prepare", Value: true}),                                         // 6
					txnCmd(3, entryTS(5), D{{Key: "commitTransaction", Value: 1}, {Key: "commitTimestamp", Value: entryTS(7)}}), // 7
					txnCmd(4, entryTS(6), D{{Key: "abortTransaction", Value: 1}}),                                               // 8
					txn(5, entryTS(0), A{ins(c, id(8))}),                                                                        // 9: its first entry is missing
					txn(6, zero, A{ins(c, id(9))}, bson.E{Key: "partialTxn", Value: true}),                                      // 10: never committed
				}
			},
			check: func(t *testing.T, db string, rep *restore.Report) {
				assert.Equal(t, testnode.DocsOf(t, D{{Key: "_id", Value: 1}, {Key: "x", Value: 1}}, id(2), id(3), id(4), id(5), id(6)), testnode.Contents(t, srv, db+".c"))
				assert.EqualValues(t, 3, rep.Oplog.Transactions)
				assert.EqualValues(t, 1, rep.Oplog.Uncommitted)
				assert.EqualValues(t, 1, rep.Oplog.Incomplete)
			},
		},
		{
			name: "filter, renames and namespaces never replayed",
			docs: func(db string) map[string][]D {
				return map[string][]D{db + ".c": {{{Key: "_id", Value: 1}}}, db + ".other": {{{Key: "_id", Value: 1}}}}
			},
			oplog: func(db string) []D {
				return []D{
					ins(db+".c", id(2)),
					ins(db+".other", id(2)),
					ins("config.system.sessions", id(1)),
					ins("admin.system.users", id("x.y")),
					ins(db+".system.buckets.ts", id(1)),
					{{Key: "op", Value: "n"}, {Key: "ns", Value: ""}, {Key: "o", Value: D{{Key: "msg", Value: "periodic noop"}}}},
					cmd(db, D{{Key: "create", Value: "other2"}}),
				}
			},
			opts: func(db string) restore.Options {
				return restore.Options{
					Filter:  namespace.Filter{Exclude: []string{"*.other*"}},
					Renames: []namespace.Rename{{From: db + ".*", To: db + ".r_*"}},
				}
			},
			check: func(t *testing.T, db string, rep *restore.Report) {
				assert.Equal(t, testnode.DocsOf(t, id(1), id(2)), testnode.Contents(t, srv, db+".r_c"), "renamed")
				assert.Equal(t, []string{"r_c"}, testnode.CollectionNames(t, srv, db))
				assert.EqualValues(t, 1, rep.Oplog.Inserts)
				assert.EqualValues(t, 6, rep.Oplog.Skipped)
			},
		},
		{
			name: "limit",
			docs: func(db string) map[string][]D { return map[string][]D{db + ".c": nil} },
			oplog: func(db string) []D {
				return []D{ins(db+".c", id(1)), ins(db+".c", id(2)), ins(db+".c", id(3)), ins(db+".c", id(4))}
			},
			opts: func(string) restore.Options { return restore.Options{OplogLimit: entryTS(2)} },
			check: func(t *testing.T, db string, rep *restore.Report) {
				assert.Equal(t, testnode.DocsOf(t, id(1), id(2)), testnode.Contents(t, srv, db+".c"), "entries before the limit")
				assert.True(t, rep.Oplog.LimitReached)
				assert.Equal(t, entryTS(1), rep.Oplog.Last)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := srv.DB(fmt.Sprintf("replay%d", i))
			data := testnode.CraftedBackup(t, tc.docs(db), tc.oplog(db), archive.TarFormat{})
			var o restore.Options
			if tc.opts != nil {
				o = tc.opts(db)
			}
			o.Conn.Client = srv.Client

			dry := o
			dry.DryRun = true
			dryRep, err := testnode.RestoreBytes(t, data, dry)
			require.NoError(t, err)
			names, err := srv.Client.ListDatabaseNames(ctx, D{})
			require.NoError(t, err)
			for _, name := range names {
				assert.False(t, strings.HasPrefix(name, db), "a dry run writes nothing, yet %s exists", name)
			}

			rep, err := testnode.RestoreBytes(t, data, o)
			require.NoError(t, err)
			require.NotNil(t, rep.Oplog)
			if !rep.Oplog.LimitReached {
				assert.EqualValues(t, len(tc.oplog(db)), rep.Oplog.Entries)
			}
			tc.check(t, db, rep)

			// A dry run counts what it would apply; conflicts, and commands
			// the server turns out not to have, are found only by writing.
			require.NotNil(t, dryRep.Oplog)
			got, want := *dryRep.Oplog, *rep.Oplog
			assert.Zero(t, got.Conflicts)
			assert.Equal(t, want.Commands+want.Skipped, got.Commands+got.Skipped)
			got.Conflicts, want.Conflicts = 0, 0
			got.Commands, got.Skipped, want.Commands, want.Skipped = 0, 0, 0, 0
			assert.Equal(t, want, got, "a dry run reports what it would apply")
		})
	}
}

// TestReplayManyUpdates replays more updates of existing documents in a row
// than FerretDB's connection pool holds (it keeps one per matched update of
// a command until the command ends), which must not hang.
func TestReplayManyUpdates(t *testing.T) {
	srv := mongotest.New(t)
	db := srv.DB("many")
	var docs, oplog []D
	var want []D
	for i := range 150 {
		docs = append(docs, D{{Key: "_id", Value: fmt.Sprintf("d%03d", i)}, {Key: "n", Value: i}})
		oplog = append(oplog, upd(db+".c", fmt.Sprintf("d%03d", i), D{{Key: "$set", Value: D{{Key: "n", Value: -i}}}}))
		want = append(want, D{{Key: "_id", Value: fmt.Sprintf("d%03d", i)}, {Key: "n", Value: -i}})
	}
	data := testnode.CraftedBackup(t, map[string][]D{db + ".c": docs}, oplog, archive.TarFormat{})
	rep, err := testnode.RestoreBytes(t, data, restore.Options{Conn: conn.Config{Client: srv.Client}})
	require.NoError(t, err)
	assert.EqualValues(t, 150, rep.Oplog.Updates)
	assert.Equal(t, testnode.DocsOf(t, want...), testnode.Contents(t, srv, db+".c"))
}

// TestReplayArchiveFormat checks replay of an archive-format backup, whose
// oplog namespace is "".oplog.
func TestReplayArchiveFormat(t *testing.T) {
	srv := mongotest.New(t)
	db := srv.DB("arch")
	data := testnode.CraftedBackup(t, map[string][]D{db + ".c": {id(1)}}, []D{ins(db+".c", id(2)), del(db+".c", 1)}, archive.ArchiveFormat{})
	rep, err := testnode.RestoreBytes(t, data, restore.Options{Conn: conn.Config{Client: srv.Client}})
	require.NoError(t, err)
	assert.Equal(t, testnode.DocsOf(t, id(2)), testnode.Contents(t, srv, db+".c"))
	assert.EqualValues(t, 1, rep.Oplog.Inserts)
	assert.EqualValues(t, 1, rep.Oplog.Deletes)
	assert.True(t, rep.Oplog.Captured.Start.IsZero(), "the archive format stores no manifest")
}

// TestReplayRefusesDisorder checks that an oplog out of timestamp order is
// refused as corrupt.
func TestReplayRefusesDisorder(t *testing.T) {
	srv := mongotest.New(t)
	db := srv.DB("order")
	entries := []D{ins(db+".c", id(1)), ins(db+".c", id(2))}
	var enc bytes.Buffer
	w, err := cipher.NewWriter(&enc, []byte(testnode.Password), testnode.LowKDF)
	require.NoError(t, err)
	_, err = archive.Dump(context.Background(), w, []archive.Collection{{DB: db, Name: "c"}}, testnode.Docs{}, &archive.DumpOptions{
		Compression: archive.NoCompression{}, Oplog: reversed(entries),
	})
	require.NoError(t, err)
	require.NoError(t, w.Close())
	_, err = testnode.RestoreBytes(t, enc.Bytes(), restore.Options{Conn: conn.Config{Client: srv.Client}})
	assert.ErrorIs(t, err, restore.ErrCorrupt)
	assert.ErrorContains(t, err, "not in timestamp order")
	assert.True(t, strings.HasPrefix(err.Error(), "restore: the backup cannot be read: "), "the sentinel first: %v", err)
	assert.Equal(t, 1, strings.Count(err.Error(), "restore: "), "the package named once: %v", err)
}

type reversed []D

func (r reversed) Oplog(ctx context.Context, emit func([]byte) error) (archive.OplogSpan, error) {
	for i := range r {
		b, _ := bson.Marshal(append(D{{Key: "ts", Value: entryTS(len(r) - i)}}, r[i]...))
		if err := emit(b); err != nil {
			return archive.OplogSpan{}, err
		}
	}
	return archive.OplogSpan{}, nil
}

// further is an archive.OplogSource of crafted entries with the timestamps
// entryTS(first), entryTS(first+1), …
type further struct {
	first   int
	entries []D
	emitted int
}

func (f *further) Oplog(ctx context.Context, emit func([]byte) error) (archive.OplogSpan, error) {
	span := archive.OplogSpan{Start: entryTS(f.first), End: entryTS(f.first + len(f.entries) - 1)}
	for i, e := range f.entries {
		b, err := bson.Marshal(append(D{{Key: "ts", Value: entryTS(f.first + i)}}, e...))
		if err != nil {
			return span, err
		}
		if err := emit(b); err != nil {
			return span, err
		}
		f.emitted++
	}
	span.Entries = int64(len(f.entries))
	return span, nil
}

// TestReplayFurtherOplog replays a further oplog after the backup's own, as
// its continuation: a transaction begun in the backup's oplog commits in
// the further one, OplogLimit stops inside it (and stops reading it), and
// the further oplog must come after the backup's.
func TestReplayFurtherOplog(t *testing.T) {
	srv := mongotest.New(t)
	db := srv.DB("further")
	ns := db + ".c"
	first := entryTS(1)
	data := testnode.CraftedBackup(t, map[string][]D{ns: {id(1)}}, []D{
		ins(ns, id(2)),
		txn(7, bson.Timestamp{}, A{ins(ns, id(3))}, bson.E{Key: "partialTxn", Value: true}),
	}, archive.TarFormat{})
	more := func() *further {
		return &further{first: 2, entries: []D{
			txn(7, first, A{ins(ns, id(4))}),
			del(ns, 1),
			ins(ns, id(5)),
			ins(ns, id(6)),
		}}
	}
	rename := func(to string) namespace.Renames { return namespace.Renames{{From: ns, To: db + "." + to}} }

	f := more()
	rep, err := testnode.RestoreBytes(t, data, restore.Options{Conn: conn.Config{Client: srv.Client}, Renames: rename("all"), FurtherOplog: f})
	require.NoError(t, err)
	assert.Equal(t, testnode.DocsOf(t, id(2), id(3), id(4), id(5), id(6)), testnode.Contents(t, srv, db+".all"))
	assert.EqualValues(t, 1, rep.Oplog.Transactions, "the transaction commits in the further oplog")
	assert.Equal(t, entryTS(5), rep.Oplog.Last)
	assert.Equal(t, entryTS(2), rep.Oplog.Further.Start)
	assert.EqualValues(t, 6, rep.Oplog.Entries)

	// Up to, not including, the limit; the source is not read past it.
	f = more()
	rep, err = testnode.RestoreBytes(t, data, restore.Options{Conn: conn.Config{Client: srv.Client}, Renames: rename("lim"), FurtherOplog: f, OplogLimit: entryTS(4)})
	require.NoError(t, err)
	assert.Equal(t, testnode.DocsOf(t, id(2), id(3), id(4)), testnode.Contents(t, srv, db+".lim"))
	assert.True(t, rep.Oplog.LimitReached)
	assert.Equal(t, 2, f.emitted, "the further oplog stops at the limit")

	// A limit inside the backup's own oplog never reads the further one.
	f = more()
	rep, err = testnode.RestoreBytes(t, data, restore.Options{Conn: conn.Config{Client: srv.Client}, Renames: rename("early"), FurtherOplog: f, OplogLimit: entryTS(1)})
	require.NoError(t, err)
	assert.Zero(t, f.emitted)
	assert.Equal(t, testnode.DocsOf(t, id(1), id(2)), testnode.Contents(t, srv, db+".early"))

	// A further oplog that starts before the backup's ends is refused.
	f = &further{first: 0, entries: []D{ins(ns, id(9))}}
	_, err = testnode.RestoreBytes(t, data, restore.Options{Conn: conn.Config{Client: srv.Client}, Renames: rename("bad"), FurtherOplog: f})
	assert.ErrorIs(t, err, restore.ErrCorrupt)
	assert.ErrorContains(t, err, "not in timestamp order")

	// With replay off there is nothing for it to continue.
	_, err = testnode.RestoreBytes(t, data, restore.Options{Conn: conn.Config{Client: srv.Client}, FurtherOplog: more(), OplogReplay: restore.ReplayNever})
	assert.ErrorIs(t, err, restore.ErrInvalid)
}
