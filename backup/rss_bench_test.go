package backup_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/internal/testkit/mongotest"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
)

// rssSizes adds sizes to BenchmarkBackupRSS: seeding 1 GiB into the
// embedded server takes minutes, so it is asked for, as in
// go test -run '^$' -bench BackupRSS ./backup -args -rss.sizes=1GiB
var rssSizes = flag.String("rss.sizes", "", "BenchmarkBackupRSS: more data sizes to back up, comma-separated (10MB, 100MB, 1GiB)")

// rssLevels adds to each round of BenchmarkBackupRSS a keepslot backup at
// each of these gzip levels, to weigh the default against them end to end,
// as in go test -run '^$' -bench BackupRSS ./backup -args -rss.levels=1,6
var rssLevels = flag.String("rss.levels", "", "BenchmarkBackupRSS: gzip levels to compare with the default end to end, comma-separated")

// probeResult is what internal/testkit/memprobe backup prints, with its peak RSS.
type probeResult struct {
	Mode       string  `json:"mode"`
	Bytes      int64   `json:"bytes"`
	Seconds    float64 `json:"seconds"`
	Documents  int64   `json:"documents"`
	HeapSysMiB float64 `json:"heap_sys_mib"`
	PeakRSSKiB int64   `json:"peak_rss_kib"`
	PeakChunks int64   `json:"peak_chunks"`
	RSSMiB     float64 `json:"-"`
}

// BenchmarkBackupRSS measures the peak resident memory of a real process
// (internal/testkit/memprobe) that backs up the test server with the default
// settings and retrieves the backup to a file, at 10 MB and 100 MB of
// orders (testnode.Records, 4 collections; 1 GiB with -rss.sizes=1GiB),
// in turns with the baseline, the same process writing what mongodump
// --archive --gzip writes. Reported: rss-MiB, the peak RSS with the
// default settings, whose scrypt key derivation takes 32 MiB for a moment
// at the start; pipeline-rss-MiB, the same backup with a cheap
// scrypt (log2 N 10), the memory of the pipeline itself; the baseline's
// (dump-rss-MiB); keepslot's output size and wall time over the
// baseline's (x-size, x-wall), and the same at each level of -rss.levels
// (x-size-gzipN, x-wall-gzipN); and how long seeding took (seed-s).
func BenchmarkBackupRSS(b *testing.B) {
	probe := buildProbe(b)
	sizes := []string{"10MB", "100MB"}
	if *rssSizes != "" {
		sizes = append(sizes, splitList(*rssSizes)...)
	}
	var levels []int
	for _, l := range splitList(*rssLevels) {
		var level int
		_, err := fmt.Sscan(l, &level)
		require.NoError(b, err, "-rss.levels: %q is not a gzip level", l)
		levels = append(levels, level)
	}
	for _, size := range sizes {
		total, err := parseSize(size)
		require.NoError(b, err)
		srv, stop, err := mongotest.Start()
		require.NoError(b, err)
		ctx := context.Background()
		var nss []string
		for i := range 4 {
			nss = append(nss, fmt.Sprintf("%sshop.orders%d", srv.Prefix, i))
		}
		t0 := time.Now()
		_, docs, err := testnode.SeedRecords(ctx, srv.Client, nss, total)
		require.NoError(b, err)
		seed := time.Since(t0)

		b.Run(size, func(b *testing.B) {
			var ks, pipe, dump probeResult
			var ksTime, dumpTime float64
			levelBytes := make([]int64, len(levels))
			levelTime := make([]float64, len(levels))
			runProbe := func(mode string, args ...string) probeResult {
				r := runMemprobe(b, probe, srv.URI, srv.Prefix+"*", mode, args...)
				require.Equal(b, docs, r.Documents, "the %s probe backed up %d documents of %d", mode, r.Documents, docs)
				return r
			}
			// An untimed round first, for the server's caches.
			runProbe("mongodump")
			b.ResetTimer()
			for i := range b.N {
				for side := range 2 { // alternate which runs first
					if (i+side)%2 == 0 {
						r := runProbe("keepslot")
						ksTime += r.Seconds
						r.RSSMiB = max(r.RSSMiB, ks.RSSMiB)
						ks = r
						b.StopTimer()
						r = runProbe("keepslot", "-kdf-logn", "10")
						r.RSSMiB = max(r.RSSMiB, pipe.RSSMiB)
						pipe = r
						for j, level := range levels {
							r := runProbe("keepslot", "-gzip-level", fmt.Sprint(level))
							levelBytes[j], levelTime[j] = r.Bytes, levelTime[j]+r.Seconds
						}
						b.StartTimer()
					} else {
						r := runProbe("mongodump")
						dumpTime += r.Seconds
						r.RSSMiB = max(r.RSSMiB, dump.RSSMiB)
						dump = r
					}
				}
			}
			b.ReportMetric(ks.RSSMiB, "rss-MiB")
			b.ReportMetric(pipe.RSSMiB, "pipeline-rss-MiB")
			b.ReportMetric(dump.RSSMiB, "dump-rss-MiB")
			b.ReportMetric(float64(ks.Bytes)/float64(dump.Bytes), "x-size")
			b.ReportMetric(ksTime/dumpTime, "x-wall")
			for j, level := range levels {
				b.ReportMetric(float64(levelBytes[j])/float64(dump.Bytes), fmt.Sprintf("x-size-gzip%d", level))
				b.ReportMetric(levelTime[j]/dumpTime, fmt.Sprintf("x-wall-gzip%d", level))
			}
			b.ReportMetric(seed.Seconds(), "seed-s")
			b.Logf("%s: %d documents; keepslot %d bytes, %.1f MiB RSS (pipeline %.1f MiB, heap %.1f MiB, at most %d chunks of 1 MiB); baseline %d bytes, %.1f MiB RSS; seeded in %s",
				size, docs, ks.Bytes, ks.RSSMiB, pipe.RSSMiB, pipe.HeapSysMiB, pipe.PeakChunks, dump.Bytes, dump.RSSMiB, seed.Round(time.Second))
		})
		require.NoError(b, stop())
	}
}

// buildProbe builds internal/testkit/memprobe, without the race detector, into the
// benchmark's temporary directory.
func buildProbe(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "memprobe")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/keepslot/keepslot/internal/testkit/memprobe")
	out, err := cmd.CombinedOutput()
	require.NoError(b, err, "build memprobe: %s", out)
	return bin
}

// runMemprobe runs the probe once and returns its result.
func runMemprobe(b *testing.B, bin, uri, include, mode string, args ...string) probeResult {
	dir := b.TempDir()
	cmd := exec.Command(bin, append([]string{"backup", "-uri", uri, "-include", include, "-dir", dir, "-mode", mode}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(b, cmd.Run(), "memprobe backup -mode %s: %s", mode, stderr.String())
	var r probeResult
	require.NoError(b, json.Unmarshal(stdout.Bytes(), &r), stdout.String())
	// Not the rusage's Maxrss: Linux counts in it the memory of this
	// process, which the child shared until its exec.
	r.RSSMiB = float64(r.PeakRSSKiB) / 1024
	require.Positive(b, r.RSSMiB)
	require.NoError(b, os.RemoveAll(dir))
	return r
}

func splitList(s string) []string {
	var out []string
	for _, f := range bytes.Split([]byte(s), []byte(",")) {
		if f := string(bytes.TrimSpace(f)); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseSize reads 10MB, 100MB, 1GiB and the like.
func parseSize(s string) (int64, error) {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"GB", 1e9}, {"MB", 1e6}} {
		if n, ok := bytes.CutSuffix([]byte(s), []byte(u.suffix)); ok {
			var v int64
			if _, err := fmt.Sscan(string(n), &v); err != nil || v <= 0 {
				return 0, fmt.Errorf("size %q: a positive number before %s", s, u.suffix)
			}
			return v * u.mult, nil
		}
	}
	return 0, fmt.Errorf("size %q: give it in MB, MiB, GB or GiB", s)
}
