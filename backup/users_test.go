package backup_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/internal/testkit/testnode"
	"github.com/keepslot/keepslot/namespace"
)

// TestUsersAndRolesWithoutThem checks that a server without users and roles
// (FerretDB keeps none) is backed up anyway, with a note.
func TestUsersAndRolesWithoutThem(t *testing.T) {
	e := testnode.New(t)
	if !e.Srv.Embedded {
		// A full dump of a shared server would take in every database on it.
		e.Filter = namespace.Filter{Include: []string{e.Srv.Prefix + "*"}}
	} else {
		e.Filter = namespace.Filter{} // a full dump
	}
	e.Seed(3)
	cfg := e.Config()
	if !e.Srv.Embedded {
		cfg.UsersAndRoles = backup.ToggleOn
	}
	st, _ := testnode.BackupBytes(t, e, cfg)
	if e.Srv.Embedded {
		assert.Contains(t, strings.Join(st.Notes, "\n"), "users and roles are not backed up")
	}

	cfg.UsersAndRoles = backup.ToggleOff
	st, _ = testnode.BackupBytes(t, e, cfg)
	assert.NotContains(t, strings.Join(st.Notes, "\n"), "users and roles")
}
