package backup_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/internal/mongotest"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/restore"
)

type (
	D = bson.D
	A = bson.A
)

// mapSource serves documents from memory.
type mapSource map[string][]D

func (m mapSource) Documents(ctx context.Context, c archive.Collection, emit func([]byte) error) error {
	for _, d := range m[c.Namespace()] {
		b, err := bson.Marshal(d)
		if err != nil {
			return err
		}
		if err := emit(b); err != nil {
			return err
		}
	}
	return nil
}

// fixedOplog serves crafted oplog entries, giving each a timestamp.
type fixedOplog []D

// entryTS is the timestamp fixedOplog gives its i-th entry.
func entryTS(i int) bson.Timestamp { return bson.Timestamp{T: 1_800_000_000, I: uint32(i + 1)} }

func (f fixedOplog) Oplog(ctx context.Context, emit func([]byte) error) (archive.OplogSpan, error) {
	for i, e := range f {
		b, err := bson.Marshal(append(D{{Key: "ts", Value: entryTS(i)}}, e...))
		if err != nil {
			return archive.OplogSpan{}, err
		}
		if err := emit(b); err != nil {
			return archive.OplogSpan{}, err
		}
	}
	return archive.OplogSpan{Start: entryTS(0), End: entryTS(len(f) - 1)}, nil
}

// craftedBackup returns an encrypted backup of the given collections and
// oplog entries, as Retrieve returns one.
func craftedBackup(t testing.TB, docs map[string][]D, oplog []D, f archive.Format) []byte {
	t.Helper()
	var cols []archive.Collection
	for ns := range docs {
		db, name, _ := strings.Cut(ns, ".")
		cols = append(cols, archive.Collection{DB: db, Name: name, Type: "collection"})
	}
	slices.SortFunc(cols, func(a, b archive.Collection) int { return strings.Compare(a.Namespace(), b.Namespace()) })
	var enc bytes.Buffer
	w, err := cipher.NewWriter(&enc, []byte(password), lowKDF)
	require.NoError(t, err)
	opts := &archive.DumpOptions{Format: f, Compression: archive.NoCompression{}}
	if oplog != nil {
		opts.Oplog = fixedOplog(oplog)
	}
	_, err = archive.Dump(context.Background(), w, cols, mapSource(docs), opts)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return enc.Bytes()
}

func restoreBytes(t testing.TB, data []byte, o restore.Options) (*restore.Report, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return restore.Run(context.Background(), bytes.NewReader(data), int64(len(data)), []byte(password), &o)
}

// contents returns the documents of ns sorted by _id, as Extended JSON
// with sorted keys, so that comparisons ignore field order.
func contents(t testing.TB, srv *mongotest.Server, ns string) []string {
	t.Helper()
	db, name, _ := strings.Cut(ns, ".")
	cur, err := srv.Client.Database(db).Collection(name).Find(context.Background(), D{}, options.Find().SetSort(D{{Key: "_id", Value: 1}}))
	require.NoError(t, err)
	var out []string
	for cur.Next(context.Background()) {
		out = append(out, sortedJSON(t, cur.Current))
	}
	require.NoError(t, cur.Err())
	return out
}

func sortedJSON(t testing.TB, doc any) string {
	t.Helper()
	b, err := bson.Marshal(doc)
	require.NoError(t, err)
	var m any
	require.NoError(t, bson.Unmarshal(b, &m))
	out, err := bson.MarshalExtJSON(D{{Key: "d", Value: sortKeys(m)}}, false, false)
	require.NoError(t, err)
	return string(out)
}

func sortKeys(v any) any {
	switch x := v.(type) {
	case D:
		out := make(D, len(x))
		for i, e := range x {
			out[i] = bson.E{Key: e.Key, Value: sortKeys(e.Value)}
		}
		slices.SortFunc(out, func(a, b bson.E) int { return strings.Compare(a.Key, b.Key) })
		return out
	case bson.M:
		out := D{}
		for k, v := range x {
			out = append(out, bson.E{Key: k, Value: v})
		}
		return sortKeys(out)
	case A:
		out := make(A, len(x))
		for i, e := range x {
			out[i] = sortKeys(e)
		}
		return out
	}
	return v
}

func docsOf(t testing.TB, docs ...D) []string {
	var out []string
	for _, d := range docs {
		out = append(out, sortedJSON(t, d))
	}
	return out
}

func indexList(t testing.TB, srv *mongotest.Server, ns string) []string {
	db, name, _ := strings.Cut(ns, ".")
	specs, err := srv.Client.Database(db).Collection(name).Indexes().ListSpecifications(context.Background())
	require.NoError(t, err)
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	return names
}

func collectionNames(t testing.TB, srv *mongotest.Server, db string) []string {
	names, err := srv.Client.Database(db).ListCollectionNames(context.Background(), D{})
	require.NoError(t, err)
	slices.Sort(names)
	return names
}

func id(v any) D { return D{{Key: "_id", Value: v}} }

func ins(ns string, doc D) D {
	return D{{Key: "op", Value: "i"}, {Key: "ns", Value: ns}, {Key: "o", Value: doc}}
}
func upd(ns string, idv any, o D) D {
	return D{{Key: "op", Value: "u"}, {Key: "ns", Value: ns}, {Key: "o", Value: o}, {Key: "o2", Value: id(idv)}}
}
func del(ns string, idv any) D {
	return D{{Key: "op", Value: "d"}, {Key: "ns", Value: ns}, {Key: "o", Value: id(idv)}}
}
func cmd(db string, o D) D {
	return D{{Key: "op", Value: "c"}, {Key: "ns", Value: db + ".$cmd"}, {Key: "o", Value: o}}
}
func diff(d D) D { return D{{Key: "$v", Value: int32(2)}, {Key: "diff", Value: d}} }

// txn is an applyOps entry of transaction n; prev is the timestamp of its
// previous entry (zero for the first), extra its partialTxn or prepare flag.
func txn(n int64, prev bson.Timestamp, ops A, extra ...bson.E) D {
	o := append(D{{Key: "applyOps", Value: ops}}, extra...)
	return D{
		{Key: "op", Value: "c"}, {Key: "ns", Value: "admin.$cmd"}, {Key: "o", Value: o},
		{Key: "lsid", Value: D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{byte(n)}, 16)}}}},
		{Key: "txnNumber", Value: n},
		{Key: "prevOpTime", Value: D{{Key: "ts", Value: prev}, {Key: "t", Value: int64(-1)}}},
	}
}

func txnCmd(n int64, prev bson.Timestamp, o D) D {
	e := txn(n, prev, nil)
	e[2] = bson.E{Key: "o", Value: o}
	return e
}

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
				assert.Equal(t, docsOf(t, D{{Key: "_id", Value: 1}, {Key: "a", Value: 2}}, D{{Key: "_id", Value: 2}, {Key: "a", Value: 1}}), contents(t, srv, db+".c"))
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
				assert.Equal(t, docsOf(t,
					D{{Key: "_id", Value: 1}, {Key: "a", Value: 5}},
					D{{Key: "_id", Value: 2}, {Key: "a", Value: 7}},
					D{{Key: "_id", Value: 3}, {Key: "z", Value: "new"}},
				), contents(t, srv, db+".c"))
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
				assert.Equal(t, docsOf(t,
					D{{Key: "_id", Value: 1}, {Key: "a", Value: 2}, {Key: "b", Value: D{{Key: "c", Value: 5}}}, {Key: "f", Value: 3}},
					D{{Key: "_id", Value: 2}, {Key: "arr", Value: A{1, 9}}, {Key: "objs", Value: A{D{{Key: "x", Value: 1}}, D{{Key: "x", Value: 7}}, D{{Key: "x", Value: 3}}}}},
				), contents(t, srv, db+".c"))
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
				assert.Equal(t, docsOf(t, D{{Key: "_id", Value: 1}, {Key: "a", Value: D{{Key: "x", Value: 2}}}}), contents(t, srv, db+".c"))
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
				assert.Equal(t, []string{"c", "n"}, collectionNames(t, srv, db))
				assert.Equal(t, []string{"_id_", "j_-1"}, indexList(t, srv, db+".n"))
				assert.Equal(t, docsOf(t, D{{Key: "_id", Value: 1}, {Key: "k", Value: "x"}}), contents(t, srv, db+".n"))
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
				assert.Equal(t, []string{"a2", "b"}, collectionNames(t, srv, db))
				assert.Equal(t, docsOf(t, id(1), id(10)), contents(t, srv, db+".a2"))
				assert.Equal(t, docsOf(t, id(4)), contents(t, srv, db+"x.other"), "dropped, then written again")
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
				assert.Equal(t, docsOf(t, D{{Key: "_id", Value: 1}, {Key: "x", Value: 1}}, id(2), id(3), id(4), id(5), id(6)), contents(t, srv, db+".c"))
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
				assert.Equal(t, docsOf(t, id(1), id(2)), contents(t, srv, db+".r_c"), "renamed")
				assert.Equal(t, []string{"r_c"}, collectionNames(t, srv, db))
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
				assert.Equal(t, docsOf(t, id(1), id(2)), contents(t, srv, db+".c"), "entries before the limit")
				assert.True(t, rep.Oplog.LimitReached)
				assert.Equal(t, entryTS(1), rep.Oplog.Last)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := srv.DB(fmt.Sprintf("replay%d", i))
			data := craftedBackup(t, tc.docs(db), tc.oplog(db), archive.TarFormat{})
			var o restore.Options
			if tc.opts != nil {
				o = tc.opts(db)
			}
			o.Client = srv.Client

			dry := o
			dry.DryRun = true
			dryRep, err := restoreBytes(t, data, dry)
			require.NoError(t, err)
			names, err := srv.Client.ListDatabaseNames(ctx, D{})
			require.NoError(t, err)
			for _, name := range names {
				assert.False(t, strings.HasPrefix(name, db), "a dry run writes nothing, yet %s exists", name)
			}

			rep, err := restoreBytes(t, data, o)
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
	data := craftedBackup(t, map[string][]D{db + ".c": docs}, oplog, archive.TarFormat{})
	rep, err := restoreBytes(t, data, restore.Options{Client: srv.Client})
	require.NoError(t, err)
	assert.EqualValues(t, 150, rep.Oplog.Updates)
	assert.Equal(t, docsOf(t, want...), contents(t, srv, db+".c"))
}

// TestReplayArchiveFormat checks replay of an archive-format backup, whose
// oplog namespace is "".oplog.
func TestReplayArchiveFormat(t *testing.T) {
	srv := mongotest.New(t)
	db := srv.DB("arch")
	data := craftedBackup(t, map[string][]D{db + ".c": {id(1)}}, []D{ins(db+".c", id(2)), del(db+".c", 1)}, archive.ArchiveFormat{})
	rep, err := restoreBytes(t, data, restore.Options{Client: srv.Client})
	require.NoError(t, err)
	assert.Equal(t, docsOf(t, id(2)), contents(t, srv, db+".c"))
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
	w, err := cipher.NewWriter(&enc, []byte(password), lowKDF)
	require.NoError(t, err)
	_, err = archive.Dump(context.Background(), w, []archive.Collection{{DB: db, Name: "c"}}, mapSource{}, &archive.DumpOptions{
		Compression: archive.NoCompression{}, Oplog: reversed(entries),
	})
	require.NoError(t, err)
	require.NoError(t, w.Close())
	_, err = restoreBytes(t, enc.Bytes(), restore.Options{Client: srv.Client})
	assert.ErrorIs(t, err, restore.ErrCorrupt)
	assert.ErrorContains(t, err, "not in timestamp order")
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
