package archive

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// collState tracks a declared collection in a Writer.
type collState int

const (
	collPending collState = iota
	collOpen
	collDone
)

// declared indexes and checks the collections of a Header.
func declared(h Header) (map[string]int, error) {
	idx := make(map[string]int, len(h.Collections))
	for i, c := range h.Collections {
		if err := checkNames(c.DB, c.Name); err != nil && !c.IsOplog() {
			return nil, fmt.Errorf("%w (collection %d of the header)", err, i)
		}
		if _, dup := idx[c.Namespace()]; dup {
			return nil, fmt.Errorf("%w: %s is declared twice in the header", ErrUnknownNamespace, c.Namespace())
		}
		idx[c.Namespace()] = i
	}
	return idx, nil
}

func headerDefaults(h Header) Header {
	out := h
	if out.Created.IsZero() {
		out.Created = time.Now()
	}
	out.Created = out.Created.UTC().Truncate(time.Second)
	out.Collections = make([]Collection, len(h.Collections))
	for i, c := range h.Collections {
		out.Collections[i] = c.clone()
	}
	return out
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "...")
	}
	return s
}

// book is the bookkeeping that the built-in Writers share: which
// collections of the Header are pending, open or done, what each holds,
// and the manifest once the Writer is closed. C is the Writer's
// CollectionWriter type. Its methods but Manifest and setOplogSpan expect
// mu held.
type book[C comparable] struct {
	mu        sync.Mutex
	hdr       Header
	idx       map[string]int
	state     []collState
	stats     []NamespaceStats
	open      map[C]string // namespace of each open collection
	closed    bool
	manifest  *Manifest
	oplogSpan OplogSpan // set by Dump (oplog.go)
}

// init checks h and starts the book of a Writer of h, with h's defaults.
func (b *book[C]) init(h Header) error {
	idx, err := declared(h)
	if err != nil {
		return err
	}
	b.hdr = headerDefaults(h)
	b.idx = idx
	b.state = make([]collState, len(h.Collections))
	b.stats = make([]NamespaceStats, len(h.Collections))
	b.open = make(map[C]string)
	return nil
}

// claim returns the index in the header of c, which must be pending.
func (b *book[C]) claim(c Collection) (int, error) {
	if b.closed {
		return 0, errors.New("archive: Collection called after Close")
	}
	i, ok := b.idx[c.Namespace()]
	if !ok {
		return 0, fmt.Errorf("%w: %s is not in the header given to NewWriter", ErrUnknownNamespace, c.Namespace())
	}
	if b.state[i] != collPending {
		return 0, fmt.Errorf("archive: collection %s is already being written", c.Namespace())
	}
	return i, nil
}

// opened records cw as the writer of collection i.
func (b *book[C]) opened(i int, cw C) {
	b.state[i] = collOpen
	b.open[cw] = b.hdr.Collections[i].Namespace()
}

// done records collection i as complete.
func (b *book[C]) done(i int, st NamespaceStats) {
	b.state[i] = collDone
	b.stats[i] = st
}

// closing marks the Writer closed, calling discard on the collections left
// open, and fails with ErrIncomplete if a collection of the header other
// than a view was not written and closed.
func (b *book[C]) closing(discard func(C)) error {
	if b.closed {
		return errors.New("archive: Writer closed twice")
	}
	b.closed = true
	var missing []string
	for cw, ns := range b.open {
		discard(cw)
		missing = append(missing, ns)
	}
	for i, c := range b.hdr.Collections {
		if b.state[i] == collPending && !c.isView() {
			missing = append(missing, c.Namespace())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %d collections not written and closed (%s)", ErrIncomplete, len(missing), strings.Join(first(missing, 5), ", "))
	}
	return nil
}

// newManifest returns the manifest of the collections done.
func (b *book[C]) newManifest() *Manifest {
	m := &Manifest{
		FormatVersion: ManifestVersion,
		ToolVersion:   b.hdr.ToolVersion,
		ServerVersion: b.hdr.ServerVersion,
		Created:       b.hdr.Created,
		Namespaces:    []NamespaceStats{},
		Node:          b.hdr.Node,
	}
	for i := range b.hdr.Collections {
		if b.state[i] == collDone {
			m.Namespaces = append(m.Namespaces, b.stats[i])
		}
	}
	splitOplog(m, b.oplogSpan)
	return m
}

// Manifest returns the manifest once the Writer is closed, else nil.
func (b *book[C]) Manifest() *Manifest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.manifest
}

func (b *book[C]) setOplogSpan(s OplogSpan) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.oplogSpan = s
}
