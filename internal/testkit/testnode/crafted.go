package testnode

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/slot"
)

// Docs is a [slot.Source] of documents held in memory, by namespace
// ("db.coll"); a namespace with no documents is an empty collection.
type Docs map[string][]bson.D

// Plan lists the collections of d, in namespace order.
func (d Docs) Plan(context.Context) (slot.Plan, error) {
	var p slot.Plan
	for ns, docs := range d {
		db, name, _ := strings.Cut(ns, ".")
		p.Collections = append(p.Collections, archive.Collection{DB: db, Name: name, Type: "collection"})
		for _, doc := range docs {
			b, err := bson.Marshal(doc)
			if err != nil {
				return slot.Plan{}, err
			}
			p.DataSize += int64(len(b))
		}
	}
	slices.SortFunc(p.Collections, func(a, b archive.Collection) int { return strings.Compare(a.Namespace(), b.Namespace()) })
	return p, nil
}

// Documents emits the documents of c.
func (d Docs) Documents(ctx context.Context, c archive.Collection, emit func([]byte) error) error {
	for _, doc := range d[c.Namespace()] {
		b, err := bson.Marshal(doc)
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
type fixedOplog []bson.D

// EntryTS is the timestamp [CraftedBackup] gives its i-th oplog entry.
func EntryTS(i int) bson.Timestamp { return bson.Timestamp{T: 1_800_000_000, I: uint32(i + 1)} }

func (f fixedOplog) Oplog(ctx context.Context, emit func([]byte) error) (archive.OplogSpan, error) {
	for i, e := range f {
		b, err := bson.Marshal(append(bson.D{{Key: "ts", Value: EntryTS(i)}}, e...))
		if err != nil {
			return archive.OplogSpan{}, err
		}
		if err := emit(b); err != nil {
			return archive.OplogSpan{}, err
		}
	}
	return archive.OplogSpan{Start: EntryTS(0), End: EntryTS(len(f) - 1)}, nil
}

// CraftedBackup returns an encrypted backup, in format f without
// compression, of the given collections (by namespace) and, unless oplog
// is nil, of the oplog entries, each given its timestamp [EntryTS], as
// Retrieve returns one.
func CraftedBackup(t testing.TB, docs map[string][]bson.D, oplog []bson.D, f archive.Format) []byte {
	t.Helper()
	p, err := Docs(docs).Plan(context.Background())
	require.NoError(t, err)
	var enc bytes.Buffer
	w, err := cipher.NewWriter(&enc, []byte(Password), LowKDF)
	require.NoError(t, err)
	opts := &archive.DumpOptions{Format: f, Compression: archive.NoCompression{}}
	if oplog != nil {
		opts.Oplog = fixedOplog(oplog)
	}
	_, err = archive.Dump(context.Background(), w, p.Collections, Docs(docs), opts)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return enc.Bytes()
}

// ID is the document {_id: v}.
func ID(v any) bson.D { return bson.D{{Key: "_id", Value: v}} }

// Ins is an oplog entry that inserts doc into ns.
func Ins(ns string, doc bson.D) bson.D {
	return bson.D{{Key: "op", Value: "i"}, {Key: "ns", Value: ns}, {Key: "o", Value: doc}}
}

// Upd is an oplog entry that updates the document idv of ns with o.
func Upd(ns string, idv any, o bson.D) bson.D {
	return bson.D{{Key: "op", Value: "u"}, {Key: "ns", Value: ns}, {Key: "o", Value: o}, {Key: "o2", Value: ID(idv)}}
}

// Del is an oplog entry that deletes the document idv of ns.
func Del(ns string, idv any) bson.D {
	return bson.D{{Key: "op", Value: "d"}, {Key: "ns", Value: ns}, {Key: "o", Value: ID(idv)}}
}

// Cmd is an oplog entry of the command o on db.
func Cmd(db string, o bson.D) bson.D {
	return bson.D{{Key: "op", Value: "c"}, {Key: "ns", Value: db + ".$cmd"}, {Key: "o", Value: o}}
}

// Diff is the update o of a $v: 2 diff d.
func Diff(d bson.D) bson.D { return bson.D{{Key: "$v", Value: int32(2)}, {Key: "diff", Value: d}} }

// Txn is an applyOps entry of transaction n; prev is the timestamp of its
// previous entry (zero for the first), extra its partialTxn or prepare flag.
func Txn(n int64, prev bson.Timestamp, ops bson.A, extra ...bson.E) bson.D {
	o := append(bson.D{{Key: "applyOps", Value: ops}}, extra...)
	return bson.D{
		{Key: "op", Value: "c"}, {Key: "ns", Value: "admin.$cmd"}, {Key: "o", Value: o},
		{Key: "lsid", Value: bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{byte(n)}, 16)}}}},
		{Key: "txnNumber", Value: n},
		{Key: "prevOpTime", Value: bson.D{{Key: "ts", Value: prev}, {Key: "t", Value: int64(-1)}}},
	}
}

// TxnCmd is an entry of transaction n, like [Txn], of the command o
// (commitTransaction, abortTransaction).
func TxnCmd(n int64, prev bson.Timestamp, o bson.D) bson.D {
	e := Txn(n, prev, nil)
	e[2] = bson.E{Key: "o", Value: o}
	return e
}
