package pitr

import "go.mongodb.org/mongo-driver/v2/bson"

// SetOplogNamespace points c's slicer at another namespace than
// local.oplog.rs, so that a test can use one that a real server lacks.
func SetOplogNamespace(c *Config, ns string) { c.oplogNS = ns }

// SetAfterRead has c's slicer call f with its horizon after each read of
// the oplog.
func SetAfterRead(c *Config, f func(horizon bson.Timestamp)) { c.afterRead = f }
