package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// These tests check compatibility with the stock MongoDB Database Tools.
// They run only where the tools are installed (bsondump, mongorestore on
// PATH) and, for mongorestore, a server is named by MONGODB_URI.

func lookTool(t *testing.T, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed; install the MongoDB Database Tools to run this test", name)
	}
	return p
}

// extractTar writes the regular files of a tar (read with this package's
// safety rules) under dir.
func extractTar(t *testing.T, b []byte, dir string) {
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		require.NoError(t, err)
		name, err := cleanEntryName(h.Name)
		require.NoError(t, err)
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(p, data, 0o600))
	}
}

func TestBsondumpReadsTarEntries(t *testing.T) {
	bsondump := lookTool(t, "bsondump")
	cols, src := testCollections(t)
	var out bytes.Buffer
	_, err := Dump(context.Background(), &out, cols, src, &DumpOptions{Compression: NoCompression{}})
	require.NoError(t, err)
	dir := t.TempDir()
	extractTar(t, out.Bytes(), dir)
	res, err := exec.Command(bsondump, "--quiet", filepath.Join(dir, "dump", "shop", "orders.bson")).Output()
	require.NoError(t, err)
	assert.Equal(t, 300, strings.Count(string(res), "\n"))
}

func TestMongorestore(t *testing.T) {
	mongorestore := lookTool(t, "mongorestore")
	uri := os.Getenv("MONGODB_URI")
	if uri == "" {
		t.Skip("MONGODB_URI is not set; mongorestore needs a server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	require.NoError(t, err)
	defer client.Disconnect(context.Background())

	for _, f := range allFormats {
		t.Run(f.Name(), func(t *testing.T) {
			db := fmt.Sprintf("ks_archive_%d", time.Now().UnixNano())
			t.Cleanup(func() { client.Database(db).Drop(context.Background()) })
			cols := []Collection{
				{DB: db, Name: "orders", Indexes: []bson.Raw{
					indexDoc(t, "_id_", bson.D{{Key: "_id", Value: int32(1)}}),
					indexDoc(t, "i32_1", bson.D{{Key: "i32", Value: int32(1)}}, bson.E{Key: "unique", Value: true}),
				}},
				{DB: db, Name: "empty"},
				{DB: db, Name: "slash/name"},
			}
			src := sliceSource{db + ".orders": richDocs(t, 200), db + ".slash/name": richDocs(t, 3)}
			// One insert captured in the oplog, which --oplogReplay applies.
			oplog := &fakeOplog{entries: [][]byte{mustDoc(t, bson.D{
				{Key: "ts", Value: bson.Timestamp{T: uint32(time.Now().Unix()), I: 1}},
				{Key: "t", Value: int64(1)},
				{Key: "v", Value: int64(2)},
				{Key: "op", Value: "i"},
				{Key: "ns", Value: db + ".orders"},
				{Key: "o", Value: bson.D{{Key: "_id", Value: "from the oplog"}, {Key: "i32", Value: int32(-1)}}},
				{Key: "wall", Value: bson.NewDateTimeFromTime(time.Now())},
			})}}
			var out bytes.Buffer
			_, err := Dump(ctx, &out, cols, src, &DumpOptions{Format: f, Compression: NewGzip(DefaultGzipLevel), ServerVersion: "7.0.0", Oplog: oplog})
			require.NoError(t, err)
			dir := t.TempDir()
			var cmd *exec.Cmd
			if f.Name() == "tar" {
				raw, err := NewGzip(DefaultGzipLevel).NewReader(&out)
				require.NoError(t, err)
				b, err := io.ReadAll(raw)
				require.NoError(t, err)
				extractTar(t, b, dir)
				cmd = exec.CommandContext(ctx, mongorestore, "--uri", uri, "--oplogReplay", "--dir", filepath.Join(dir, "dump"))
			} else {
				p := filepath.Join(dir, "x.archive.gz")
				require.NoError(t, os.WriteFile(p, out.Bytes(), 0o600))
				cmd = exec.CommandContext(ctx, mongorestore, "--uri", uri, "--gzip", "--oplogReplay", "--archive="+p)
			}
			res, err := cmd.CombinedOutput()
			require.NoError(t, err, string(res))
			n, err := client.Database(db).Collection("orders").CountDocuments(ctx, bson.D{})
			require.NoError(t, err)
			assert.EqualValues(t, 201, n, "the dump's documents and the one the oplog replays")
			n, err = client.Database(db).Collection("slash/name").CountDocuments(ctx, bson.D{})
			require.NoError(t, err)
			assert.EqualValues(t, 3, n)
			specs, err := client.Database(db).Collection("orders").Indexes().ListSpecifications(ctx)
			require.NoError(t, err)
			assert.Len(t, specs, 2)
		})
	}
}
