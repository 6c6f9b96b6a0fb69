package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/store"
)

// TestServerErrorKeepsTheChain checks that a driver error is classified as
// refused credentials or an unreachable server, and that the driver's own
// error can still be inspected.
func TestServerErrorKeepsTheChain(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"command unauthorized", mongo.CommandError{Code: 13, Name: "Unauthorized", Message: "not authorized on app"}, ErrUnauthorized},
		{"login failed", driver.Error{Code: 18, Message: "Authentication failed."}, ErrUnauthorized},
		{"wrapped login failed", fmt.Errorf("handshake: %w", driver.Error{Code: 18}), ErrUnauthorized},
		{"other command error", mongo.CommandError{Code: 26, Name: "NamespaceNotFound"}, ErrUnreachable},
		{"network", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, ErrUnreachable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := serverError(tc.err)
			require.ErrorIs(t, err, tc.want)
			inner := reflect.New(reflect.TypeOf(tc.err))
			assert.True(t, errors.As(err, inner.Interface()), "the driver's %T is still in the chain", tc.err)
			other := ErrUnreachable
			if tc.want == ErrUnreachable {
				other = ErrUnauthorized
			}
			assert.NotErrorIs(t, err, other)
		})
	}
	var ce mongo.CommandError
	require.ErrorAs(t, serverError(mongo.CommandError{Code: 13}), &ce)
	assert.EqualValues(t, 13, ce.Code)
}

// TestCode checks that every user-caused error has its own code, that the
// codes survive wrapping, and that each maps to an HTTP status and exit
// code.
func TestCode(t *testing.T) {
	for err, want := range map[error]ErrorCode{
		nil:                                 CodeOK,
		ErrEmptyPassword:                    CodeEmptyPassword,
		ErrNotBackupNode:                    CodeNotBackupNode,
		ErrInProgress:                       CodeInProgress,
		store.ErrBusy:                       CodeInProgress,
		ErrSlotOccupied:                     CodeSlotOccupied,
		ErrNoBackup:                         CodeNoBackup,
		ErrUnreachable:                      CodeUnreachable,
		serverError(driver.Error{Code: 18}): CodeUnauthorized,
		store.ErrUnreachable:                CodeUnreachable,
		store.ErrUnauthorized:               CodeUnauthorized,
		&SpaceError{Data: 1, Need: 2}:       CodeInsufficientSpace,
		ErrWrongPassword:                    CodeWrongPassword,
		ErrCorrupt:                          CodeCorrupt,
		archive.ErrCorrupt:                  CodeCorrupt,
		archive.ErrUnknownFormat:            CodeCorrupt,
		ErrCountMismatch:                    CodeCountMismatch,
		ErrOplogRollover:                    CodeOplogRollover,
		ErrNoOplog:                          CodeInvalid,
		Filter{Include: []string{"["}}.Validate(): CodeInvalid,
		cipher.ErrKDFTooExpensive:                 CodeInvalid,
		context.Canceled:                          CodeCancelled,
		io.ErrUnexpectedEOF:                       CodeInternal,
		codedErr{}:                                CodeExists,
	} {
		wrapped := err
		if err != nil {
			wrapped = fmt.Errorf("backup: %w", err)
		}
		assert.Equal(t, want, Code(wrapped), "%v", err)
	}

	exits := map[int]bool{}
	for _, c := range []ErrorCode{CodeEmptyPassword, CodeNotBackupNode, CodeInProgress, CodeSlotOccupied, CodeExists, CodeNoBackup,
		CodeUnreachable, CodeUnauthorized, CodeInsufficientSpace, CodeWrongPassword, CodeCorrupt, CodeCountMismatch,
		CodeInvalid, CodeCancelled, CodeInterrupted, CodeInternal, CodeOplogRollover} {
		assert.GreaterOrEqual(t, c.HTTPStatus(), 400, c)
		assert.NotZero(t, c.ExitCode(), c)
		exits[c.ExitCode()] = true
	}
	assert.Len(t, exits, 10, "exit codes 1 to 10 are all in use")
	assert.Equal(t, 507, CodeOplogRollover.HTTPStatus(), "too little space, in the oplog")
	assert.Equal(t, 200, CodeOK.HTTPStatus())
	assert.Equal(t, 0, CodeOK.ExitCode())
}

// TestRestoreMalformedArchiveIsCorrupt checks that an authenticated file
// whose plaintext is no archive is ErrCorrupt, like a tampered file.
func TestRestoreMalformedArchiveIsCorrupt(t *testing.T) {
	var buf bytesBuffer
	w, err := cipher.NewWriter(&buf, []byte("pw"), &cipher.Options{LogN: 10})
	require.NoError(t, err)
	_, err = io.WriteString(w, "this is no archive, though the password opens it")
	require.NoError(t, err)
	require.NoError(t, w.Close())

	_, err = Restore(context.Background(), buf.reader(), int64(buf.Len()), []byte("pw"), &RestoreOptions{DryRun: true})
	require.ErrorIs(t, err, ErrCorrupt)
	assert.ErrorIs(t, err, archive.ErrUnknownFormat, "the archive's own error says what is wrong")
	assert.Equal(t, CodeCorrupt, Code(err))
}

// TestRestoreMaxKDFWork checks that RestoreOptions.MaxKDFWork reaches the
// cipher: a cap below the file's scrypt work refuses it as
// ErrKDFTooExpensive (CodeInvalid), naming the option; one at its work lets
// the restore go on.
func TestRestoreMaxKDFWork(t *testing.T) {
	var buf bytesBuffer
	w, err := cipher.NewWriter(&buf, []byte("pw"), &cipher.Options{LogN: 10}) // N·r·p = 2^10·8·1
	require.NoError(t, err)
	_, err = io.WriteString(w, "this is no archive, though the password opens it")
	require.NoError(t, err)
	require.NoError(t, w.Close())

	_, err = Restore(context.Background(), buf.reader(), int64(buf.Len()), []byte("pw"), &RestoreOptions{DryRun: true, MaxKDFWork: 1<<13 - 1})
	require.ErrorIs(t, err, cipher.ErrKDFTooExpensive)
	assert.ErrorContains(t, err, "RestoreOptions.MaxKDFWork")
	assert.Equal(t, CodeInvalid, Code(err))

	_, err = Restore(context.Background(), buf.reader(), int64(buf.Len()), []byte("pw"), &RestoreOptions{DryRun: true, MaxKDFWork: 1 << 13})
	require.ErrorIs(t, err, archive.ErrUnknownFormat, "past the key derivation, to the archive")
}

type bytesBuffer struct{ bytes.Buffer }

func (b *bytesBuffer) reader() *bytes.Reader { return bytes.NewReader(b.Bytes()) }

// codedErr is an error of a package built on backup, with its own code.
type codedErr struct{}

func (codedErr) Error() string        { return "exists" }
func (codedErr) ErrorCode() ErrorCode { return CodeExists }

func TestToggleText(t *testing.T) {
	for _, tg := range []Toggle{Auto, On, Off} {
		b, err := tg.MarshalText()
		require.NoError(t, err)
		var back Toggle
		require.NoError(t, back.UnmarshalText(b))
		assert.Equal(t, tg, back)
	}
	var tg Toggle = On
	err := tg.UnmarshalText([]byte("yes"))
	require.ErrorIs(t, err, ErrInvalid)
	assert.Equal(t, On, tg, "unchanged on error")
	_, err = Toggle(7).MarshalText()
	require.ErrorIs(t, err, ErrInvalid)
}
