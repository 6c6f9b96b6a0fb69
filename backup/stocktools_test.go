package backup_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/slot"
)

// A retrieved backup opens without keepslot: the openssl commands of
// cipher/FORMAT.md decrypt it, tar unpacks it, and what comes out is
// mongodump's directory layout, ready for mongorestore --dir dump.
func TestStockToolsRecovery(t *testing.T) {
	for _, tool := range []string{"openssl", "tar", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	e := testnode.New(t)
	e.Seed(40)
	b := e.Backupper(e.Config())
	require.NoError(t, b.Role().Set())
	ctx := context.Background()
	require.NoError(t, b.Start(ctx, []byte(testnode.Password)))
	require.Equal(t, slot.StateReady, testnode.Wait(t, b).State)

	dir := t.TempDir()
	enc, _ := testnode.RetrieveTo(t, b, dir, "backup-retrieve.tar.gz.enc")

	script, err := filepath.Abs("../cipher/testdata/openssl-recover.sh")
	require.NoError(t, err)
	recover := exec.Command("bash", script, enc)
	recover.Env = append(os.Environ(), "KEEPSLOT_PASSWORD="+testnode.Password)
	var stderr bytes.Buffer
	recover.Stderr = &stderr
	targz, err := recover.Output()
	require.NoError(t, err, stderr.String())

	untar := exec.Command("tar", "xzf", "-", "-C", dir)
	untar.Stdin = bytes.NewReader(targz)
	out, err := untar.CombinedOutput()
	require.NoError(t, err, string(out))

	users := filepath.Join(dir, "dump", e.Srv.DB("app"), "users")
	data, err := os.ReadFile(users + ".bson")
	require.NoError(t, err)
	n := 0
	for len(data) > 0 { // concatenated BSON documents, each led by its length
		require.GreaterOrEqual(t, len(data), 5)
		l := int(binary.LittleEndian.Uint32(data))
		require.LessOrEqual(t, l, len(data))
		require.NoError(t, bson.Raw(data[:l]).Validate())
		data = data[l:]
		n++
	}
	assert.Equal(t, 40, n)

	meta, err := os.ReadFile(users + ".metadata.json")
	require.NoError(t, err)
	var m struct {
		CollectionName string           `json:"collectionName"`
		Indexes        []map[string]any `json:"indexes"`
	}
	require.NoError(t, json.Unmarshal(meta, &m))
	assert.Equal(t, "users", m.CollectionName)
	assert.Len(t, m.Indexes, 3)
	assert.FileExists(t, filepath.Join(dir, "manifest.json"))
}
