package restore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/internal/testkit/mongotest"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/restore"
)

// replayBench returns a backup of one collection of docs documents and an
// oplog of n entries on it: 60% inserts, 30% updates as $v: 2 diffs, 10%
// deletes.
func replayBench(b *testing.B, db string, docs, n int) []byte {
	seed := make([]D, docs)
	for i := range seed {
		seed[i] = D{{Key: "_id", Value: fmt.Sprintf("d%07d", i)}, {Key: "n", Value: i}, {Key: "s", Value: fmt.Sprintf("seed %d", i)}}
	}
	var oplog []D
	next := docs
	for i := range n {
		switch {
		case i%10 < 6:
			oplog = append(oplog, ins(db+".c", D{{Key: "_id", Value: fmt.Sprintf("d%07d", next)}, {Key: "n", Value: i}, {Key: "s", Value: "inserted during the backup"}}))
			next++
		case i%10 < 9:
			oplog = append(oplog, upd(db+".c", fmt.Sprintf("d%07d", i%next), diff(D{{Key: "u", Value: D{{Key: "n", Value: -i}}}, {Key: "i", Value: D{{Key: "t", Value: i}}}})))
		default:
			oplog = append(oplog, del(db+".c", fmt.Sprintf("d%07d", i%next)))
		}
	}
	return testnode.CraftedBackup(b, map[string][]D{db + ".c": seed}, oplog, archive.TarFormat{})
}

// BenchmarkOplogReplay measures how fast a restore replays an oplog, in
// entries/s of the whole restore (decryption, reading and, but for the dry
// run, writing): "dry-run" is keepslot's own cost, 100,000 entries parsed,
// filtered and translated; "ferretdb" writes 2,000 entries into the
// embedded FerretDB, whose SQLite backend pushes no filter down, so that
// every update and delete scans the collection (about 1,400 documents here):
// a real mongod finds them by the _id index.
func BenchmarkOplogReplay(b *testing.B) {
	srv := mongotest.New(b)
	round := 0 // each restore into new namespaces, across the benchmark's runs
	for _, bc := range []struct {
		name    string
		docs, n int
		dry     bool
	}{
		{"dry-run", 1000, 100000, true},
		{"ferretdb", 200, 2000, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			db := srv.DB("bench_" + bc.name[:3])
			data := replayBench(b, db, bc.docs, bc.n)
			var took time.Duration
			b.ResetTimer()
			for range b.N {
				round++
				rep, err := testnode.RestoreBytes(b, data, restore.Options{
					Conn: conn.Config{Client: srv.Client}, DryRun: bc.dry,
					Renames: []namespace.Rename{{From: db + ".*", To: fmt.Sprintf("%s_%d.*", db, round)}},
				})
				require.NoError(b, err)
				require.EqualValues(b, bc.n, rep.Oplog.Entries)
				took += rep.Duration
			}
			b.ReportMetric(float64(bc.n*b.N)/took.Seconds(), "entries/s")
		})
	}
}
