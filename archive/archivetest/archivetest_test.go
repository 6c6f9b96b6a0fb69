package archivetest_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/archive/archivetest"
)

func TestBuiltinCompressions(t *testing.T) {
	for _, c := range []archive.Compression{archive.NewGzip(archive.DefaultGzipLevel), archive.NewSerialGzip(1), archive.NewZstd(archive.DefaultZstdLevel), archive.NoCompression{}} {
		t.Run(c.Name(), func(t *testing.T) { archivetest.RunCompression(t, c) })
	}
}

func TestBuiltinFormats(t *testing.T) {
	for _, f := range []archive.Format{archive.TarFormat{}, archive.ArchiveFormat{}} {
		t.Run(f.Name(), func(t *testing.T) { archivetest.RunFormat(t, f) })
	}
}

// TestPluggedCompression runs the suite on a compression of the embedder's
// own, which only Open with OpenOptions recognises.
func TestPluggedCompression(t *testing.T) {
	archivetest.RunCompression(t, archivetest.Foreign)
}

// TestForeignIsForeign checks that archive.Open does not know Foreign, so
// that tests built on it show the plugging, not the built-ins.
func TestForeignIsForeign(t *testing.T) {
	var buf bytes.Buffer
	w, err := archivetest.Foreign.NewWriter(&buf)
	require.NoError(t, err)
	tw, err := archive.TarFormat{}.NewWriter(w, archive.Header{}, nil)
	require.NoError(t, err)
	require.NoError(t, tw.Close())
	require.NoError(t, w.Close())
	_, err = archive.Open(bytes.NewReader(buf.Bytes()), nil)
	require.ErrorIs(t, err, archive.ErrUnknownFormat)
	assert.Contains(t, err.Error(), "OpenOptions", "the error says how to open it")
	_, err = archive.Open(bytes.NewReader(buf.Bytes()), &archive.OpenOptions{Compressions: []archive.Compression{archivetest.Foreign}})
	assert.NoError(t, err)
}

// An embedder's own compression: Open does not know it unless given in OpenOptions.
func Example_openWith() {
	var buf bytes.Buffer
	zw, _ := archivetest.Foreign.NewWriter(&buf)
	w, _ := archive.TarFormat{}.NewWriter(zw, archive.Header{}, nil)
	_ = w.Close()
	_ = zw.Close()

	_, err := archive.Open(bytes.NewReader(buf.Bytes()), nil)
	fmt.Println(errors.Is(err, archive.ErrUnknownFormat))
	_, err = archive.Open(bytes.NewReader(buf.Bytes()), &archive.OpenOptions{Compressions: []archive.Compression{archivetest.Foreign}})
	fmt.Println(err)
	// Output:
	// true
	// <nil>
}
