// Package mongodb holds what keepslot's backup and restore share about a
// MongoDB server: connecting to it, bounding each request's wait for an
// answer, classifying its errors, its error codes, and the namespaces it
// keeps to itself.
package mongodb

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/auth"

	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/errcode"
)

// Errors of a server that does not answer or refuses.
var (
	// ErrUnreachable: the MongoDB server did not answer.
	ErrUnreachable = errcode.New(errcode.Unreachable, "the MongoDB server cannot be reached; check that it runs and the URI")

	// ErrUnauthorized: the server refused the credentials, or the user
	// lacks a privilege the backup or restore needs.
	ErrUnauthorized = errcode.New(errcode.Unauthorized, "the MongoDB server refused the credentials or a privilege; check the user and password in the URI and the user's roles (backup needs the backup role, restore the restore role)")

	// ErrReplyTooLarge: the server sent one answer larger than the wire
	// protocol's limit that it announced (maxMessageSizeBytes, 48 MB),
	// which the driver refuses to read. The server answered: it is not
	// unreachable, but it does not bound a batch of a cursor to 16 MiB
	// as mongod does (FerretDB may not, with documents of several MiB).
	ErrReplyTooLarge = errcode.New(errcode.Internal, "the MongoDB server sent an answer larger than the wire protocol's limit (maxMessageSizeBytes, 48 MB), which the driver refuses: the server does not bound a batch to 16 MiB as mongod does, which happens on FerretDB with large documents; leave the collection with the largest documents out of the filter and report it to the server's maintainers")

	// ErrSlow: a request got no answer within the operation timeout, but
	// the server answers a ping within it: the server is busy or the
	// request heavy, not down.
	ErrSlow = errcode.New(errcode.Cancelled, "the MongoDB server answers, but a request took longer than the operation timeout: raise the operation timeout (OperationTimeout; keepslotd -operation-timeout, keepslotctl restore --operation-timeout) for a server that is busy or a request that is heavy")
)

// Timeout returns d, or conn.DefaultTimeout when d is not positive.
func Timeout(d time.Duration) time.Duration {
	if d <= 0 {
		return conn.DefaultTimeout
	}
	return d
}

// Connect makes a client for uri that gives up on server selection after
// timeout (conn.DefaultTimeout if 0).
func Connect(uri string, timeout time.Duration) (*mongo.Client, error) {
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(Timeout(timeout)))
	if err != nil {
		return nil, Classify(err)
	}
	return c, nil
}

// The server's error codes that keepslot tells apart.
const (
	CodeUnauthorized         = 13
	CodeAuthenticationFailed = 18
	CodeNamespaceNotFound    = 26
	CodeIndexNotFound        = 27
	CodePathNotViable        = 28
	CodeCursorNotFound       = 43
	CodeNamespaceExists      = 48
	CodeCommandNotFound      = 59
	CodeIndexOptionsConflict = 85
	CodeIndexKeySpecConflict = 86
	CodeCappedPositionLost   = 136
	CodeQueryPlanKilled      = 175
	CodeCursorKilled         = 237
	CodeNotImplemented       = 238
	CodeDuplicateKey         = 11000
)

// IsCode reports whether err is a server error with the given code.
func IsCode(err error, code int) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(code)
}

// IsCursorLost reports whether err is the server's report that a cursor
// it was asked for the next batch of is gone: killed, ended with its
// collection's drop, or idle past the server's cursor timeout.
func IsCursorLost(err error) bool {
	return IsCode(err, CodeCursorNotFound) || IsCode(err, CodeQueryPlanKilled) ||
		IsCode(err, CodeCursorKilled) || IsCode(err, CodeNamespaceNotFound)
}

// Classify wraps an error of the driver in ErrUnauthorized when the server
// refused the login or a privilege, in ErrReplyTooLarge for an answer the
// driver would not read, else in ErrUnreachable. The driver's
// error stays in the chain; an error that is one of the two already is
// returned as it is.
func Classify(err error) error {
	if errors.Is(err, ErrUnreachable) || errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrReplyTooLarge) || errors.Is(err, ErrSlow) {
		return err
	}
	if IsReplyTooLarge(err) {
		return fmt.Errorf("%w: %w", ErrReplyTooLarge, err)
	}
	if IsAuthError(err) {
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, err)
}

// IsReplyTooLarge reports whether err is the driver's refusal to read an
// answer above the server's maxMessageSizeBytes. The driver's error for it
// is unexported: its text is what tells it.
func IsReplyTooLarge(err error) bool {
	return err != nil && strings.Contains(err.Error(), "length of read message too large")
}

// IsAuthError reports whether err is the server's refusal of a login or of
// a privilege.
func IsAuthError(err error) bool {
	var ae *auth.Error
	if errors.As(err, &ae) {
		return true
	}
	if IsCode(err, CodeUnauthorized) || IsCode(err, CodeAuthenticationFailed) {
		return true
	}
	var de driver.Error
	return errors.As(err, &de) && (de.Code == CodeUnauthorized || de.Code == CodeAuthenticationFailed)
}

// ServerDatabase reports whether db is one the server keeps for itself,
// local or config, which no backup holds.
func ServerDatabase(db string) bool { return db == "local" || db == "config" }

// The namespaces of users and roles, which a full backup holds like
// mongodump's, and which restore merges rather than writes.
const (
	Users       = "admin.system.users"
	Roles       = "admin.system.roles"
	AuthVersion = "admin.system.version" // holds authSchema, the users' format
)

// IsAuthz reports whether ns is one of Users, Roles and AuthVersion.
func IsAuthz(ns string) bool { return ns == Users || ns == Roles || ns == AuthVersion }

// Split splits a namespace into its database and collection; ok is false
// unless both are non-empty.
func Split(ns string) (db, coll string, ok bool) {
	db, coll, ok = strings.Cut(ns, ".")
	return db, coll, ok && db != "" && coll != ""
}
