package mongotest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestModulePath(t *testing.T) {
	assert.Equal(t, module, modulePath([]byte("// a comment\nmodule "+module+"\n\ngo 1.26.0\n")))
	assert.Equal(t, module, modulePath([]byte(`module "`+module+`"`)))
	assert.Equal(t, module+"/examples", modulePath([]byte("module "+module+"/examples // nested\n")))
	assert.Empty(t, modulePath([]byte("go 1.26.0\n")))
}

func TestRepoRoot(t *testing.T) {
	root, err := repoRoot()
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(root, "examples", "devserver", "main.go"))

	// From the examples module, whose go.mod names another module, it
	// walks on up to the root.
	t.Chdir(filepath.Join(root, "examples", "devserver"))
	again, err := repoRoot()
	require.NoError(t, err)
	assert.Equal(t, root, again)

	// Outside the repository there is none, and the error says which.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/other\n"), 0o600))
	t.Chdir(dir)
	_, err = repoRoot()
	assert.ErrorContains(t, err, "no go.mod of module "+module)
}

func TestTailKeepsTheEnd(t *testing.T) {
	w := &tail{max: 8}
	for _, s := range []string{"0123", "4567", "89ab"} {
		n, err := w.Write([]byte(s))
		require.NoError(t, err)
		assert.Equal(t, 4, n)
	}
	assert.Equal(t, "456789ab", w.String())
}
