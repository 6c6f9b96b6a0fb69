package testnode

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/slot"
)

// Synthetic is a [slot.Source] of generated documents: collections of docs
// of about 1 KiB, half text and half incompressible bytes. Each collection
// cycles through a pool of its own, precomputed so that a benchmark
// measures the pipeline, not the generator; pools differ between
// collections (real collections do not repeat each other) and are 16 MiB
// at most, more than zstd's window, so that ratios stay honest.
type Synthetic struct {
	collections int
	perColl     int64 // bytes per collection
	pools       [][][]byte
}

// NewSynthetic returns a Synthetic of total bytes in the given number of
// collections.
func NewSynthetic(collections int, total int64) *Synthetic {
	s := &Synthetic{collections: collections, perColl: total / int64(collections)}
	for c := range collections {
		rng := rand.New(rand.NewPCG(1, uint64(c)))
		var pool [][]byte
		for size, i := int64(0), 0; size < min(s.perColl, 16<<20); i++ {
			noise := make([]byte, 400)
			for j := range noise {
				noise[j] = byte(rng.Uint32())
			}
			doc, _ := bson.Marshal(bson.D{
				{Key: "_id", Value: bson.NewObjectID()},
				{Key: "name", Value: fmt.Sprintf("customer-%06d", i)},
				{Key: "email", Value: fmt.Sprintf("customer%06d@example.com", i)},
				{Key: "balance", Value: rng.Float64() * 1e6},
				{Key: "created", Value: bson.NewDateTimeFromTime(time.Unix(int64(rng.Uint32()), 0))},
				{Key: "tags", Value: bson.A{"retail", "eu", fmt.Sprint(i % 17)}},
				{Key: "notes", Value: fmt.Sprintf("order history for customer %d: %s", i, "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. ut enim ad minim veniam, quis nostrud exercitation ullamco laboris")},
				{Key: "blob", Value: bson.Binary{Data: noise}},
			})
			pool = append(pool, doc)
			size += int64(len(doc))
		}
		s.pools = append(s.pools, pool)
	}
	return s
}

// NewSyntheticRecords returns a Synthetic of total bytes in the given
// number of collections whose documents are [Records], as compressible as
// application data, instead of half random bytes.
func NewSyntheticRecords(collections int, total int64) *Synthetic {
	s := &Synthetic{collections: collections, perColl: total / int64(collections)}
	for c := range collections {
		gen := NewRecords(uint64(c))
		var pool [][]byte
		for size := int64(0); size < min(s.perColl, 16<<20); {
			doc := gen.Next()
			pool = append(pool, doc)
			size += int64(len(doc))
		}
		s.pools = append(s.pools, pool)
	}
	return s
}

// Size is the bytes of documents that a backup of s reads.
func (s *Synthetic) Size() int64 { return s.perColl * int64(s.collections) }

// Plan lists the collections bench.c0, bench.c1...
func (s *Synthetic) Plan(context.Context) (slot.Plan, error) {
	p := slot.Plan{DataSize: s.Size()}
	for i := range s.collections {
		p.Collections = append(p.Collections, archive.Collection{DB: "bench", Name: fmt.Sprintf("c%d", i), Type: "collection"})
	}
	return p, nil
}

// Documents emits the documents of c, cycling through its pool.
func (s *Synthetic) Documents(ctx context.Context, c archive.Collection, emit func([]byte) error) error {
	var idx int
	fmt.Sscanf(c.Name, "c%d", &idx)
	pool := s.pools[idx]
	var n int64
	for i := 0; n < s.perColl; i++ {
		doc := pool[i%len(pool)]
		if err := emit(doc); err != nil {
			return err
		}
		n += int64(len(doc))
	}
	return nil
}
