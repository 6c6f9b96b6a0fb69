package restore_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/restore"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// BenchmarkRestore restores a backup of 16 MiB of BSON in 4 collections
// into the embedded server and, in the same benchmark, inserts the same
// documents with the raw driver as Restore does: InsertMany, unordered, in
// batches of 1000, 4 batches at once. It reports the restore's MB/s of BSON
// and documents/s, the raw inserts' MB/s, and the restore's time over
// theirs as x-raw-insert (target: at most 1.2).
func BenchmarkRestore(b *testing.B) {
	srv := mongotest.New(b)
	ctx := context.Background()
	src := testnode.NewSynthetic(4, 16<<20)

	s, err := slot.New(src, slot.Config{Store: store.Memory(), StateDir: b.TempDir(), KDF: testnode.LowKDF,
		Spill: archive.Spill{Dir: b.TempDir()}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	require.NoError(b, s.Role().Set())
	require.NoError(b, s.Start(ctx, []byte(testnode.Password)))
	st, err := s.Wait(ctx)
	require.NoError(b, err)
	require.Equal(b, slot.StateReady, st.State, st.Error)
	var file bytes.Buffer
	_, err = s.Retrieve(ctx, &file)
	require.NoError(b, err)
	require.NoError(b, s.Close())

	// The raw inserts' batches, built once, outside the timing.
	plan, _ := src.Plan(ctx)
	type rawBatch struct {
		coll string
		docs []any
	}
	var batches []rawBatch
	var bsonBytes, docs int64
	for _, c := range plan.Collections {
		var cur []any
		require.NoError(b, src.Documents(ctx, c, func(doc []byte) error {
			cur = append(cur, bson.Raw(append([]byte(nil), doc...)))
			bsonBytes += int64(len(doc))
			docs++
			if len(cur) == 1000 {
				batches = append(batches, rawBatch{c.Name, cur})
				cur = nil
			}
			return nil
		}))
		if len(cur) > 0 {
			batches = append(batches, rawBatch{c.Name, cur})
		}
	}
	rawInsert := func() {
		work := make(chan rawBatch)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for bt := range work {
					_, err := srv.Client.Database(srv.DB("raw")).Collection(bt.coll).InsertMany(ctx, bt.docs, options.InsertMany().SetOrdered(false))
					if err != nil {
						b.Error(err)
					}
				}
			}()
		}
		for _, bt := range batches {
			work <- bt
		}
		close(work)
		wg.Wait()
	}
	drop := func() {
		for _, db := range []string{srv.DB("raw"), srv.DB("restored")} {
			require.NoError(b, srv.Client.Database(db).Drop(ctx))
		}
	}

	var raw, restoring time.Duration
	b.SetBytes(bsonBytes)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		rawInsert()
		raw += time.Since(t0)

		t0 = time.Now()
		rep, err := restore.Run(ctx, bytes.NewReader(file.Bytes()), int64(file.Len()), []byte(testnode.Password), &restore.Options{
			Conn:    conn.Config{Client: srv.Client},
			Renames: []namespace.Rename{{From: "bench.*", To: srv.DB("restored") + ".*"}},
			Logger:  slog.New(slog.DiscardHandler),
		})
		restoring += time.Since(t0)
		require.NoError(b, err)
		require.Equal(b, docs, rep.Documents)

		b.StopTimer()
		drop()
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(float64(bsonBytes)*n/restoring.Seconds()/1e6, "restore-MB/s")
	b.ReportMetric(float64(docs)*n/restoring.Seconds(), "restore-docs/s")
	b.ReportMetric(float64(bsonBytes)*n/raw.Seconds()/1e6, "raw-insert-MB/s")
	b.ReportMetric(restoring.Seconds()/raw.Seconds(), "x-raw-insert")
}

// EnvMongorestore and EnvMongodump point BenchmarkRestoreSpeed at stock
// mongorestore and mongodump binaries (built from mongo-tools' source, see
// docs/benchmarks.md); without EnvMongorestore the side-by-side is left
// out. EnvMongodump defaults to mongodump beside mongorestore.
const (
	EnvMongorestore = "KEEPSLOT_MONGORESTORE"
	EnvMongodump    = "KEEPSLOT_MONGODUMP"
)

// BenchmarkRestoreSpeed's flags: the sizes, and restore's Parallel and
// BatchSize, which the floor uses too (0: restore's defaults).
var (
	speedSizes    = flag.String("speed.sizes", "10MB,100MB", "BenchmarkRestoreSpeed: data sizes, comma-separated (10MB, 100MB)")
	speedParallel = flag.Int("speed.parallel", 0, "BenchmarkRestoreSpeed: restore's and the floor's concurrent batches; 0 for restore's default")
	speedBatch    = flag.Int("speed.batch", 0, "BenchmarkRestoreSpeed: restore's and the floor's documents per batch; 0 for restore's default")
)

// BenchmarkRestoreSpeed restores a backup of 10 MB and 100 MB of orders
// (testnode.Records, 4 collections), taken with the default settings,
// into the embedded server in its own process, in turns with the floor:
// the same documents, read from the server beforehand, inserted with the
// driver alone as restore sends them (InsertMany, unordered, in batches of
// restore's size, as many at once as restore's workers, into collections
// created first). With KEEPSLOT_MONGORESTORE set, each round also runs
// stock mongorestore --archive --gzip --noIndexRestore on a mongodump
// --archive --gzip of the same data, and the same restore again, both
// through a relay (see relay) that removes from each insert the field
// bypassEmptyTsReplacement, which mongorestore sends to a server of 7.0
// and FerretDB v1 refuses. The side that goes first changes every round.
//
// Reported: each side's mean wall time (restore-s, floor-s,
// mongorestore-s, relayed-restore-s), restore's over the floor's (x-floor,
// target at most 1.1) and the relayed restore's over mongorestore's
// (x-mongorestore, target at most 0.8); the key derivation alone, run in
// turns too (kdf-s: the default scrypt, which a restore pays once before
// it writes anything), and both ratios without it (x-floor-after-kdf,
// x-mongorestore-after-kdf); and, where /proc tells, the CPU seconds of
// each side's client (restore-cpu-s, ...) and of the server while it ran
// (restore-server-cpu-s, ...). Each round's times are logged, for ranges.
func BenchmarkRestoreSpeed(b *testing.B) {
	mongorestore := os.Getenv(EnvMongorestore)
	mongodump := os.Getenv(EnvMongodump)
	if mongorestore != "" && mongodump == "" {
		mongodump = filepath.Join(filepath.Dir(mongorestore), "mongodump")
	}
	parallel, batchSize := *speedParallel, *speedBatch
	if parallel <= 0 {
		parallel = 4 // restore's default
	}
	if batchSize <= 0 {
		batchSize = 1000 // restore's default
	}
	for _, size := range strings.Split(*speedSizes, ",") {
		total, err := parseSpeedSize(size)
		require.NoError(b, err)
		srv, stop, err := mongotest.Start()
		require.NoError(b, err)
		ctx := context.Background()
		var colls []string
		for i := range 4 {
			colls = append(colls, fmt.Sprintf("orders%d", i))
		}
		var nss []string
		for _, c := range colls {
			nss = append(nss, srv.DB("shop")+"."+c)
		}
		bsonBytes, docs, err := testnode.SeedRecords(ctx, srv.Client, nss, total)
		require.NoError(b, err)

		// keepslot's backup, with the default settings but the store.
		s, err := backup.New(&backup.Source{Conn: conn.Config{Client: srv.Client}, Filter: namespace.Filter{Include: []string{srv.DB("shop") + ".*"}}},
			slot.Config{Store: store.Memory(), StateDir: b.TempDir(), Spill: archive.Spill{Dir: b.TempDir()}, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(b, err)
		require.NoError(b, s.Role().Set())
		require.NoError(b, s.Start(ctx, []byte(testnode.Password)))
		st, err := s.Wait(ctx)
		require.NoError(b, err)
		require.Equal(b, slot.StateReady, st.State, st.Error)
		var file bytes.Buffer
		_, err = s.Retrieve(ctx, &file)
		require.NoError(b, err)
		require.NoError(b, s.Close())

		// The floor's batches, read once, in the archive's order.
		type rawBatch struct {
			coll string
			docs []any
		}
		var batches []rawBatch
		for _, coll := range colls {
			cur, err := srv.Client.Database(srv.DB("shop")).Collection(coll).Find(ctx, bson.D{})
			require.NoError(b, err)
			var docs []any
			for cur.Next(ctx) {
				docs = append(docs, bson.Raw(bytes.Clone(cur.Current)))
				if len(docs) == batchSize {
					batches = append(batches, rawBatch{coll, docs})
					docs = nil
				}
			}
			require.NoError(b, cur.Err())
			if len(docs) > 0 {
				batches = append(batches, rawBatch{coll, docs})
			}
		}

		restoreWith := func(client *mongo.Client, db string) {
			rep, err := restore.Run(ctx, bytes.NewReader(file.Bytes()), int64(file.Len()), []byte(testnode.Password), &restore.Options{
				Conn:      conn.Config{Client: client},
				Renames:   []namespace.Rename{{From: srv.DB("shop") + ".*", To: srv.DB(db) + ".*"}},
				Parallel:  parallel,
				BatchSize: batchSize,
				Logger:    slog.New(slog.DiscardHandler),
			})
			require.NoError(b, err)
			require.Equal(b, docs, rep.Documents)
		}
		sides := []string{"floor", "restore"}
		run := map[string]func() float64{ // each returns its client's CPU seconds, or -1
			"floor": func() float64 {
				cpu := selfCPU()
				db := srv.Client.Database(srv.DB("floor"))
				for _, coll := range colls {
					require.NoError(b, db.CreateCollection(ctx, coll))
				}
				work := make(chan rawBatch)
				var wg sync.WaitGroup
				for range parallel {
					wg.Go(func() {
						for bt := range work {
							if _, err := db.Collection(bt.coll).InsertMany(ctx, bt.docs, options.InsertMany().SetOrdered(false)); err != nil {
								b.Error(err)
							}
						}
					})
				}
				for _, bt := range batches {
					work <- bt
				}
				close(work)
				wg.Wait()
				return cpu.since()
			},
			"restore": func() float64 {
				cpu := selfCPU()
				restoreWith(srv.Client, "restore")
				return cpu.since()
			},
		}
		if mongorestore != "" {
			dump := filepath.Join(b.TempDir(), "dump.archive.gz")
			out, err := exec.Command(mongodump, "--uri", srv.URI, "--db", srv.DB("shop"), "--archive="+dump, "--gzip").CombinedOutput()
			require.NoError(b, err, "mongodump: %s", out)
			if fi, err := os.Stat(dump); err == nil {
				b.Logf("%s: mongodump's archive %d bytes", size, fi.Size())
			}
			relayURI := relay(b, srv.URI)
			relayed, err := mongotest.Connect(ctx, relayURI)
			require.NoError(b, err)
			defer relayed.Disconnect(ctx)
			sides = append(sides, "mongorestore", "relayed-restore")
			run["mongorestore"] = func() float64 {
				cmd := exec.Command(mongorestore, "--uri", relayURI, "--archive="+dump, "--gzip", "--noIndexRestore",
					"--nsFrom", srv.DB("shop")+".*", "--nsTo", srv.DB("mongorestore")+".*")
				out, err := cmd.CombinedOutput()
				require.NoError(b, err, "mongorestore: %s", out)
				return (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
			}
			run["relayed-restore"] = func() float64 {
				cpu := selfCPU()
				restoreWith(relayed, "relayed-restore")
				return cpu.since()
			}
		}
		count := func(db string) int64 {
			var n int64
			for _, coll := range colls {
				c, err := srv.Client.Database(srv.DB(db)).Collection(coll).CountDocuments(ctx, bson.D{})
				require.NoError(b, err)
				n += c
			}
			return n
		}
		// The key derivation alone, as restore.Run does it first.
		sides = append(sides, "kdf")
		run["kdf"] = func() float64 {
			cpu := selfCPU()
			_, err := cipher.NewReader(bytes.NewReader(file.Bytes()), int64(file.Len()), []byte(testnode.Password), nil)
			require.NoError(b, err)
			return cpu.since()
		}
		server := serverPID()

		b.Run(size, func(b *testing.B) {
			secs := map[string][]float64{}
			cpus := map[string]float64{}
			serverCPU := map[string]float64{}
			b.ResetTimer()
			for i := range b.N {
				var round []string
				for k := range sides {
					side := sides[(i+k)%len(sides)]
					srvCPU := procCPU(server)
					t0 := time.Now()
					cpu := run[side]()
					d := time.Since(t0).Seconds()
					secs[side] = append(secs[side], d)
					cpus[side] += cpu
					serverCPU[side] += srvCPU.since()
					round = append(round, fmt.Sprintf("%s %.2fs", side, d))
					if side == "kdf" {
						continue
					}
					b.StopTimer()
					n := count(side)
					require.Equal(b, docs, n, "%s wrote %d documents of %d", side, n, docs)
					require.NoError(b, srv.Client.Database(srv.DB(side)).Drop(ctx))
					b.StartTimer()
				}
				b.Logf("%s round %d: %s; load %s", size, i+1, strings.Join(round, ", "), loadAvg())
			}
			mean := func(side string) float64 {
				var sum float64
				for _, s := range secs[side] {
					sum += s
				}
				return sum / float64(len(secs[side]))
			}
			for _, side := range sides {
				b.ReportMetric(mean(side), side+"-s")
				if cpus[side] >= 0 {
					b.ReportMetric(cpus[side]/float64(b.N), side+"-cpu-s")
				}
				if server > 0 {
					b.ReportMetric(serverCPU[side]/float64(b.N), side+"-server-cpu-s")
				}
			}
			b.ReportMetric(mean("restore")/mean("floor"), "x-floor")
			b.ReportMetric((mean("restore")-mean("kdf"))/mean("floor"), "x-floor-after-kdf")
			if mongorestore != "" {
				b.ReportMetric(mean("relayed-restore")/mean("mongorestore"), "x-mongorestore")
				b.ReportMetric((mean("relayed-restore")-mean("kdf"))/mean("mongorestore"), "x-mongorestore-after-kdf")
			}
			b.ReportMetric(float64(bsonBytes)/mean("restore")/1e6, "restore-MB/s")
			b.Logf("%s: %d documents, %d bytes of BSON; backup %d bytes; %d batches at once, %d documents each",
				size, docs, bsonBytes, file.Len(), parallel, batchSize)
		})
		require.NoError(b, stop())
	}
}

// parseSpeedSize parses 10MB or 100MB (decimal) or 64MiB (binary).
func parseSpeedSize(s string) (int64, error) {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"GB", 1e9}, {"MB", 1e6}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			return v * u.mult, err
		}
	}
	return 0, fmt.Errorf("size %q: want a number and MB, MiB, GB or GiB", s)
}

// cpuMark is a process's CPU time at a moment, from /proc (Linux); -1
// where there is none.
type cpuMark struct {
	pid   int
	ticks float64
}

// procCPU marks the CPU time so far of process pid (0: none).
func procCPU(pid int) cpuMark {
	if pid <= 0 {
		return cpuMark{ticks: -1}
	}
	return cpuMark{pid: pid, ticks: cpuTicks(fmt.Sprintf("/proc/%d/stat", pid))}
}

// selfCPU marks this process's CPU time so far.
func selfCPU() cpuMark { return procCPU(os.Getpid()) }

// since returns the CPU seconds spent since the mark, or -1.
func (m cpuMark) since() float64 {
	if m.ticks < 0 {
		return -1
	}
	now := cpuTicks(fmt.Sprintf("/proc/%d/stat", m.pid))
	if now < 0 {
		return -1
	}
	return (now - m.ticks) / 100 // USER_HZ, 100 on Linux
}

// cpuTicks reads utime + stime from a /proc/PID/stat file, or -1.
func cpuTicks(path string) float64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	// The fields after the command's name, which is in parentheses:
	// state ppid ... utime (14th field of the line) stime (15th).
	_, rest, ok := bytes.Cut(data, []byte(") "))
	if !ok {
		return -1
	}
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	s, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return u + s
}

// serverPID returns the process id of the embedded server, a child of
// this process named devserver, or 0.
func serverPID() int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		name, rest, ok := bytes.Cut(data, []byte(") "))
		f := strings.Fields(string(rest))
		if !ok || len(f) < 2 || !bytes.HasSuffix(name, []byte("(devserver")) || f[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		return pid
	}
	return 0
}

// loadAvg returns the system's load averages, or "?".
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// relay forwards connections from a loopback port to the server of uri
// and returns a connection string to the port. It passes every message as
// it is but insert commands (OP_MSG), from whose body it removes the field
// bypassEmptyTsReplacement: stock mongorestore sends it to a server that
// says it is MongoDB 7.0.13 or later, which FerretDB v1 does, and FerretDB
// refuses the command for it. The field only keeps the server from filling
// in empty timestamps, which these documents have none of.
func relay(b *testing.B, uri string) string {
	host := strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", host)
			if err != nil {
				c.Close()
				continue
			}
			go func() {
				_, _ = io.Copy(c, s)
				c.Close()
			}()
			go func() {
				_ = relayRequests(s, c)
				s.Close()
			}()
		}
	}()
	return "mongodb://" + ln.Addr().String() + "/"
}

// relayRequests copies wire messages from src to dst, removing
// bypassEmptyTsReplacement from the body of OP_MSGs.
func relayRequests(dst io.Writer, src io.Reader) error {
	const opMsg = 2013
	r := bufio.NewReaderSize(src, 1<<16)
	var head [16]byte
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return err
		}
		n := int(binary.LittleEndian.Uint32(head[:4]))
		if n < 16 || n > 64<<20 {
			return fmt.Errorf("relay: a message of %d bytes", n)
		}
		msg := make([]byte, n)
		copy(msg, head[:])
		if _, err := io.ReadFull(r, msg[16:]); err != nil {
			return err
		}
		// Flags (4 bytes), then a body section: kind 0 and a document. A
		// message with a checksum (flag bit 0) is passed as it is.
		if binary.LittleEndian.Uint32(msg[12:]) == opMsg && n > 26 && msg[16]&1 == 0 && msg[20] == 0 {
			msg = withoutField(msg, 21, "bypassEmptyTsReplacement")
		}
		if _, err := dst.Write(msg); err != nil {
			return err
		}
	}
}

// withoutField returns msg with the top-level field key removed from the
// BSON document at off, the lengths of the document and of the message
// adjusted.
func withoutField(msg []byte, off int, key string) []byte {
	doc := bson.Raw(msg[off:])
	size := int(binary.LittleEndian.Uint32(msg[off:]))
	if size > len(doc) {
		return msg
	}
	doc = doc[:size]
	elems, err := doc.Elements()
	if err != nil {
		return msg
	}
	pos := 4
	for _, e := range elems {
		if e.Key() == key {
			out := append(bytes.Clone(msg[:off+pos]), msg[off+pos+len(e):]...)
			binary.LittleEndian.PutUint32(out, uint32(len(out)))
			binary.LittleEndian.PutUint32(out[off:], uint32(size-len(e)))
			return out
		}
		pos += len(e)
	}
	return msg
}
