package archive

import (
	"encoding/binary"
	"hash/crc64"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ArchiveFormat is mongodump's --archive format, as specified in
// mongo-tools' common/archive/spec.md. Its zero value has the default
// settings.
type ArchiveFormat struct {
	// ConcurrentCollections is recorded in the archive header; mongorestore
	// restores at least that many collections at once. Default 4.
	ConcurrentCollections int
}

// Name returns "archive".
func (ArchiveFormat) Name() string { return "archive" }

// Extension returns ".archive".
func (ArchiveFormat) Extension() string { return ".archive" }

// Match reports whether head starts with the archive format's magic number.
func (ArchiveFormat) Match(head []byte) bool {
	return len(head) >= 4 && binary.LittleEndian.Uint32(head) == archiveMagic
}

const (
	archiveMagic   uint32 = 0x8199e26d
	archiveVersion        = "0.1"
	// maxPrelude bounds the prelude (header and metadata documents) read.
	maxPrelude = 128 << 20
	// defaultServerVersion is recorded when the Header has none:
	// mongorestore parses the field as a version.
	defaultServerVersion = "0.0.0"
)

var crcTable = crc64.MakeTable(crc64.ECMA)

var terminatorBytes = []byte{0xff, 0xff, 0xff, 0xff}

// archiveHeader is the header document of the prelude.
type archiveHeader struct {
	ConcurrentCollections int32  `bson:"concurrent_collections"`
	Version               string `bson:"version"`
	ServerVersion         string `bson:"server_version"`
	ToolVersion           string `bson:"tool_version"`
}

// archiveMetadata is a metadata document of the prelude.
type archiveMetadata struct {
	DB         string `bson:"db"`
	Collection string `bson:"collection"`
	Metadata   string `bson:"metadata"`
	Size       int64  `bson:"size"`
	Type       string `bson:"type"`
}

// namespaceHeader starts a segment or, with EOF set, ends a namespace.
type namespaceHeader struct {
	DB         string `bson:"db"`
	Collection string `bson:"collection"`
	EOF        bool   `bson:"EOF"`
	CRC        int64  `bson:"CRC"`
}

func marshalNamespaceHeader(c Collection, eof bool, crc uint64) ([]byte, error) {
	return bson.Marshal(bson.D{
		{Key: "db", Value: c.DB},
		{Key: "collection", Value: c.Name},
		{Key: "EOF", Value: eof},
		{Key: "CRC", Value: int64(crc)},
	})
}

func appendDoc(buf []byte, d bson.D) ([]byte, error) {
	b, err := bson.Marshal(d)
	return append(buf, b...), err
}
