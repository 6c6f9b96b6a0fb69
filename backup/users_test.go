package backup_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/restore"
	"github.com/keepslot/keepslot/slot"
)

// adminCollections lists admin's collections but the server's own.
func adminCollections(t *testing.T, e *env) []string {
	names, err := e.srv.Client.Database("admin").ListCollectionNames(context.Background(), bson.D{})
	require.NoError(t, err)
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, "keepslot_") {
			out = append(out, n)
		}
	}
	return out
}

// TestUsersAndRolesWithoutThem checks that a server without users and roles
// (FerretDB keeps none) is backed up anyway, with a note.
func TestUsersAndRolesWithoutThem(t *testing.T) {
	e := newEnv(t)
	if !e.srv.Embedded {
		// A full dump of a shared server would take in every database on it.
		e.filter = namespace.Filter{Include: []string{e.srv.Prefix + "*"}}
	} else {
		e.filter = namespace.Filter{} // a full dump
	}
	e.seed(3)
	cfg := e.config()
	if !e.srv.Embedded {
		cfg.UsersAndRoles = slot.ToggleOn
	}
	st, _ := backupBytes(t, e, cfg)
	if e.srv.Embedded {
		assert.Contains(t, strings.Join(st.Notes, "\n"), "users and roles are not backed up")
	}

	cfg.UsersAndRoles = slot.ToggleOff
	st, _ = backupBytes(t, e, cfg)
	assert.NotContains(t, strings.Join(st.Notes, "\n"), "users and roles")
}

// TestUsersAndRolesMerge backs up users and roles and merges them on
// restore. On a real server it creates a user and a role, drops them, and
// gets them back; on FerretDB, which has no users and cannot merge them, a
// stand-in admin.system.users is backed up and the restore notes that it
// could not merge it, leaving nothing behind.
func TestUsersAndRolesMerge(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.seed(2)
	admin := e.srv.Client.Database("admin")
	app := e.srv.DB("app")
	user, role := e.srv.Prefix+"user", e.srv.Prefix+"role"
	cfg := e.config()
	if e.srv.Embedded {
		cfg.Filter = namespace.Filter{} // a full dump
		require.NoError(t, admin.CreateCollection(ctx, "system.users"))
		_, err := admin.Collection("system.users").InsertOne(ctx, bson.D{{Key: "_id", Value: app + "." + user}, {Key: "user", Value: user}, {Key: "db", Value: app}})
		require.NoError(t, err)
	} else {
		cfg.UsersAndRoles = slot.ToggleOn // with the test's Include
		db := e.srv.Client.Database(app)
		require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "createRole", Value: role}, {Key: "privileges", Value: bson.A{}}, {Key: "roles", Value: bson.A{}}}).Err())
		require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "createUser", Value: user}, {Key: "pwd", Value: "not a secret"}, {Key: "roles", Value: bson.A{role}}}).Err())
		t.Cleanup(func() {
			_ = db.RunCommand(context.Background(), bson.D{{Key: "dropUser", Value: user}}).Err()
			_ = db.RunCommand(context.Background(), bson.D{{Key: "dropRole", Value: role}}).Err()
		})
	}
	_, data := backupBytes(t, e, cfg)

	opts := restore.Options{Client: e.srv.Client, Renames: []namespace.Rename{{From: e.srv.Prefix + "*", To: e.srv.Prefix + "r_*"}}}
	dry := opts
	dry.DryRun = true
	rep, err := restoreBytes(t, data, dry)
	require.NoError(t, err)
	assert.Contains(t, strings.Join(rep.Notes, "\n"), "would merge 1 users")

	if e.srv.Embedded {
		rep, err = restoreBytes(t, data, opts)
		require.NoError(t, err)
		assert.Contains(t, strings.Join(rep.Notes, "\n"), "users and roles not restored: the server cannot merge them")
		assert.Empty(t, adminCollections(t, e), "the temporary collections are dropped")
		n, err := admin.Collection("system.users").CountDocuments(ctx, bson.D{})
		require.NoError(t, err)
		assert.EqualValues(t, 1, n, "the server's own are left alone")
		return
	}

	db := e.srv.Client.Database(app)
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
	rep, err = restoreBytes(t, data, skip)
	require.NoError(t, err)
	u, r := usersNow()
	assert.Equal(t, 0, u+r, "SkipUsersAndRoles restores neither")

	opts.Drop = true
	rep, err = restoreBytes(t, data, opts)
	require.NoError(t, err)
	assert.Contains(t, strings.Join(rep.Notes, "\n"), "merged 1 users and 1 roles")
	u, r = usersNow()
	assert.Equal(t, 1, u, "the user is back")
	assert.Equal(t, 1, r, "the role is back")
	assert.Empty(t, adminCollections(t, e), "the temporary collections are dropped")
}
