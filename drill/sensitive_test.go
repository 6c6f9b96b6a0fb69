package drill

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/sensitive"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

var secrets = map[string][]byte{
	"keys/master.key": []byte("MASTER-KEY-0123456789abcdef"),
	"app/token":       []byte("in-memory-api-token-xyz"),
	"tls.pem":         []byte("-----BEGIN CERTIFICATE-----\n..."),
}

// sensitiveBackup returns a retrieved sensitive backup of secrets.
func sensitiveBackup(t *testing.T) []byte {
	t.Helper()
	b, err := sensitive.New(sensitive.Config{
		Sources:  []sensitive.Source{sensitive.Memory(secrets)},
		Store:    store.Memory(),
		StateDir: t.TempDir(),
		KDF:      testnode.LowKDF,
		Logger:   slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.NoError(t, b.Role().Set())
	ctx := context.Background()
	require.NoError(t, b.Start(ctx, []byte(testnode.Password)))
	st, err := b.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, slot.StateReady, st.State, st.Error)
	var buf bytes.Buffer
	_, err = b.Retrieve(ctx, &buf)
	require.NoError(t, err)
	return buf.Bytes()
}

func runSensitive(t *testing.T, data []byte, o Options) (*Report, error) {
	t.Helper()
	o.Logger = slog.New(slog.DiscardHandler)
	return RunSensitive(context.Background(), bytes.NewReader(data), int64(len(data)), []byte(testnode.Password), &o)
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestRunSensitivePasses(t *testing.T) {
	data := sensitiveBackup(t)
	tmp := t.TempDir()
	var dir string
	rep, err := runSensitive(t, data, Options{TempDir: tmp, secretsHook: func(d string) error {
		dir = d
		fi, err := os.Stat(d)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
		return nil
	}})
	require.NoError(t, err)
	assert.True(t, rep.Passed)
	assert.Equal(t, "sensitive", rep.Backup)
	require.Len(t, rep.Secrets, 3)
	for _, s := range rep.Secrets {
		want := secrets[s.Name]
		assert.Equal(t, hexSum(want), s.ExpectedSHA256, s.Name)
		assert.Equal(t, s.ExpectedSHA256, s.FoundSHA256, s.Name)
		assert.EqualValues(t, len(want), s.FoundSize, s.Name)
	}
	assert.EqualValues(t, 3, rep.Documents)
	assert.Positive(t, rep.RestoreTime)
	assert.Equal(t, []string{dir}, rep.Dropped)
	assert.NoDirExists(t, dir)
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, entries, "the drill's directory is removed")
}

func TestRunSensitiveFailsOnChangedSecret(t *testing.T) {
	data := sensitiveBackup(t)
	tmp := t.TempDir()
	rep, err := runSensitive(t, data, Options{TempDir: tmp, secretsHook: func(d string) error {
		return os.WriteFile(filepath.Join(d, "keys", "master.key"), []byte("MASTER-KEY-0123456789abcdeF"), 0o600)
	}})
	f := failure(t, err)
	require.Len(t, f.Differences, 1)
	d := f.Differences[0]
	assert.Equal(t, Difference{Namespace: "keys/master.key", Kind: KindSecret, Detail: d.Detail}, d)
	assert.Contains(t, d.Detail, hexSum(secrets["keys/master.key"]))
	assert.NotContains(t, err.Error(), "MASTER-KEY", "no secret in errors")
	assert.False(t, rep.Passed)
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, entries, "removed after a failure too")
}

// craftedSensitive is a sensitive backup whose one file differs from its
// manifest entry.
type craftedSensitive struct{}

func (craftedSensitive) Documents(ctx context.Context, c archive.Collection, emit func([]byte) error) error {
	var doc bson.D
	if c.Name == sensitive.ManifestCollection {
		doc = bson.D{{Key: "_id", Value: "a.key"}, {Key: "size", Value: int64(1)}, {Key: "sha256", Value: hexSum([]byte("y"))}}
	} else {
		doc = bson.D{{Key: "_id", Value: "a.key"}, {Key: "mode", Value: int64(0o600)}, {Key: "mtime", Value: bson.NewDateTimeFromTime(time.Now())}, {Key: "data", Value: []byte("x")}}
	}
	raw, err := bson.Marshal(doc)
	if err != nil {
		return err
	}
	return emit(raw)
}

func TestRunSensitiveFailsOnCraftedSecret(t *testing.T) {
	var buf bytes.Buffer
	enc, err := cipher.NewWriter(&buf, []byte(testnode.Password), testnode.LowKDF)
	require.NoError(t, err)
	cols := []archive.Collection{{DB: sensitive.DB, Name: sensitive.ManifestCollection}, {DB: sensitive.DB, Name: sensitive.FilesCollection}}
	_, err = archive.Dump(context.Background(), enc, cols, craftedSensitive{}, nil)
	require.NoError(t, err)
	require.NoError(t, enc.Close())

	tmp := t.TempDir()
	rep, err := runSensitive(t, buf.Bytes(), Options{TempDir: tmp})
	f := failure(t, err)
	assert.ErrorIs(t, err, sensitive.ErrManifestMismatch)
	d := f.Differences[len(f.Differences)-1]
	assert.Equal(t, KindRestore, d.Kind)
	assert.Contains(t, d.Detail, "a.key")
	assert.False(t, rep.Passed)
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, entries)
}
