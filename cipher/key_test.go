package cipher

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKey encrypts streams under one Key: each opens with NewReader and the
// password (the format is NewWriter's), they share the salt but not the
// IV, and a Keyring opens them all with one derivation.
func TestKey(t *testing.T) {
	k, err := NewKey(testPassword, testOpts)
	require.NoError(t, err)
	var streams [][]byte
	for i := range 3 {
		var buf bytes.Buffer
		w, err := k.NewWriter(&buf)
		require.NoError(t, err)
		writeOdd(t, w, pattern(1000*i+1))
		require.NoError(t, w.Close())
		streams = append(streams, buf.Bytes())
	}
	h0, h1 := streams[0][:headerSize], streams[1][:headerSize]
	assert.Equal(t, h0[20:52], h1[20:52], "one salt")
	assert.NotEqual(t, h0[52:68], h1[52:68], "an IV each")

	ring := NewKeyring(testPassword, nil)
	for i, s := range streams {
		r, err := NewReader(bytes.NewReader(s), int64(len(s)), testPassword, nil)
		require.NoError(t, err)
		got, err := io.ReadAll(r)
		require.NoError(t, err)
		assert.Equal(t, pattern(1000*i+1), got, "NewReader opens stream %d", i)

		r, err = ring.NewReader(bytes.NewReader(s), int64(len(s)))
		require.NoError(t, err)
		require.NoError(t, r.Verify(context.Background()))
	}
	assert.Len(t, ring.keys, 1, "the keyring derived one key for the three streams")

	// Another Key has another salt: the keyring derives it too.
	k2, err := NewKey(testPassword, testOpts)
	require.NoError(t, err)
	var buf bytes.Buffer
	w, err := k2.NewWriter(&buf)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	_, err = ring.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	require.NoError(t, err)
	assert.Len(t, ring.keys, 2)

	// A wrong password stays wrong for every stream, cached or not.
	wrong := NewKeyring([]byte("wrong"), nil)
	for range 2 {
		_, err = wrong.NewReader(bytes.NewReader(streams[0]), int64(len(streams[0])))
		assert.ErrorIs(t, err, ErrWrongPassword)
	}

	_, err = NewKey(nil, nil)
	assert.ErrorIs(t, err, ErrEmptyPassword)
	_, err = NewKey(testPassword, &Options{LogN: 30})
	assert.ErrorIs(t, err, ErrKDFTooExpensive)
}

// TestKeyMarshal round-trips a Key through its encoding, which writes
// streams the password opens, and refuses a damaged or foreign encoding.
func TestKeyMarshal(t *testing.T) {
	k, err := NewKey(testPassword, testOpts)
	require.NoError(t, err)
	b, err := k.MarshalBinary()
	require.NoError(t, err)
	var k2 Key
	require.NoError(t, k2.UnmarshalBinary(b))
	var buf bytes.Buffer
	w, err := k2.NewWriter(&buf)
	require.NoError(t, err)
	writeOdd(t, w, pattern(5000))
	require.NoError(t, w.Close())
	r, err := NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()), testPassword, nil)
	require.NoError(t, err)
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Equal(t, pattern(5000), got)

	for name, bad := range map[string][]byte{
		"flipped":   append(append([]byte(nil), b[:40]...), append([]byte{b[40] ^ 1}, b[41:]...)...),
		"truncated": b[:len(b)-1],
		"foreign":   append([]byte("KEEPSLOT-KEY2"), b[13:]...),
		"empty":     nil,
	} {
		err := new(Key).UnmarshalBinary(bad)
		assert.ErrorIs(t, err, ErrCorrupt, name)
	}
}
