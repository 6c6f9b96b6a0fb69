package s3store

import (
	"net/http"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
)

// FuzzInfoFromObject: the metadata of a remote object comes from the
// bucket, so it is not trusted. Whatever it holds, infoFromObject gives an
// Info whose hashes are well-formed or empty, and never panics.
func FuzzInfoFromObject(f *testing.F) {
	f.Add("backup-1.enc", "2026-01-02T03:04:05Z", "d41d8cd98f00b204e9800998ecf8427e",
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "eyJub2RlIjoiYSJ9", "0", int64(0))
	f.Add("%zz", "yesterday", "D41D8CD98F00B204E9800998ECF8427E", "short", "!!!", "-1", int64(5))
	f.Add("", "", "", "", "bnVsbA", "12", int64(12))
	f.Fuzz(func(t *testing.T, name, created, md5hex, sha, meta, size string, n int64) {
		oi := minio.ObjectInfo{
			Key: "p/n/" + name, Size: n, LastModified: time.Unix(0, 0),
			UserMetadata: minio.StringMap{metaName: name, metaCreated: created, metaMD5: md5hex, metaSHA256: sha, metaMeta: meta, metaSize: size},
			Metadata:     http.Header{},
		}
		info := infoFromObject(oi)
		assert.True(t, info.MD5 == "" || md5RE.MatchString(info.MD5))
		assert.True(t, info.SHA256 == "" || sha256RE.MatchString(info.SHA256))
		assert.NotNil(t, info.Meta)
		assert.Equal(t, n, info.Size)
	})
}
