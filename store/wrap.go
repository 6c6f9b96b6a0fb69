package store

// Wrapper is implemented by a Store that decorates another one (to count
// bytes, to hold a write, to log) and passes its calls on. Unwrap returns the
// decorated Store, so that As can find the capabilities of the Store
// underneath, such as SpaceReporter, through any number of wrappers.
type Wrapper interface {
	Store

	// Unwrap returns the Store this one decorates.
	Unwrap() Store
}

// As finds the first Store in the chain s, s.Unwrap(), s.Unwrap().Unwrap()...
// that implements T, and returns it as a T. It is the way to ask a store for
// an optional capability:
//
//	if sr, ok := store.As[store.SpaceReporter](s); ok {
//		free, err := sr.FreeSpace(ctx)
//		...
//	}
//
// A wrapper that implements T itself is found first, so a wrapper can
// override a capability of the store it decorates.
func As[T any](s Store) (T, bool) {
	for s != nil {
		if t, ok := s.(T); ok {
			return t, true
		}
		w, ok := s.(Wrapper)
		if !ok {
			break
		}
		s = w.Unwrap()
	}
	var zero T
	return zero, false
}
