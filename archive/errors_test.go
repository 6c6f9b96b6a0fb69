package archive

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestErrorsKeepTheirCause checks that a damaged stream's error is
// ErrCorrupt and still carries the decompressor's own error.
func TestErrorsKeepTheirCause(t *testing.T) {
	for _, c := range []Compression{NewGzip(DefaultGzipLevel), NewZstd(DefaultZstdLevel)} {
		var buf bytes.Buffer
		w, err := c.NewWriter(&buf)
		require.NoError(t, err)
		_, err = w.Write(bytes.Repeat([]byte("keepslot "), 10000))
		require.NoError(t, err)
		require.NoError(t, w.Close())

		r, err := c.NewReader(bytes.NewReader(buf.Bytes()[:buf.Len()/2]))
		require.NoError(t, err, c.Name())
		_, err = io.ReadAll(r)
		require.ErrorIs(t, err, ErrCorrupt, c.Name())
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "%s: the cause stays in the chain", c.Name())
	}
}
