package mongodb

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
)

// TestClassifyKeepsTheChain checks that a driver error is classified as
// refused credentials or an unreachable server, and that the driver's own
// error can still be inspected.
func TestClassifyKeepsTheChain(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"command unauthorized", mongo.CommandError{Code: 13, Name: "Unauthorized", Message: "not authorized on app"}, ErrUnauthorized},
		{"login failed", driver.Error{Code: 18, Message: "Authentication failed."}, ErrUnauthorized},
		{"wrapped login failed", fmt.Errorf("handshake: %w", driver.Error{Code: 18}), ErrUnauthorized},
		{"other command error", mongo.CommandError{Code: 26, Name: "NamespaceNotFound"}, ErrUnreachable},
		{"network", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, ErrUnreachable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Classify(tc.err)
			require.ErrorIs(t, err, tc.want)
			inner := reflect.New(reflect.TypeOf(tc.err))
			assert.True(t, errors.As(err, inner.Interface()), "the driver's %T is still in the chain", tc.err)
			other := ErrUnreachable
			if tc.want == ErrUnreachable {
				other = ErrUnauthorized
			}
			assert.NotErrorIs(t, err, other)
		})
	}
	var ce mongo.CommandError
	require.ErrorAs(t, Classify(mongo.CommandError{Code: 13}), &ce)
	assert.EqualValues(t, 13, ce.Code)
}

func TestSplit(t *testing.T) {
	for ns, want := range map[string][2]string{"app.users": {"app", "users"}, "a.b.c": {"a", "b.c"}} {
		db, coll, ok := Split(ns)
		assert.True(t, ok, ns)
		assert.Equal(t, want, [2]string{db, coll})
	}
	for _, ns := range []string{"", "app", "app.", ".users"} {
		_, _, ok := Split(ns)
		assert.False(t, ok, ns)
	}
}
