package backup

import (
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
)

// The namespaces of users and roles, backed up like mongodump's full dump.
const (
	authzUsers   = "admin.system.users"
	authzRoles   = "admin.system.roles"
	authzVersion = "admin.system.version" // holds authSchema, the users' format
)

func isAuthz(ns string) bool { return ns == authzUsers || ns == authzRoles || ns == authzVersion }

// authzWanted reports whether s backs up users and roles: on a full dump
// unless Off, and with an Include when On.
func (s *MongoSource) authzWanted() bool {
	switch s.UsersAndRoles {
	case On:
		return true
	case Auto:
		return len(s.Filter.Include) == 0
	}
	return false
}

// authzSelected reports whether the system collection ns is one that s
// backs up.
func (s *MongoSource) authzSelected(ns string) bool {
	if !isAuthz(ns) || !s.authzWanted() {
		return false
	}
	if s.UsersAndRoles == On {
		return !matchAny(s.Filter.Exclude, ns)
	}
	return s.Filter.Match(ns)
}

// planAuthz returns the queries that select the users and roles p backs up
// (those of the databases p holds, when the filter has an Include), and a
// note when the server keeps none.
func (s *MongoSource) planAuthz(p Plan) (map[string]bson.D, string) {
	if !s.authzWanted() {
		return nil, ""
	}
	found := slices.ContainsFunc(p.Collections, func(c archive.Collection) bool { return c.Namespace() == authzUsers })
	if !found {
		return nil, "users and roles are not backed up: the server has no admin.system.users (FerretDB keeps none)"
	}
	if len(s.Filter.Include) == 0 {
		return nil, ""
	}
	dbs := bson.A{}
	seen := map[string]bool{}
	for _, c := range p.Collections {
		if !isAuthz(c.Namespace()) && !seen[c.DB] {
			seen[c.DB] = true
			dbs = append(dbs, c.DB)
		}
	}
	q := bson.D{{Key: "db", Value: bson.D{{Key: "$in", Value: dbs}}}}
	return map[string]bson.D{authzUsers: q, authzRoles: q}, ""
}
