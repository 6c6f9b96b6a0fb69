package s3store_test

import (
	"testing"

	"github.com/keepslot/keepslot/store"
	"github.com/keepslot/keepslot/store/s3store"
	"github.com/keepslot/keepslot/store/s3store/s3test"
	"github.com/keepslot/keepslot/store/storetest"
)

// BenchmarkS3 runs storetest's write and read benchmarks against versitygw
// on 127.0.0.1 with the default 16 MiB parts, at 64 MiB and 1 GiB:
// upload MB/s and peak-heap-MiB, which must not grow with the size.
//
//	go test -run '^$' -bench BenchmarkS3 -benchtime 1x ./store/s3store/
func BenchmarkS3(b *testing.B) {
	srv := s3test.Start(b)
	bucket := srv.NewBucket(b)
	storetest.Benchmark(b, func(b *testing.B) store.Store {
		cfg := srv.Config(bucket, "bench/"+b.Name())
		cfg.PartSize = s3store.DefaultPartSize
		s, err := s3store.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}, 64<<20, 1<<30)
}
