package backup

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
)

// SetOplogNamespace points s's oplog capture at another namespace than
// local.oplog.rs, so that a test can overrun a small capped collection of its
// own on a server whose real oplog it cannot shrink.
func SetOplogNamespace(s *Source, ns string) { s.oplogNS = ns }

// SetBatchBytes sets the size of the cursor batches that s asks for.
func SetBatchBytes(s *Source, n int64) { s.batchBytes = n }

// SetBeforeGetMore makes s call f while it reads a collection, each time
// the batch in hand is used up and the cursor, whose id it is given, must
// ask the server for the next one.
func SetBeforeGetMore(s *Source, f func(c archive.Collection, cursorID int64)) { s.beforeGetMore = f }

// SetRole makes s take hello and shardIdentity (nil: none) as the server's
// answers about its role, as a mongos or a shard's member would give them.
func SetRole(s *Source, hello, shardIdentity bson.Raw) {
	s.role = &role{hello: hello, identity: shardIdentity}
}
