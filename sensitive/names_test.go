package sensitive_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/sensitive"
	"github.com/keepslot/keepslot/store"
)

var longPart = strings.Repeat("x", 300) // a name element longer than a file name may be

// TestBackupRefusesUnrestorableNames checks that Start refuses secrets whose
// names could not all be restored, which used to back up ready and fail
// only at restore, after writing part of them.
func TestBackupRefusesUnrestorableNames(t *testing.T) {
	many := map[string][]byte{}
	for i := range sensitive.MaxSecrets + 1 {
		many[fmt.Sprintf("k%05d", i)] = []byte("x")
	}
	for _, tc := range []struct {
		name    string
		secrets map[string][]byte
		want    error
		code    errcode.Code
		says    []string
	}{
		{"file and directory", map[string][]byte{"a": []byte("1"), "a/b": []byte("2")}, sensitive.ErrNameConflict, errcode.Invalid, []string{`"a"`, `"a/b"`}},
		{"directory and file", map[string][]byte{"d/a/b": []byte("1"), "d/a": []byte("2")}, sensitive.ErrNameConflict, errcode.Invalid, []string{`"d/a"`, `"d/a/b"`}},
		{"element too long", map[string][]byte{"k1": []byte("1"), "dir/" + longPart: []byte("2")}, sensitive.ErrBadName, errcode.Invalid, []string{"300 bytes", "limit is 255"}},
		{"name too long", map[string][]byte{strings.Repeat("abcdefgh/", 120) + "k": []byte("1")}, sensitive.ErrBadName, errcode.Invalid, []string{"1081 bytes", "limit is 1024"}},
		{"NUL", map[string][]byte{"a\x00b": []byte("1")}, sensitive.ErrBadName, errcode.Invalid, []string{"NUL"}},
		{"staging prefix", map[string][]byte{".keepslot-restore-0123456789abcdef/k": []byte("1")}, sensitive.ErrBadName, errcode.Invalid, []string{"staging"}},
		{"empty element", map[string][]byte{"a//b": []byte("1")}, sensitive.ErrUnsafePath, errcode.Invalid, []string{`"a//b"`}},
		{"dot element", map[string][]byte{"a/./b": []byte("1")}, sensitive.ErrUnsafePath, errcode.Invalid, []string{`"a/./b"`}},
		{"too many", many, sensitive.ErrTooMany, errcode.Invalid, []string{"more than 10000 secrets"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := sensitive.New(sensitive.Config{
				Sources:  []sensitive.Source{sensitive.Memory(tc.secrets)},
				Store:    store.Memory(),
				StateDir: t.TempDir(),
				KDF:      lowKDF,
			})
			require.NoError(t, err)
			t.Cleanup(func() { _ = b.Close() })
			require.NoError(t, b.Role().Set())
			err = b.Start(context.Background(), []byte(password))
			require.ErrorIs(t, err, tc.want)
			assert.Equal(t, tc.code, errcode.Of(err))
			if tc.want == sensitive.ErrNameConflict {
				assert.ErrorIs(t, err, sensitive.ErrDuplicate, "a conflict is a kind of duplicate")
			}
			for _, s := range tc.says {
				assert.Contains(t, err.Error(), s)
			}
			assert.NotContains(t, err.Error(), longPart, "a long name is shortened in the message")
		})
	}
}

// TestRestoreChecksNamesBeforeWriting restores crafted backups whose names
// cannot all be restored, and checks that each is refused with nothing
// written: they used to fail after writing the secrets sorted first.
func TestRestoreChecksNamesBeforeWriting(t *testing.T) {
	for _, tc := range []struct {
		name  string
		names []string
		want  error
		code  errcode.Code
		says  string
	}{
		{"file and directory", []string{"0.key", "a", "a/b"}, sensitive.ErrNameConflict, errcode.Invalid, `"a" is a secret and the directory of secret "a/b"`},
		{"element too long", []string{"k1", "k2/" + longPart}, sensitive.ErrBadName, errcode.Invalid, "limit is 255"},
		{"NUL", []string{"k1", "k\x002"}, sensitive.ErrBadName, errcode.Invalid, "NUL"},
		{"staging prefix", []string{"k1", ".keepslot-restore-0123456789abcdef"}, sensitive.ErrBadName, errcode.Invalid, "staging"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c crafted
			for _, n := range tc.names {
				c.files, c.manifest = append(c.files, file(n, n)), append(c.manifest, entry(n, n))
			}
			data := c.encrypt(t)
			target := t.TempDir()
			_, err := sensitive.Restore(context.Background(), bytes.NewReader(data), int64(len(data)), []byte(password), target, nil)
			require.ErrorIs(t, err, tc.want)
			assert.Equal(t, tc.code, errcode.Of(err))
			assert.Contains(t, err.Error(), tc.says)
			assertEmptyDir(t, target)
		})
	}
}

// TestRestoreChecksTargetBeforeWriting restores into a directory that holds
// a file where a secret needs a directory, or a directory where a secret is
// a file, and checks that the restore is refused, with Overwrite too,
// before it writes anything.
func TestRestoreChecksTargetBeforeWriting(t *testing.T) {
	var c crafted
	for _, n := range []string{"0.key", "keys/a.key", "tls.pem"} {
		c.files, c.manifest = append(c.files, file(n, n)), append(c.manifest, entry(n, n))
	}
	data := c.encrypt(t)
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, target string)
		says    string
	}{
		{"file where a directory goes", func(t *testing.T, target string) {
			require.NoError(t, os.WriteFile(filepath.Join(target, "keys"), []byte("mine"), 0o600))
		}, "keys/a.key needs keys to be a directory, and it is a file"},
		{"link to a file where a directory goes", func(t *testing.T, target string) {
			require.NoError(t, os.WriteFile(filepath.Join(target, "real"), []byte("mine"), 0o600))
			require.NoError(t, os.Symlink("real", filepath.Join(target, "keys")))
		}, "keys/a.key needs keys to be a directory, and it is a file"},
		{"link to nothing where a directory goes", func(t *testing.T, target string) {
			require.NoError(t, os.Symlink("nowhere", filepath.Join(target, "keys")))
		}, "keys/a.key needs keys to be a directory, and it is a link to nothing"},
		{"directory where a file goes", func(t *testing.T, target string) {
			require.NoError(t, os.Mkdir(filepath.Join(target, "tls.pem"), 0o700))
		}, "tls.pem is a secret, and a directory"},
	} {
		for _, overwrite := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s overwrite=%v", tc.name, overwrite), func(t *testing.T) {
				target := t.TempDir()
				tc.prepare(t, target)
				before := listTree(t, target)
				_, err := sensitive.Restore(context.Background(), bytes.NewReader(data), int64(len(data)), []byte(password), target,
					&sensitive.RestoreOptions{Overwrite: overwrite})
				require.ErrorIs(t, err, sensitive.ErrInTheWay)
				assert.NotErrorIs(t, err, sensitive.ErrExists, "Overwrite would not help")
				assert.Equal(t, errcode.Exists, errcode.Of(err))
				assert.Contains(t, err.Error(), tc.says)
				assert.Equal(t, before, listTree(t, target), "nothing written")
			})
		}
	}
}

// TestRestoreRefusesTooManyEntries checks that a crafted backup with more
// manifest entries, or more secrets, than MaxSecrets is refused as it is
// read, as a corrupt file (no backup holds that many), writing nothing.
func TestRestoreRefusesTooManyEntries(t *testing.T) {
	many := crafted{files: []bson.D{file("k", "x")}}
	for i := range sensitive.MaxSecrets + 1 {
		many.manifest = append(many.manifest, entry(fmt.Sprintf("k%05d", i), "x"))
	}
	var manyFiles crafted
	for i := range sensitive.MaxSecrets + 1 {
		manyFiles.files = append(manyFiles.files, file(fmt.Sprintf("k%05d", i), "x"))
	}
	for _, tc := range []struct {
		c    crafted
		says string
	}{
		{many, "manifest has more than 10000 entries"},
		{manyFiles, "holds more than 10000 secrets"},
	} {
		data := tc.c.encrypt(t)
		target := t.TempDir()
		_, err := sensitive.Restore(context.Background(), bytes.NewReader(data), int64(len(data)), []byte(password), target, nil)
		require.ErrorIs(t, err, sensitive.ErrTooManyEntries)
		assert.NotErrorIs(t, err, sensitive.ErrTooMany, "not the backup's error, which says to back up fewer files")
		assert.Equal(t, errcode.Corrupt, errcode.Of(err))
		assert.Contains(t, err.Error(), tc.says)
		assertEmptyDir(t, target)
	}
}

// listTree lists every path under dir with its type.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel+" "+d.Type().String())
		return nil
	}))
	return out
}
