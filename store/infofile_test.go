package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sampleInfo() Info {
	return Info{
		Name:    "backup.tar.gz.enc",
		Size:    12345,
		MD5:     "0123456789abcdef0123456789abcdef",
		SHA256:  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Created: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		Meta:    map[string]string{"node": "a", "ü": "\"\n"},
	}
}

const sampleObject = "object-0123456789abcdef0123456789abcdef"

func TestInfoFileRoundTrip(t *testing.T) {
	b, err := marshalInfo(sampleObject, sampleInfo())
	require.NoError(t, err)
	object, info, err := parseInfo(b)
	require.NoError(t, err)
	assert.Equal(t, sampleObject, object)
	assert.Equal(t, sampleInfo(), info)
}

func TestInfoFileRejects(t *testing.T) {
	for name, s := range map[string]string{
		"empty":        ``,
		"not json":     `{`,
		"array":        `[]`,
		"trailing":     `{"version":1} {}`,
		"unknown":      `{"version":1,"extra":true}`,
		"version":      `{"version":2,"object":"` + sampleObject + `","name":"n","size":1,"md5":"0123456789abcdef0123456789abcdef","sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}`,
		"object path":  `{"version":1,"object":"../etc/passwd","name":"n","size":1,"md5":"0123456789abcdef0123456789abcdef","sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}`,
		"negative":     `{"version":1,"object":"` + sampleObject + `","name":"n","size":-1,"md5":"0123456789abcdef0123456789abcdef","sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}`,
		"md5 case":     `{"version":1,"object":"` + sampleObject + `","name":"n","size":1,"md5":"0123456789ABCDEF0123456789abcdef","sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}`,
		"no name":      `{"version":1,"object":"` + sampleObject + `","name":"","size":1,"md5":"0123456789abcdef0123456789abcdef","sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}`,
		"empty meta k": `{"version":1,"object":"` + sampleObject + `","name":"n","size":1,"md5":"0123456789abcdef0123456789abcdef","sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","meta":{"":"x"}}`,
	} {
		_, _, err := parseInfo([]byte(s))
		assert.ErrorIs(t, err, ErrCorrupt, name)
	}
}

// FuzzParseInfo checks that parseInfo never panics, and that what it accepts
// survives a round trip through marshalInfo unchanged.
func FuzzParseInfo(f *testing.F) {
	b, err := marshalInfo(sampleObject, sampleInfo())
	require.NoError(f, err)
	f.Add(b)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"object":"` + sampleObject + `","name":"n","size":0,"md5":"d41d8cd98f00b204e9800998ecf8427e","sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","created":"2026-01-01T00:00:00Z","meta":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		object, info, err := parseInfo(b)
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		again, err := marshalInfo(object, info)
		require.NoError(t, err)
		object2, info2, err := parseInfo(again)
		require.NoError(t, err, "re-parsing %s", again)
		assert.Equal(t, object, object2)
		assert.Equal(t, info.Name, info2.Name)
		assert.Equal(t, info.Size, info2.Size)
		assert.Equal(t, info.MD5, info2.MD5)
		assert.Equal(t, info.SHA256, info2.SHA256)
		assert.True(t, info.Created.Equal(info2.Created))
		assert.Equal(t, info.Meta, info2.Meta)
	})
}
