package archive

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// genSource emits n documents of about size bytes for every collection,
// reusing one buffer, so that it holds no data itself.
type genSource struct {
	n, size int
	onDoc   func(ns string, i int) error
}

func (g genSource) Documents(ctx context.Context, c Collection, emit func([]byte) error) error {
	d, err := bson.Marshal(bson.D{{Key: "_id", Value: int64(0)}, {Key: "pad", Value: string(make([]byte, g.size))}})
	if err != nil {
		return err
	}
	for i := range g.n {
		if err := ctx.Err(); err != nil {
			return err
		}
		binary.LittleEndian.PutUint64(d[4+1+4:], uint64(i)) // the _id value
		copy(d[len(d)-9:], []byte{byte(i), byte(i >> 8), byte(i >> 16)})
		if g.onDoc != nil {
			if err := g.onDoc(c.Namespace(), i); err != nil {
				return err
			}
		}
		if err := emit(d); err != nil {
			return err
		}
	}
	return nil
}

func heapAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestSpillBoundedMemory writes a 20 MiB collection through a 64 KiB spill
// threshold: the heap stays far below the data size, the spill file is
// private while it exists and removed afterwards.
func TestSpillBoundedMemory(t *testing.T) {
	spill := t.TempDir()
	outPath := filepath.Join(t.TempDir(), "out.tar")
	out, err := os.Create(outPath)
	require.NoError(t, err)
	defer out.Close()

	const docSize, n = 4 << 10, 5 * 1024 // 20 MiB
	col := Collection{DB: "big", Name: "c"}
	w, err := TarFormat{}.NewWriter(out, Header{Collections: []Collection{col}}, &WriterOptions{Spill: Spill{Dir: spill, Threshold: 64 << 10}})
	require.NoError(t, err)
	cw, err := w.Collection(col)
	require.NoError(t, err)

	runtime.GC()
	base := heapAlloc()
	var peak uint64
	var spillMode os.FileMode
	sawSpill := false
	err = genSource{n: n, size: docSize, onDoc: func(_ string, i int) error {
		if i%256 == 0 {
			peak = max(peak, heapAlloc())
		}
		if i == n/2 {
			entries, err := os.ReadDir(spill)
			if err != nil {
				return err
			}
			if len(entries) == 1 {
				sawSpill = true
				fi, err := entries[0].Info()
				if err != nil {
					return err
				}
				spillMode = fi.Mode().Perm()
			}
		}
		return nil
	}}.Documents(context.Background(), col, cw.WriteDocument)
	require.NoError(t, err)
	require.NoError(t, cw.Close())
	peak = max(peak, heapAlloc())
	require.NoError(t, w.Close())

	assert.True(t, sawSpill, "the collection spilled to one file in Spill.Dir")
	assert.Equal(t, os.FileMode(0o600), spillMode)
	entries, err := os.ReadDir(spill)
	require.NoError(t, err)
	assert.Empty(t, entries, "spill file removed")
	grew := int64(peak) - int64(base)
	t.Logf("heap grew by %d KiB while writing %d MiB", grew>>10, docSize*n>>20)
	assert.Less(t, grew, int64(4<<20), "heap must not grow with the collection (20 MiB)")

	st, ok := w.Manifest().Stats("big.c")
	require.True(t, ok)
	assert.EqualValues(t, n, st.Documents)

	// And it reads back, verified against the manifest.
	_, err = out.Seek(0, io.SeekStart)
	require.NoError(t, err)
	r, err := Open(out, nil)
	require.NoError(t, err)
	require.NoError(t, drain(r))
	assert.EqualValues(t, n, r.Manifest().Namespaces[0].Documents)
}

// TestDumpParallel runs 8 collections with Parallel 4: four Documents calls
// must run at once, and progress must add up.
func TestDumpParallel(t *testing.T) {
	var cols []Collection
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		cols = append(cols, Collection{DB: "p", Name: n})
	}
	var running, maxRunning atomic.Int32
	all4 := make(chan struct{})
	var entered atomic.Int32
	src := sourceFunc(func(ctx context.Context, c Collection, emit func([]byte) error) error {
		r := running.Add(1)
		defer running.Add(-1)
		for {
			m := maxRunning.Load()
			if r <= m || maxRunning.CompareAndSwap(m, r) {
				break
			}
		}
		if entered.Add(1) == 4 {
			close(all4)
		}
		select {
		case <-all4:
		case <-ctx.Done():
			return ctx.Err()
		}
		return genSource{n: 2500, size: 100}.Documents(ctx, c, emit)
	})
	var progress []Progress
	var out bytes.Buffer
	m, err := Dump(context.Background(), &out, cols, src, &DumpOptions{
		Parallel: 4, Compression: NewZstd(DefaultZstdLevel),
		Progress: func(p Progress) { progress = append(progress, p) },
	})
	require.NoError(t, err)
	assert.EqualValues(t, 4, maxRunning.Load())
	require.Len(t, m.Namespaces, 8)
	last := progress[len(progress)-1]
	assert.Equal(t, 8, last.NamespacesDone)
	assert.Equal(t, 8, last.NamespacesTotal)
	assert.EqualValues(t, 8*2500, last.Documents)
	assert.Greater(t, len(progress), 8, "periodic reports besides the per-collection ones")
	for i := 1; i < len(progress); i++ {
		assert.GreaterOrEqual(t, progress[i].Documents, progress[i-1].Documents)
	}
	r, err := Open(&out, nil)
	require.NoError(t, err)
	require.NoError(t, drain(r))
}

type sourceFunc func(ctx context.Context, c Collection, emit func([]byte) error) error

func (f sourceFunc) Documents(ctx context.Context, c Collection, emit func([]byte) error) error {
	return f(ctx, c, emit)
}

// TestDumpCancel cancels a dump whose collections have spilled: Dump
// returns the cancellation and leaves no temporary file.
func TestDumpCancel(t *testing.T) {
	for _, f := range allFormats {
		t.Run(f.Name(), func(t *testing.T) {
			spill := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cols := []Collection{{DB: "x", Name: "a"}, {DB: "x", Name: "b"}, {DB: "x", Name: "c"}}
			var spilled atomic.Bool
			src := genSource{n: 100000, size: 1000, onDoc: func(ns string, i int) error {
				if i == 2000 && ns == "x.b" {
					entries, _ := os.ReadDir(spill)
					spilled.Store(len(entries) > 0)
					cancel()
				}
				return nil
			}}
			_, err := Dump(ctx, io.Discard, cols, src, &DumpOptions{
				Format: f, Compression: NoCompression{}, Parallel: 4,
				Writer: WriterOptions{Spill: Spill{Dir: spill, Threshold: 64 << 10}},
			})
			require.ErrorIs(t, err, context.Canceled)
			if f.Name() == "tar" {
				assert.True(t, spilled.Load(), "collections had spilled before the cancel")
			}
			entries, err := os.ReadDir(spill)
			require.NoError(t, err)
			assert.Empty(t, entries)
		})
	}
}

// TestDumpSourceError: a Source error ends the dump with that error and no
// temporary file.
func TestDumpSourceError(t *testing.T) {
	boom := errors.New("boom")
	spill := t.TempDir()
	src := genSource{n: 10000, size: 1000, onDoc: func(ns string, i int) error {
		if ns == "x.b" && i == 500 {
			return boom
		}
		return nil
	}}
	var out bytes.Buffer
	_, err := Dump(context.Background(), &out, []Collection{{DB: "x", Name: "a"}, {DB: "x", Name: "b"}}, src,
		&DumpOptions{Writer: WriterOptions{Spill: Spill{Dir: spill, Threshold: 32 << 10}}})
	require.ErrorIs(t, err, boom)
	assert.Contains(t, err.Error(), "x.b")
	entries, _ := os.ReadDir(spill)
	assert.Empty(t, entries)
	// What was written is no valid archive.
	assert.Error(t, openBytes(out.Bytes()))
}

// TestSpillDirUnwritable reports a helpful error.
func TestSpillDirUnwritable(t *testing.T) {
	_, err := Dump(context.Background(), io.Discard, []Collection{{DB: "x", Name: "a"}}, genSource{n: 100, size: 1000},
		&DumpOptions{Compression: NoCompression{}, Writer: WriterOptions{Spill: Spill{Dir: filepath.Join(t.TempDir(), "missing"), Threshold: 1 << 10}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Spill.Dir")
}

// TestSpillThresholdIsShared: the threshold bounds the memory of all the
// collections written at once, not of each: four open collections of
// 512 KiB under a 1 MiB threshold cannot all stay in memory (a threshold
// per collection would spill none), so at least two spill.
func TestSpillThresholdIsShared(t *testing.T) {
	spill := t.TempDir()
	var out bytes.Buffer
	var cols []Collection
	for _, name := range []string{"a", "b", "c", "d"} {
		cols = append(cols, Collection{DB: "shared", Name: name})
	}
	w, err := TarFormat{}.NewWriter(&out, Header{Collections: cols}, &WriterOptions{Spill: Spill{Dir: spill, Threshold: 1 << 20}})
	require.NoError(t, err)
	var cws []CollectionWriter
	for _, c := range cols {
		cw, err := w.Collection(c)
		require.NoError(t, err)
		cws = append(cws, cw)
	}
	doc, err := bson.Marshal(bson.D{{Key: "pad", Value: string(make([]byte, 8<<10))}})
	require.NoError(t, err)
	for range (512 << 10) / len(doc) { // interleaved, as a parallel dump writes
		for _, cw := range cws {
			require.NoError(t, cw.WriteDocument(doc))
		}
	}
	entries, err := os.ReadDir(spill)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(entries), 2, "2 MiB of collections in 1 MiB of memory")
	assert.Less(t, len(entries), 4, "those that fit stay in memory")
	for _, cw := range cws {
		require.NoError(t, cw.Close())
	}
	require.NoError(t, w.Close())
	entries, err = os.ReadDir(spill)
	require.NoError(t, err)
	assert.Empty(t, entries, "spill files removed")
	r, err := Open(bytes.NewReader(out.Bytes()), nil)
	require.NoError(t, err)
	require.NoError(t, drain(r))
	assert.Len(t, r.Manifest().Namespaces, 4)
}
