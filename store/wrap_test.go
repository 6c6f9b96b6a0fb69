package store_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/store"
	"github.com/keepslot/keepslot/store/storetest"
)

// counting decorates a Store, as an embedder's wrapper would, and passes
// every call on. It implements no optional capability itself.
type counting struct {
	store.Store
	creates atomic.Int64
}

func (c *counting) Create(ctx context.Context, name string) (store.Pending, error) {
	c.creates.Add(1)
	return c.Store.Create(ctx, name)
}

func (c *counting) Unwrap() store.Store { return c.Store }

// fixedSpace decorates a Store and reports a fixed free space of its own.
type fixedSpace struct {
	store.Store
	free int64
}

func (f fixedSpace) Unwrap() store.Store                      { return f.Store }
func (f fixedSpace) FreeSpace(context.Context) (int64, error) { return f.free, nil }

// opaque decorates a Store without Unwrap: what it hides stays hidden.
type opaque struct{ store.Store }

func TestAsFindsSpaceReporterThroughWrappers(t *testing.T) {
	dir, err := store.Dir(t.TempDir())
	require.NoError(t, err)
	wrapped := &counting{Store: &counting{Store: dir}}

	_, direct := store.Store(wrapped).(store.SpaceReporter)
	require.False(t, direct, "the wrapper itself is no SpaceReporter")
	sr, ok := store.As[store.SpaceReporter](wrapped)
	require.True(t, ok, "As finds the Dir under two wrappers")
	assert.Same(t, dir, sr.(*store.DirStore))
	free, err := sr.FreeSpace(t.Context())
	require.NoError(t, err)
	assert.Positive(t, free)

	d, ok := store.As[*store.DirStore](wrapped)
	require.True(t, ok, "As finds a concrete type too")
	assert.Same(t, dir, d)
}

func TestAsFindsOutermostFirst(t *testing.T) {
	dir, err := store.Dir(t.TempDir())
	require.NoError(t, err)
	sr, ok := store.As[store.SpaceReporter](&counting{Store: fixedSpace{Store: dir, free: 42}})
	require.True(t, ok)
	free, err := sr.FreeSpace(t.Context())
	require.NoError(t, err)
	assert.Equal(t, int64(42), free, "the outermost implementation wins")
}

func TestAsNotFound(t *testing.T) {
	_, ok := store.As[store.SpaceReporter](store.Memory())
	assert.False(t, ok, "Memory reports no free space")
	_, ok = store.As[store.SpaceReporter](&counting{Store: store.Memory()})
	assert.False(t, ok, "nor does a wrapper around it")
	dir, err := store.Dir(t.TempDir())
	require.NoError(t, err)
	_, ok = store.As[store.SpaceReporter](opaque{dir})
	assert.False(t, ok, "a wrapper without Unwrap hides the Dir")
	_, ok = store.As[store.SpaceReporter](nil)
	assert.False(t, ok, "nil")
}

// A wrapped Dir passes the conformance suite, FreeSpace included.
func TestWrappedDirConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := store.Dir(t.TempDir() + "/slot")
		require.NoError(t, err)
		return &counting{Store: s}
	})
}

func ExampleAs() {
	dir, err := store.Dir(os.TempDir() + "/keepslot-example-as")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir.Path())
	var s store.Store = &counting{Store: dir} // an embedder's decorator

	sr, ok := store.As[store.SpaceReporter](s)
	fmt.Println(ok)
	free, err := sr.FreeSpace(context.Background())
	fmt.Println(err == nil && free > 0)
	// Output:
	// true
	// true
}
