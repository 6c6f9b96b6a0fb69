package restore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/restore"
)

// adminCollections lists admin's collections but the server's own.
func adminCollections(t *testing.T, e *testnode.Env) []string {
	names, err := e.Srv.Client.Database("admin").ListCollectionNames(context.Background(), bson.D{})
	require.NoError(t, err)
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, "keepslot_") {
			out = append(out, n)
		}
	}
	return out
}

// TestUsersAndRolesMerge backs up users and roles and merges them on
// restore. On a real server it creates a user and a role, drops them, and
// gets them back; on FerretDB, which has no users and cannot merge them, a
// stand-in admin.system.users is backed up and the restore notes that it
// could not merge it, leaving nothing behind.
func TestUsersAndRolesMerge(t *testing.T) {
	e := testnode.New(t)
	ctx := context.Background()
	e.Seed(2)
	admin := e.Srv.Client.Database("admin")
	app := e.Srv.DB("app")
	user, role := e.Srv.Prefix+"user", e.Srv.Prefix+"role"
	cfg := e.Config()
	if e.Srv.Embedded {
		cfg.Filter = namespace.Filter{} // a full dump
		require.NoError(t, admin.CreateCollection(ctx, "system.users"))
		_, err := admin.Collection("system.users").InsertOne(ctx, bson.D{{Key: "_id", Value: app + "." + user}, {Key: "user", Value: user}, {Key: "db", Value: app}})
		require.NoError(t, err)
	} else {
		cfg.UsersAndRoles = backup.ToggleOn // with the test's Include
		db := e.Srv.Client.Database(app)
		require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "createRole", Value: role}, {Key: "privileges", Value: bson.A{}}, {Key: "roles", Value: bson.A{}}}).Err())
		require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "createUser", Value: user}, {Key: "pwd", Value: "not a secret"}, {Key: "roles", Value: bson.A{role}}}).Err())
		t.Cleanup(func() {
			_ = db.RunCommand(context.Background(), bson.D{{Key: "dropUser", Value: user}}).Err()
			_ = db.RunCommand(context.Background(), bson.D{{Key: "dropRole", Value: role}}).Err()
		})
	}
	_, data := testnode.BackupBytes(t, e, cfg)

	opts := restore.Options{Conn: conn.Config{Client: e.Srv.Client}, Renames: []namespace.Rename{{From: e.Srv.Prefix + "*", To: e.Srv.Prefix + "r_*"}}}
	dry := opts
	dry.DryRun = true
	rep, err := testnode.RestoreBytes(t, data, dry)
	require.NoError(t, err)
	assert.Contains(t, strings.Join(rep.Notes, "\n"), "would merge 1 users")

	if e.Srv.Embedded {
		rep, err = testnode.RestoreBytes(t, data, opts)
		require.NoError(t, err)
		assert.Contains(t, strings.Join(rep.Notes, "\n"), "users and roles not restored: the server cannot merge them")
		assert.Empty(t, adminCollections(t, e), "the temporary collections are dropped")
		n, err := admin.Collection("system.users").CountDocuments(ctx, bson.D{})
		require.NoError(t, err)
		assert.EqualValues(t, 1, n, "the server's own are left alone")
		return
	}

	db := e.Srv.Client.Database(app)
	require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "dropUser", Value: user}}).Err())
	require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "dropRole", Value: role}}).Err())
	usersNow := func() (users, roles int) {
		var u struct {
			Users []bson.Raw `bson:"users"`
		}
		require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "usersInfo", Value: user}}).Decode(&u))
		var r struct {
			Roles []bson.Raw `bson:"roles"`
		}
		require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "rolesInfo", Value: role}}).Decode(&r))
		return len(u.Users), len(r.Roles)
	}

	skip := opts
	skip.SkipUsersAndRoles, skip.Drop = true, true
	rep, err = testnode.RestoreBytes(t, data, skip)
	require.NoError(t, err)
	u, r := usersNow()
	assert.Equal(t, 0, u+r, "SkipUsersAndRoles restores neither")

	opts.Drop = true
	rep, err = testnode.RestoreBytes(t, data, opts)
	require.NoError(t, err)
	assert.Contains(t, strings.Join(rep.Notes, "\n"), "merged 1 users and 1 roles")
	u, r = usersNow()
	assert.Equal(t, 1, u, "the user is back")
	assert.Equal(t, 1, r, "the role is back")
	assert.Empty(t, adminCollections(t, e), "the temporary collections are dropped")
}
