// Package conn says how keepslot reaches a MongoDB server: a [Config],
// which package backup's Source, restore's and drill's Options and pitr's
// Config each hold as their Conn field.
package conn

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// DefaultTimeout is how long keepslot waits to find the server of a URI
// (server selection), and for a backup's first ping, before it reports the
// server unreachable.
const DefaultTimeout = 10 * time.Second

// DefaultOperationTimeout is how long keepslot waits for the server to
// answer one request (a listing, a batch of documents read, inserted or
// replayed, a command) before it fails as unreachable, rather than wait
// forever on a server that stopped answering. An index build is not
// bounded by it: it runs as long as the server answers pings within it.
const DefaultOperationTimeout = time.Minute

// Config says which server to reach, and how long to wait for it. Client
// or URI is required; the timeouts have defaults.
type Config struct {
	// Client is a connected client of the server, which its owner
	// disconnects. If nil, URI is connected to on first use, and
	// disconnected when the backup, restore or slicer is done (its
	// Close, or the end of Run).
	Client *mongo.Client

	// URI is the server's connection string, used when Client is nil,
	// e.g. "mongodb://user:password@host:27017/?replicaSet=rs0".
	URI string

	// Timeout bounds each wait to find the server of URI (server
	// selection) and a backup's first ping; default DefaultTimeout.
	Timeout time.Duration

	// OperationTimeout bounds the wait for each later request (a listing,
	// a batch of documents or of the oplog, a command), and the
	// disconnect, before it fails as unreachable (errcode.Unreachable);
	// default DefaultOperationTimeout.
	OperationTimeout time.Duration
}
