package backup

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/keepslot/keepslot/internal/mongodb"
)

// role is what a server says of its place in a deployment: its answer to
// hello, and the shard identity document that a shard's members keep in
// admin.system.version once the shard is added to a cluster (nil where
// there is none, or the user may not read it).
type role struct {
	hello    bson.Raw
	identity bson.Raw
}

// readRole asks the server for its role: hello (isMaster on a server too
// old for hello), and admin.system.version's shardIdentity.
func (s *Source) readRole(ctx context.Context, client *mongo.Client) (role, error) {
	if s.role != nil { // a test's crafted answers
		return *s.role, nil
	}
	var r role
	admin := client.Database("admin", options.Database().SetReadPreference(readpref.PrimaryPreferred()))
	ask := func(cmd string) error {
		return mongodb.Ask(ctx, s.Conn.OperationTimeout, func(ctx context.Context) (err error) {
			r.hello, err = admin.RunCommand(ctx, bson.D{{Key: cmd, Value: 1}}).Raw()
			return err
		})
	}
	err := ask("hello")
	if mongodb.IsCode(err, mongodb.CodeCommandNotFound) {
		err = ask("isMaster")
	}
	if err != nil {
		return r, fmt.Errorf("ask the server its role (hello): %w", err)
	}
	err = mongodb.Ask(ctx, s.Conn.OperationTimeout, func(ctx context.Context) (err error) {
		r.identity, err = admin.Collection("system.version").FindOne(ctx, bson.D{{Key: "_id", Value: "shardIdentity"}}).Raw()
		return err
	})
	switch {
	case err == nil, errors.Is(err, mongo.ErrNoDocuments), mongodb.IsAuthError(err):
		// No identity, or none this user may read: hello is all there is.
	default:
		return r, fmt.Errorf("read admin.system.version for a shard identity: %w", err)
	}
	return r, nil
}

// sharded fails with ErrSharded for a mongos (hello's msg is "isdbgrid"),
// a member of a config server replica set (hello's configsvr), or a member
// of a shard (its shard identity); nil for a replica set's member or a
// standalone node.
func (r role) sharded() error {
	if msg, _ := r.hello.Lookup("msg").StringValueOK(); msg == "isdbgrid" {
		return fmt.Errorf("%w: it is a mongos (hello's msg is isdbgrid), the router of a sharded cluster", ErrSharded)
	}
	if _, err := r.hello.LookupErr("configsvr"); err == nil {
		return fmt.Errorf("%w: it is a member of a sharded cluster's config server replica set (hello has configsvr)", ErrSharded)
	}
	if r.identity != nil {
		shard, _ := r.identity.Lookup("shardName").StringValueOK()
		if len(shard) > maxIDText {
			shard = shard[:maxIDText] + "…"
		}
		return fmt.Errorf("%w: it is a member of shard %q of a sharded cluster (admin.system.version holds its shardIdentity)", ErrSharded, shard)
	}
	return nil
}
