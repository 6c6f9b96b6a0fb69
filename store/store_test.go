package store_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/store"
	"github.com/keepslot/keepslot/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return store.Memory() })
}

func TestDirConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := store.Dir(t.TempDir() + "/slot")
		require.NoError(t, err)
		return s
	})
}

func TestMemoryRemoteConformance(t *testing.T) {
	storetest.RunRemote(t, func(t *testing.T) store.Remote { return store.MemoryRemote() })
}
