package restore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/internal/mongodb"
)

// authzTarget prepares the restore of users, roles or the auth version:
// into a temporary collection of admin, merged by mergeAuthz once every
// namespace is restored. They are never renamed.
func (r *restorer) authzTarget(ctx context.Context, c *archive.Collection) (*target, error) {
	from := c.Namespace()
	col := *c
	col.Indexes = nil // the temporary collection needs none
	t := &target{col: col, to: from}
	r.byFrom[from] = t
	r.order = append(r.order, t)
	if r.opts.DryRun {
		return t, nil
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "keepslot_restore_" + hex.EncodeToString(b) + "_" + c.Name[len("system."):]
	d := r.client.Database("admin")
	if err := mongodb.Ask(ctx, r.opts.Conn.OperationTimeout, func(ctx context.Context) error { return d.CreateCollection(ctx, name) }); err != nil {
		return nil, fmt.Errorf("create admin.%s for restoring %s: %w", name, from, err)
	}
	r.temps = append(r.temps, name)
	t.coll = d.Collection(name)
	return t, nil
}

// mergeAuthz merges the restored users and roles into the server's with
// _mergeAuthzCollections, as mongorestore does: users and roles of the
// backup are added, those of the same name replaced, and the others kept
// (never dropped). It does not when the backup's auth schema version differs
// from the server's, or the server has no such command (FerretDB); the
// Report notes why.
func (r *restorer) mergeAuthz(ctx context.Context) error {
	users, roles, version := r.byFrom[mongodb.Users], r.byFrom[mongodb.Roles], r.byFrom[mongodb.AuthVersion]
	if users == nil && roles == nil {
		return nil
	}
	var nu, nr int64
	if users != nil {
		nu = users.docs
	}
	if roles != nil {
		nr = roles.docs
	}
	if r.opts.DryRun {
		r.note("would merge %d users and %d roles into the server's", nu, nr)
		return nil
	}
	if version != nil {
		theirs, err := authSchema(ctx, r.opts.Conn.OperationTimeout, version.coll)
		if err != nil {
			return err
		}
		ours, err := authSchema(ctx, r.opts.Conn.OperationTimeout, r.client.Database("admin").Collection("system.version"))
		if err != nil {
			return err
		}
		if theirs != 0 && ours != 0 && theirs != ours {
			r.note("users and roles not restored: the backup's auth schema is version %d, the server's %d", theirs, ours)
			return nil
		}
	}
	tempName := func(t *target) (string, error) {
		if t != nil {
			return t.coll.Name(), nil
		}
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		name := "keepslot_restore_" + hex.EncodeToString(b) + "_empty"
		err := mongodb.Ask(ctx, r.opts.Conn.OperationTimeout, func(ctx context.Context) error { return r.client.Database("admin").CreateCollection(ctx, name) })
		if err != nil {
			return "", fmt.Errorf("create admin.%s for merging users and roles: %w", name, err)
		}
		r.temps = append(r.temps, name)
		return name, nil
	}
	tu, err := tempName(users)
	if err != nil {
		return err
	}
	tr, err := tempName(roles)
	if err != nil {
		return err
	}
	err = mongodb.Ask(ctx, r.opts.Conn.OperationTimeout, func(ctx context.Context) error {
		return r.client.Database("admin").RunCommand(ctx, bson.D{
			{Key: "_mergeAuthzCollections", Value: 1},
			{Key: "tempUsersCollection", Value: "admin." + tu},
			{Key: "tempRolesCollection", Value: "admin." + tr},
			{Key: "drop", Value: false},
			{Key: "db", Value: ""},
		}).Err()
	})
	switch {
	case mongodb.IsCode(err, mongodb.CodeCommandNotFound):
		r.note("users and roles not restored: the server cannot merge them (it has no _mergeAuthzCollections command)")
		return nil
	case err != nil && mongodb.IsAuthError(err):
		return fmt.Errorf("merge users and roles: %w", mongodb.Classify(err))
	case err != nil:
		return fmt.Errorf("merge users and roles: %w", err)
	}
	r.note("merged %d users and %d roles into the server's", nu, nr)
	return nil
}

// authSchema returns the currentVersion of the authSchema document of a
// system.version collection, 0 when there is none, giving the server
// timeout to answer.
func authSchema(ctx context.Context, timeout time.Duration, coll *mongo.Collection) (int64, error) {
	var doc struct {
		CurrentVersion any `bson:"currentVersion"`
	}
	err := mongodb.Ask(ctx, timeout, func(ctx context.Context) error {
		return coll.FindOne(ctx, bson.D{{Key: "_id", Value: "authSchema"}}).Decode(&doc)
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the auth schema version of %s.%s: %w", coll.Database().Name(), coll.Name(), err)
	}
	switch v := doc.CurrentVersion.(type) {
	case int32:
		return int64(v), nil
	case int64:
		return v, nil
	case float64:
		return int64(v), nil
	}
	return 0, nil
}

// dropTemps drops the temporary collections of the users and roles.
func (r *restorer) dropTemps(ctx context.Context) {
	for _, name := range r.temps {
		err := mongodb.Ask(ctx, r.opts.Conn.OperationTimeout, func(ctx context.Context) error { return r.client.Database("admin").Collection(name).Drop(ctx) })
		if err != nil {
			r.opts.Logger.Warn("restore: drop a temporary collection", "collection", "admin."+name, "error", err)
		}
	}
	r.temps = nil
}
