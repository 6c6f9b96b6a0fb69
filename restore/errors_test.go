package restore_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/restore"
)

// TestMalformedArchiveIsCorrupt checks that an authenticated file whose
// plaintext is no archive is ErrCorrupt, like a tampered file, and that
// the error names the archive, the layer that found the damage, not the
// cipher, whose check passed.
func TestMalformedArchiveIsCorrupt(t *testing.T) {
	var buf bytes.Buffer
	w, err := cipher.NewWriter(&buf, []byte("pw"), &cipher.Options{LogN: 10})
	require.NoError(t, err)
	_, err = io.WriteString(w, "this is no archive, though the password opens it")
	require.NoError(t, err)
	require.NoError(t, w.Close())

	_, err = restore.Run(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()), []byte("pw"), &restore.Options{DryRun: true})
	require.ErrorIs(t, err, restore.ErrCorrupt)
	assert.ErrorIs(t, err, archive.ErrUnknownFormat, "the archive's own error says what is wrong")
	assert.NotErrorIs(t, err, cipher.ErrCorrupt, "the cipher found nothing wrong")
	assert.NotContains(t, err.Error(), "cipher", "the message sends the user to the archive, not the cipher")
	assert.Equal(t, errcode.Corrupt, errcode.Of(err))
}

// TestTamperedFileIsCorrupt checks that a file that fails authentication is
// ErrCorrupt and names the cipher.
func TestTamperedFileIsCorrupt(t *testing.T) {
	var buf bytes.Buffer
	w, err := cipher.NewWriter(&buf, []byte("pw"), &cipher.Options{LogN: 10})
	require.NoError(t, err)
	_, err = io.WriteString(w, "some bytes")
	require.NoError(t, err)
	require.NoError(t, w.Close())
	data := buf.Bytes()
	data[len(data)-40] ^= 1

	_, err = restore.Run(context.Background(), bytes.NewReader(data), int64(len(data)), []byte("pw"), &restore.Options{DryRun: true})
	require.ErrorIs(t, err, restore.ErrCorrupt)
	assert.ErrorIs(t, err, cipher.ErrCorrupt)
	assert.Contains(t, err.Error(), "cipher")
}

// TestMaxKDFWork checks that Options.MaxKDFWork reaches the cipher: a cap
// below the file's scrypt work refuses it as cipher.ErrKDFTooExpensive,
// naming the option; one at its work lets the restore go on.
func TestMaxKDFWork(t *testing.T) {
	var buf bytes.Buffer
	w, err := cipher.NewWriter(&buf, []byte("pw"), &cipher.Options{LogN: 10}) // N·r·p = 2^10·8·4
	require.NoError(t, err)
	_, err = io.WriteString(w, "this is no archive, though the password opens it")
	require.NoError(t, err)
	require.NoError(t, w.Close())

	_, err = restore.Run(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()), []byte("pw"), &restore.Options{DryRun: true, MaxKDFWork: 1<<15 - 1})
	require.ErrorIs(t, err, cipher.ErrKDFTooExpensive)
	assert.ErrorContains(t, err, "Options.MaxKDFWork")
	assert.Equal(t, errcode.Invalid, errcode.Of(err))

	_, err = restore.Run(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()), []byte("pw"), &restore.Options{DryRun: true, MaxKDFWork: 1 << 15})
	require.ErrorIs(t, err, archive.ErrUnknownFormat, "past the key derivation, to the archive")
}
