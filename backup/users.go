package backup

import (
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/internal/mongodb"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/slot"
)

// authzWanted reports whether s backs up users and roles: on a full dump
// unless Off, and with an Include when On.
func (s *Source) authzWanted() bool {
	switch s.UsersAndRoles {
	case ToggleOn:
		return true
	case ToggleAuto:
		return len(s.Filter.Include) == 0
	}
	return false
}

// authzSelected reports whether the system collection ns is one that s
// backs up.
func (s *Source) authzSelected(ns string) bool {
	if !mongodb.IsAuthz(ns) || !s.authzWanted() {
		return false
	}
	if s.UsersAndRoles == ToggleOn {
		return namespace.Filter{Exclude: s.Filter.Exclude}.Match(ns)
	}
	return s.Filter.Match(ns)
}

// planAuthz returns the queries that select the users and roles p backs up
// (those of the databases p holds, when the filter has an Include), and a
// note when the server keeps none.
func (s *Source) planAuthz(p slot.Plan) (map[string]bson.D, string) {
	if !s.authzWanted() {
		return nil, ""
	}
	found := slices.ContainsFunc(p.Collections, func(c archive.Collection) bool { return c.Namespace() == mongodb.Users })
	if !found {
		return nil, "users and roles are not backed up: the server has no admin.system.users (FerretDB keeps none)"
	}
	if len(s.Filter.Include) == 0 {
		return nil, ""
	}
	dbs := bson.A{}
	seen := map[string]bool{}
	for _, c := range p.Collections {
		if !mongodb.IsAuthz(c.Namespace()) && !seen[c.DB] {
			seen[c.DB] = true
			dbs = append(dbs, c.DB)
		}
	}
	q := bson.D{{Key: "db", Value: bson.D{{Key: "$in", Value: dbs}}}}
	return map[string]bson.D{mongodb.Users: q, mongodb.Roles: q}, ""
}
