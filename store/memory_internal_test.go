package store

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memData.ReadAt agrees with bytes.Reader over the same bytes, for pieces
// of uneven sizes and every offset and length.
func TestMemDataReadAt(t *testing.T) {
	var d memData
	var all []byte
	for i, n := range []int{3, 1, 0, 7, 2, 5} {
		p := bytes.Repeat([]byte{byte('a' + i)}, n)
		d.add(p)
		all = append(all, p...)
	}
	require.Equal(t, int64(len(all)), d.size)
	want := bytes.NewReader(all)
	for off := -1; off <= len(all)+2; off++ {
		for n := 0; n <= len(all)+2; n++ {
			got, wantb := make([]byte, n), make([]byte, n)
			gn, gerr := d.ReadAt(got, int64(off))
			wn, werr := want.ReadAt(wantb, int64(off))
			require.Equal(t, wn, gn, "off %d len %d", off, n)
			require.Equal(t, wantb[:wn], got[:gn], "off %d len %d", off, n)
			if werr == io.EOF {
				assert.ErrorIs(t, gerr, io.EOF, "off %d len %d", off, n)
			} else {
				assert.Equal(t, werr == nil, gerr == nil, "off %d len %d: %v / %v", off, n, werr, gerr)
			}
		}
	}
}
