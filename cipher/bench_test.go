package cipher

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"testing"
)

const benchSize = 64 << 20

// BenchmarkEncrypt measures NewWriter throughput over 64 MiB written in
// 32 KiB pieces (as io.Copy does); key derivation is excluded.
func BenchmarkEncrypt(b *testing.B) {
	pt := pattern(benchSize)
	var salt [saltSize]byte
	var iv [ivSize]byte
	b.SetBytes(benchSize)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		w, err := newWriter(io.Discard, testPassword, fastKDF, salt, iv, ChunkSize)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for p := pt; len(p) > 0; p = p[min(32<<10, len(p)):] {
			if _, err := w.Write(p[:min(32<<10, len(p))]); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func benchStream(b *testing.B) []byte {
	var buf bytes.Buffer
	buf.Grow(benchSize + int(Overhead(benchSize)))
	var salt [saltSize]byte
	var iv [ivSize]byte
	w, err := newWriter(&buf, testPassword, fastKDF, salt, iv, ChunkSize)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := w.Write(pattern(benchSize)); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkDecrypt measures Reader throughput over 64 MiB read with
// io.Copy; key derivation and the header checks are excluded.
func BenchmarkDecrypt(b *testing.B) {
	ct := benchStream(b)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		r, err := NewReader(bytes.NewReader(ct), int64(len(ct)), testPassword, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if n, err := io.Copy(io.Discard, r); err != nil || n != benchSize {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkVerify measures Reader.Verify (MAC only) over 64 MiB.
func BenchmarkVerify(b *testing.B) {
	ct := benchStream(b)
	r, err := NewReader(bytes.NewReader(ct), int64(len(ct)), testPassword, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		if err := r.Verify(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSequential is the baseline the pipeline is measured against:
// AES-256-CTR then HMAC-SHA256 of each chunk on one goroutine.
func BenchmarkSequential(b *testing.B) {
	buf := pattern(benchSize)
	var salt [saltSize]byte
	var iv [ivSize]byte
	k, err := deriveKeys(testPassword, salt[:], fastKDF)
	if err != nil {
		b.Fatal(err)
	}
	var hdrMAC [tagSize]byte
	m := hmac.New(sha256.New, k.macKey[:])
	var tag [tagSize]byte
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		for i := 0; i < benchSize/ChunkSize; i++ {
			c := buf[i*ChunkSize : (i+1)*ChunkSize]
			k.xorChunk(&iv, uint64(i*ChunkSize), c)
			chunkTag(m, &hdrMAC, uint64(i), false, c, tag[:])
		}
	}
}

// BenchmarkPrimitiveAESCTR and BenchmarkPrimitiveHMAC measure the two
// primitives alone on this machine, to put the figures above in context.
func BenchmarkPrimitiveAESCTR(b *testing.B) {
	buf := pattern(ChunkSize)
	var salt [saltSize]byte
	var iv [ivSize]byte
	k, err := deriveKeys(testPassword, salt[:], fastKDF)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(ChunkSize)
	b.ResetTimer()
	for range b.N {
		k.xorChunk(&iv, 0, buf)
	}
}

func BenchmarkPrimitiveHMAC(b *testing.B) {
	buf := pattern(ChunkSize)
	m := hmac.New(sha256.New, make([]byte, 32))
	b.SetBytes(ChunkSize)
	b.ResetTimer()
	for range b.N {
		m.Reset()
		m.Write(buf)
		m.Sum(nil)
	}
}
