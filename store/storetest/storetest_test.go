package storetest_test

import (
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/keepslot/keepslot/store"
	"github.com/keepslot/keepslot/store/storetest"
)

// Run gives every subtest a store of its own.
func TestRunFreshStorePerSubtest(t *testing.T) {
	var made atomic.Int32
	seen := map[store.Store]bool{}
	storetest.Run(t, func(t *testing.T) store.Store {
		made.Add(1)
		s := store.Memory()
		seen[s] = true
		return s
	})
	assert.Greater(t, made.Load(), int32(10), "subtests run")
	assert.Len(t, seen, int(made.Load()), "one store per subtest")
}
