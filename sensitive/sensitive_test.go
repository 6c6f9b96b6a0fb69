package sensitive_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/internal/testkit/mongotest"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/restore"
	"github.com/keepslot/keepslot/sensitive"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

var lowKDF = &cipher.Options{LogN: 10}

const (
	password    = "sensitive pass phrase"
	masterKey   = "MASTER-KEY-0123456789abcdef"
	inMemoryKey = "in-memory-api-token-xyz"
)

// node is a node's state dir with secrets on disk.
type node struct {
	state   string
	secrets string // a directory of secret files
	logs    *bytes.Buffer
}

func newNode(t *testing.T) *node {
	t.Helper()
	n := &node{state: t.TempDir(), secrets: filepath.Join(t.TempDir(), "etc"), logs: &bytes.Buffer{}}
	write := func(rel, data string, mode os.FileMode) {
		p := filepath.Join(n.secrets, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(data), mode))
	}
	write("keys/master.key", masterKey, 0o600)
	write("keys/sub/replica.key", "replica-key", 0o400)
	write("tls.pem", "-----BEGIN CERTIFICATE-----\n...", 0o644)
	return n
}

func (n *node) backupper(t *testing.T, extra ...sensitive.Source) *sensitive.Backupper {
	t.Helper()
	sources := append([]sensitive.Source{
		sensitive.Files(filepath.Join(n.secrets, "keys"), filepath.Join(n.secrets, "tls.pem")),
		sensitive.Memory(map[string][]byte{"app/token": []byte(inMemoryKey)}),
	}, extra...)
	b, err := sensitive.New(sensitive.Config{
		Sources:  sources,
		Store:    store.Memory(),
		StateDir: n.state,
		KDF:      lowKDF,
		Logger:   slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func waitReady(t *testing.T, b interface {
	Wait(context.Context) (slot.Status, error)
}) slot.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := b.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, slot.StateReady, st.State, st.Error)
	return st
}

func retrieve(t *testing.T, b *sensitive.Backupper) []byte {
	t.Helper()
	var buf bytes.Buffer
	_, err := b.Retrieve(context.Background(), &buf)
	require.NoError(t, err)
	return buf.Bytes()
}

func TestFullCycle(t *testing.T) {
	n := newNode(t)
	b := n.backupper(t)
	ctx := context.Background()

	assert.ErrorIs(t, b.Start(ctx, []byte(password)), slot.ErrNotBackupNode)
	require.NoError(t, b.Role().Set())
	require.NoError(t, b.Start(ctx, []byte(password)))
	st := waitReady(t, b)
	assert.Regexp(t, `^backup-sensitive-.*\.tar\.gz$`, st.Name)
	assert.ErrorIs(t, b.Start(ctx, []byte(password)), store.ErrSlotOccupied)

	data := retrieve(t, b)
	sum := sha256.Sum256(data)
	assert.Equal(t, st.SHA256, hex.EncodeToString(sum[:]))

	// Dry run lists, writes nothing.
	target := filepath.Join(t.TempDir(), "restored")
	rep, err := sensitive.Restore(ctx, bytes.NewReader(data), int64(len(data)), []byte(password), target, &sensitive.RestoreOptions{DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"app/token", "keys/master.key", "keys/sub/replica.key", "tls.pem"}, names(rep))
	assert.NoDirExists(t, target)

	rep, err = sensitive.Restore(ctx, bytes.NewReader(data), int64(len(data)), []byte(password), target, nil)
	require.NoError(t, err)
	assert.Len(t, rep.Files, 4)
	assertFile(t, filepath.Join(target, "keys/master.key"), masterKey)
	assertFile(t, filepath.Join(target, "keys/sub/replica.key"), "replica-key")
	assertFile(t, filepath.Join(target, "app/token"), inMemoryKey)
	assertFile(t, filepath.Join(target, "tls.pem"), "-----BEGIN CERTIFICATE-----\n...")
	for _, d := range []string{"keys", "keys/sub", "app"} {
		fi, err := os.Stat(filepath.Join(target, d))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), d)
	}
	orig, err := os.Stat(filepath.Join(n.secrets, "keys/master.key"))
	require.NoError(t, err)
	restored, err := os.Stat(filepath.Join(target, "keys/master.key"))
	require.NoError(t, err)
	assert.True(t, orig.ModTime().Truncate(time.Millisecond).Equal(restored.ModTime()), "modification time kept, to the millisecond BSON stores")
	assertNoStaging(t, target)

	// Existing files are not replaced without Overwrite.
	require.NoError(t, os.WriteFile(filepath.Join(target, "tls.pem"), []byte("newer"), 0o600))
	_, err = sensitive.Restore(ctx, bytes.NewReader(data), int64(len(data)), []byte(password), target, nil)
	require.ErrorIs(t, err, sensitive.ErrExists)
	assertFile(t, filepath.Join(target, "tls.pem"), "newer")
	_, err = sensitive.Restore(ctx, bytes.NewReader(data), int64(len(data)), []byte(password), target, &sensitive.RestoreOptions{Overwrite: true})
	require.NoError(t, err)
	assertFile(t, filepath.Join(target, "tls.pem"), "-----BEGIN CERTIFICATE-----\n...")
	assertNoStaging(t, target)

	require.NoError(t, b.Delete(ctx))
	st, err = b.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, slot.StateNone, st.State)

	// Secrets never reach the logs or the status.
	stJSON, _ := json.Marshal(st)
	for _, s := range []string{n.logs.String(), string(stJSON)} {
		assert.NotContains(t, s, masterKey)
		assert.NotContains(t, s, inMemoryKey)
		assert.NotContains(t, s, password)
	}
}

func names(rep *sensitive.RestoreReport) []string {
	var out []string
	for _, f := range rep.Files {
		out = append(out, f.Name)
	}
	return out
}

func assertFile(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, want, string(got))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), path)
}

func assertNoStaging(t *testing.T, dir string) {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, ".keepslot-restore-*"))
	require.NoError(t, err)
	assert.Empty(t, matches)
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()

	t.Run("link", func(t *testing.T) {
		n := newNode(t)
		require.NoError(t, os.Symlink("master.key", filepath.Join(n.secrets, "keys/alias.key")))
		b := n.backupper(t)
		require.NoError(t, b.Role().Set())
		err := b.Start(ctx, []byte(password))
		require.ErrorIs(t, err, sensitive.ErrNotRegular)
		assert.Contains(t, err.Error(), "alias.key")
	})
	t.Run("duplicate", func(t *testing.T) {
		n := newNode(t)
		b := n.backupper(t, sensitive.Memory(map[string][]byte{"tls.pem": []byte("x")}))
		require.NoError(t, b.Role().Set())
		assert.ErrorIs(t, b.Start(ctx, []byte(password)), sensitive.ErrDuplicate)
	})
	t.Run("unsafe name", func(t *testing.T) {
		n := newNode(t)
		b := n.backupper(t, sensitive.Memory(map[string][]byte{"../escape": []byte("x")}))
		require.NoError(t, b.Role().Set())
		assert.ErrorIs(t, b.Start(ctx, []byte(password)), sensitive.ErrUnsafePath)
	})
	t.Run("empty password", func(t *testing.T) {
		n := newNode(t)
		b := n.backupper(t)
		assert.ErrorIs(t, b.Start(ctx, nil), cipher.ErrEmptyPassword)
	})
}

func TestWrongPasswordAndTamper(t *testing.T) {
	n := newNode(t)
	b := n.backupper(t)
	require.NoError(t, b.Role().Set())
	ctx := context.Background()
	require.NoError(t, b.Start(ctx, []byte(password)))
	waitReady(t, b)
	data := retrieve(t, b)
	target := filepath.Join(t.TempDir(), "out")

	_, err := sensitive.Restore(ctx, bytes.NewReader(data), int64(len(data)), []byte("guess"), target, nil)
	assert.ErrorIs(t, err, cipher.ErrWrongPassword)
	for _, at := range []int{len(data) / 2, len(data) - 1} {
		bad := bytes.Clone(data)
		bad[at] ^= 0x10
		_, err = sensitive.Restore(ctx, bytes.NewReader(bad), int64(len(bad)), []byte(password), target, nil)
		assert.ErrorIs(t, err, cipher.ErrCorrupt)
	}
	assert.NoDirExists(t, target)
}

// crafted is a sensitive backup made by hand, as an attacker with the
// password (or a bug) could make it.
type crafted struct {
	files    []bson.D
	manifest []bson.D
}

func (c crafted) Documents(ctx context.Context, col archive.Collection, emit func([]byte) error) error {
	docs := c.files
	if col.Name == sensitive.ManifestCollection {
		docs = c.manifest
	}
	for _, d := range docs {
		raw, err := bson.Marshal(d)
		if err != nil {
			return err
		}
		if err := emit(raw); err != nil {
			return err
		}
	}
	return nil
}

func (c crafted) encrypt(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := cipher.NewWriter(&buf, []byte(password), lowKDF)
	require.NoError(t, err)
	cols := []archive.Collection{{DB: sensitive.DB, Name: sensitive.ManifestCollection}, {DB: sensitive.DB, Name: sensitive.FilesCollection}}
	_, err = archive.Dump(context.Background(), enc, cols, c, &archive.DumpOptions{Parallel: 1})
	require.NoError(t, err)
	require.NoError(t, enc.Close())
	return buf.Bytes()
}

func file(name, data string) bson.D {
	return bson.D{{Key: "_id", Value: name}, {Key: "mode", Value: int64(0o600)}, {Key: "mtime", Value: bson.NewDateTimeFromTime(time.Now())}, {Key: "data", Value: []byte(data)}}
}

func entry(name, data string) bson.D {
	sum := sha256.Sum256([]byte(data))
	return bson.D{{Key: "_id", Value: name}, {Key: "size", Value: int64(len(data))}, {Key: "sha256", Value: hex.EncodeToString(sum[:])}}
}

func TestRestoreRefusesCraftedBackups(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		c    crafted
		want error
	}{
		{"path escape", crafted{files: []bson.D{file("../../evil", "x")}, manifest: []bson.D{entry("../../evil", "x")}}, sensitive.ErrUnsafePath},
		{"absolute path", crafted{files: []bson.D{file("/tmp/evil", "x")}, manifest: []bson.D{entry("/tmp/evil", "x")}}, sensitive.ErrUnsafePath},
		{"manifest mismatch", crafted{files: []bson.D{file("a.key", "x")}, manifest: []bson.D{entry("a.key", "y")}}, sensitive.ErrManifestMismatch},
		{"missing from manifest", crafted{files: []bson.D{file("a.key", "x")}}, sensitive.ErrManifestMismatch},
		{"missing file", crafted{manifest: []bson.D{entry("a.key", "x")}}, sensitive.ErrManifestMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.c.encrypt(t)
			parent := t.TempDir()
			target := filepath.Join(parent, "out")
			_, err := sensitive.Restore(ctx, bytes.NewReader(data), int64(len(data)), []byte(password), target, nil)
			require.ErrorIs(t, err, tc.want)
			entries, err := os.ReadDir(parent)
			require.NoError(t, err)
			for _, e := range entries {
				sub, _ := os.ReadDir(filepath.Join(parent, e.Name()))
				assert.Empty(t, sub, "nothing written under %s", e.Name())
			}
			assert.NoFileExists(t, "/tmp/evil")
		})
	}
}

// TestRestoreMaxKDFWork checks that Restore and restore.Run pass their
// MaxKDFWork to the cipher: a cap below the backup's scrypt work refuses it
// before anything is written, one at its work restores it.
func TestRestoreMaxKDFWork(t *testing.T) {
	ctx := context.Background()
	data := crafted{files: []bson.D{file("a.key", "x")}, manifest: []bson.D{entry("a.key", "x")}}.encrypt(t)
	const work = 1 << 15 // lowKDF: N·r·p = 2^10·8·4
	target := filepath.Join(t.TempDir(), "out")

	_, err := sensitive.Restore(ctx, bytes.NewReader(data), int64(len(data)), []byte(password), target, &sensitive.RestoreOptions{MaxKDFWork: work - 1})
	require.ErrorIs(t, err, cipher.ErrKDFTooExpensive)
	assert.ErrorContains(t, err, "RestoreOptions.MaxKDFWork")
	assert.Equal(t, errcode.Invalid, errcode.Of(err))
	assert.NoDirExists(t, target)

	_, err = restoreNamespaces(ctx, bytes.NewReader(data), int64(len(data)), []byte(password), &restore.Options{DryRun: true, MaxKDFWork: work - 1})
	require.ErrorIs(t, err, cipher.ErrKDFTooExpensive)

	rep, err := sensitive.Restore(ctx, bytes.NewReader(data), int64(len(data)), []byte(password), target, &sensitive.RestoreOptions{MaxKDFWork: work})
	require.NoError(t, err)
	assert.Equal(t, []string{"a.key"}, names(rep))
	assertFile(t, filepath.Join(target, "a.key"), "x")
}

// The main backup and the sensitive backup live side by side on one node:
// one role, two slots, two passwords, and neither password opens the other.
func TestCoexistsWithMainBackup(t *testing.T) {
	srv := mongotest.New(t)
	ctx := context.Background()
	_, err := srv.Client.Database(srv.DB("app")).Collection("users").InsertOne(ctx, bson.D{{Key: "name", Value: "ada"}})
	require.NoError(t, err)

	n := newNode(t)
	main, err := backup.New(&backup.Source{Conn: conn.Config{Client: srv.Client}, Filter: namespace.Filter{Include: []string{srv.Prefix + "*"}}},
		slot.Config{Store: store.Memory(), StateDir: n.state, KDF: lowKDF})
	require.NoError(t, err)
	defer main.Close()
	sens := n.backupper(t)

	require.NoError(t, main.Role().Set()) // one role for both
	const mainPassword = "main password"
	require.NoError(t, main.Start(ctx, []byte(mainPassword)))
	require.NoError(t, sens.Start(ctx, []byte(password)))
	mainSt, sensSt := waitReady(t, main), waitReady(t, sens)
	assert.NotEqual(t, mainSt.MD5, sensSt.MD5)

	var mainData bytes.Buffer
	_, err = main.Retrieve(ctx, &mainData)
	require.NoError(t, err)
	sensData := retrieve(t, sens)

	_, err = sensitive.Restore(ctx, bytes.NewReader(mainData.Bytes()), int64(mainData.Len()), []byte(password), t.TempDir(), nil)
	assert.ErrorIs(t, err, cipher.ErrWrongPassword)
	_, err = restore.Run(ctx, bytes.NewReader(sensData), int64(len(sensData)), []byte(mainPassword), &restore.Options{Conn: conn.Config{Client: srv.Client}})
	assert.ErrorIs(t, err, cipher.ErrWrongPassword)

	// Deleting one leaves the other.
	require.NoError(t, sens.Delete(ctx))
	st, err := main.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, slot.StateReady, st.State)
}

// Secrets kept in MongoDB ride along in the sensitive backup and restore
// with restore.Run, as Restore's documentation says; the files restore
// with Restore.
func TestMongoNamespaces(t *testing.T) {
	srv := mongotest.New(t)
	ctx := context.Background()
	keys := srv.Client.Database(srv.DB("secrets")).Collection("keys")
	_, err := keys.InsertMany(ctx, []any{bson.D{{Key: "kid", Value: "k1"}, {Key: "key", Value: []byte("k1-material")}}, bson.D{{Key: "kid", Value: "k2"}}})
	require.NoError(t, err)

	n := newNode(t)
	b, err := sensitive.New(sensitive.Config{
		Sources:  []sensitive.Source{sensitive.Memory(map[string][]byte{"app/token": []byte(inMemoryKey)})},
		Mongo:    &backup.Source{Conn: conn.Config{Client: srv.Client}, Filter: namespace.Filter{Include: []string{srv.DB("secrets") + ".*"}}},
		Store:    store.Memory(),
		StateDir: n.state,
		KDF:      lowKDF,
	})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.Role().Set())
	require.NoError(t, b.Start(ctx, []byte(password)))
	waitReady(t, b)
	data := retrieve(t, b)

	rep, err := sensitive.Restore(ctx, bytes.NewReader(data), int64(len(data)), []byte(password), t.TempDir(), nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"app/token"}, names(rep))

	nsRep, err := restoreNamespaces(ctx, bytes.NewReader(data), int64(len(data)), []byte(password), &restore.Options{
		Conn:    conn.Config{Client: srv.Client},
		Renames: []namespace.Rename{{From: srv.DB("secrets") + ".*", To: srv.DB("secrets_restored") + ".*"}},
	})
	require.NoError(t, err)
	require.Len(t, nsRep.Namespaces, 1)
	count, err := srv.Client.Database(srv.DB("secrets_restored")).Collection("keys").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 2, count)
	dbs, err := srv.Client.ListDatabaseNames(ctx, bson.D{})
	require.NoError(t, err)
	assert.NotContains(t, dbs, sensitive.DB)
}

// TestBackupperHasNoExport checks that a sensitive Backupper offers the
// slot's verbs, and no export, which its Config cannot set up: it used to
// embed the slot and so expose an Export that always failed.
func TestBackupperHasNoExport(t *testing.T) {
	b := newNode(t).backupper(t)
	var _ slot.Backupper = b
	_, exports := any(b).(slot.Exporter)
	assert.False(t, exports)
}

// restoreNamespaces restores the MongoDB namespaces of a sensitive backup
// as Restore's documentation says: restore.Run, with the pseudo-namespaces
// of the secrets left out.
func restoreNamespaces(ctx context.Context, src io.ReaderAt, size int64, password []byte, opts *restore.Options) (*restore.Report, error) {
	o := *opts
	o.Filter.Exclude = append(slices.Clip(o.Filter.Exclude), sensitive.DB+".*")
	return restore.Run(ctx, src, size, password, &o)
}
